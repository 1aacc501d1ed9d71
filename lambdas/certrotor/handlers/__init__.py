"""The Lambda entry points. Importing the package first imports
cryptography.x509 without what no handler uses (certrotor.lazy_x509): the
handler string names a module of this package, so this runs before any of
them imports the package."""

from certrotor.lazy_x509 import import_x509

import_x509()

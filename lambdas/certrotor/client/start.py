"""certrotor-fetch's process entry point: the console script, and
`python -m certrotor.client.start`.

It imports cryptography.x509 through lazy_x509 before anything else can, so
a container start skips the parts of that package certrotor-fetch never
calls, then runs the command (client/entrypoint.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from certrotor.lazy_x509 import import_x509

    import_x509()
    from certrotor.client.entrypoint import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())

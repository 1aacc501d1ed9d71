"""certrotor's CDK constructs.

- ``CertificateRotator``: the central part (rotation function, monitor,
  alarms, optional issuer); one per account, region and rotator id.
- ``RotatingCertificate``: one certificate set, in any stack of the
  rotator's account and region.
- ``Certrotor``: a rotator plus the sets of a JSON configuration.
- ``CertrotorStack``: certrotor's own stack, used by app.py.
- ``CaRotationTarget``: the ``ca_rotation`` prop of ``CertificateRotator``.
"""

from certrotor.config import CaRotationTarget
from certrotor_cdk.rotating_certificate import RotatingCertificate
from certrotor_cdk.rotator import CertificateRotator, RotatorRef

__all__ = ["CaRotationTarget", "CertificateRotator", "RotatingCertificate", "RotatorRef"]

"""The project's error types.

Adapters translate botocore error codes into these; handlers map them to
outcomes in one place. Messages never contain key material.
"""


class CertrotorError(Exception):
    """Base class of every error certrotor raises on purpose."""


class ConfigError(CertrotorError, ValueError):
    """The configuration is invalid; the message names the field."""


class PolicyError(CertrotorError, ValueError):
    """A key, CSR or certificate breaks a rule (weak key, names, usage)."""


class BundleError(CertrotorError):
    """A certificate bundle is malformed or does not verify."""


class LayoutError(CertrotorError):
    """A set cannot be split into, or assembled from, its secret parts."""


class CapacityError(LayoutError):
    """The material needs more room than the provisioned parts give."""


class IntegrityError(LayoutError):
    """A part is missing, tampered with, or from another version."""


class NotIssuedError(IntegrityError):
    """The set exists but its first certificate has not been issued yet."""


class AwsError(CertrotorError):
    """An AWS call failed in a way the caller cannot fix by retrying now."""


class NotFoundError(AwsError):
    """The named secret, version, certificate or service does not exist."""


class RetryableError(AwsError):
    """Throttling or a transient failure: trying again later may succeed."""


class ThrottledError(RetryableError):
    """The service throttled the request."""


class NotReadyError(RetryableError):
    """Private CA has not finished issuing the certificate yet."""


class DeadlineError(RetryableError):
    """The work did not finish within the time it was given."""


class RotationError(CertrotorError):
    """A rotation step cannot run: rotation disabled, token not staged, bad step."""

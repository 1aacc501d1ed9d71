"""Translate botocore errors into certrotor's own types, by error code only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, ConnectionError, ParamValidationError, ReadTimeoutError

from certrotor.errors import AwsError, NotFoundError, NotReadyError, RetryableError, ThrottledError

_NOT_FOUND = {
    "ResourceNotFoundException",
    "ServiceNotFoundException",
    "ServiceNotActiveException",
    "ClusterNotFoundException",
    "NotFoundException",
}
# Error codes AWS uses for a throttled request (Secrets Manager and Private
# CA answer ThrottlingException; older APIs use the others).
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "Throttling", "ThrottledException"}
)
_RETRYABLE = {"InternalServiceError", "InternalServiceErrorException", "ServiceUnavailable", "ServerException"}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, what: str) -> AwsError:
    """The certrotor error for a botocore failure while doing `what`."""
    if isinstance(exc, ConnectionError | ReadTimeoutError):
        return RetryableError(f"{what}: connection failed ({type(exc).__name__})")
    if isinstance(exc, ParamValidationError):
        # Refused by botocore before sending, as AWS would refuse it. The
        # report can quote parameter values (a secret's), so it is not kept.
        return AwsError(f"{what}: invalid parameters (ParamValidationError)")
    if not isinstance(exc, ClientError):
        return AwsError(f"{what}: {type(exc).__name__}")
    code = error_code(exc)
    if code == "RequestInProgressException":
        return NotReadyError(f"{what}: not ready yet")
    if code in _NOT_FOUND:
        return NotFoundError(f"{what}: not found ({code})")
    if code in THROTTLING_CODES:
        return ThrottledError(f"{what}: throttled ({code})")
    if code in _RETRYABLE:
        return RetryableError(f"{what}: {code}")
    return AwsError(f"{what}: {code}")


@contextmanager
def aws_call(what: str) -> Iterator[None]:
    """Run a boto3 call, raising certrotor errors instead of botocore ones."""
    try:
        yield
    except ParamValidationError as exc:
        raise translate(exc, what) from None  # its report may quote a value
    except (ClientError, ConnectionError, ReadTimeoutError) as exc:
        raise translate(exc, what) from exc

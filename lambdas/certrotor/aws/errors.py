"""Translate botocore errors into certrotor's own types, by error code only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, ConnectionError, ParamValidationError, ReadTimeoutError

from certrotor.aws.codes import THROTTLING_CODES, error_for_code
from certrotor.errors import AwsError, RetryableError

__all__ = ["THROTTLING_CODES", "aws_call", "error_code", "translate"]


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
    return error_for_code(error_code(exc), what)


@contextmanager
def aws_call(what: str) -> Iterator[None]:
    """Run a boto3 call, raising certrotor errors instead of botocore ones."""
    try:
        yield
    except ParamValidationError as exc:
        raise translate(exc, what) from None  # its report may quote a value
    except (ClientError, ConnectionError, ReadTimeoutError) as exc:
        raise translate(exc, what) from exc

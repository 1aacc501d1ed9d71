"""AWS error codes and Secrets Manager read responses as certrotor values,
without botocore: shared by the botocore adapters and by certrotor-fetch's
start, which reads without botocore (certrotor.client.crt_reader)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from certrotor.errors import AwsError, NotFoundError, NotReadyError, RetryableError, ThrottledError
from certrotor.ports import SecretValue

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
BATCH_LIMIT = 20  # BatchGetSecretValue takes at most 20 SecretIds
_RETRYABLE = {"InternalServiceError", "InternalServiceErrorException", "ServiceUnavailable", "ServerException"}


def error_for_code(code: str, what: str) -> AwsError:
    """The certrotor error for an AWS error code answered while doing `what`."""
    if code == "RequestInProgressException":
        return NotReadyError(f"{what}: not ready yet")
    if code in _NOT_FOUND:
        return NotFoundError(f"{what}: not found ({code})")
    if code in THROTTLING_CODES:
        return ThrottledError(f"{what}: throttled ({code})")
    if code in _RETRYABLE:
        return RetryableError(f"{what}: {code}")
    return AwsError(f"{what}: {code}")


def secret_value(item: Mapping[str, Any]) -> SecretValue:
    """A GetSecretValue answer, or one entry of BatchGetSecretValue's."""
    return SecretValue(item["Name"], item["SecretString"], item["VersionId"], tuple(item.get("VersionStages", ())))


def get_params(secret_id: str, version: str | None, stage: str | None) -> dict[str, Any]:
    """GetSecretValue's parameters: by VersionId or by stage (AWSCURRENT if neither)."""
    params: dict[str, Any] = {"SecretId": secret_id}
    if version is not None:
        params["VersionId"] = version
    if stage is not None:
        params["VersionStage"] = stage
    return params


def read_current_many(
    secret_ids: Sequence[str], batch: Callable[[list[str]], Mapping[str, Any]]
) -> dict[str, SecretValue]:
    """AWSCURRENT of many secrets, `batch` answering BatchGetSecretValue for at
    most BATCH_LIMIT of them at a time. A secret the answer reports an error
    for, or leaves out, is NotFoundError (one secret the caller may not read
    fails the batch; the reader then reads each part on its own)."""
    found: dict[str, SecretValue] = {}
    for start in range(0, len(secret_ids), BATCH_LIMIT):
        resp = batch(list(secret_ids[start : start + BATCH_LIMIT]))
        errors = resp.get("Errors", [])
        if errors:
            first = errors[0]
            raise NotFoundError(f"BatchGetSecretValue {first.get('SecretId')}: {first.get('ErrorCode')}")
        for item in resp["SecretValues"]:
            found[item["Name"]] = secret_value(item)
    missing = [s for s in secret_ids if s not in found]
    if missing:
        raise NotFoundError(f"BatchGetSecretValue: no value for {', '.join(missing)}")
    return found

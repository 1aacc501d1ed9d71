"""Start a rotation now: Secrets Manager RotateSecret, rotate immediately.

"Issue now" for a managed set is a rotation like any other, so the key is
made, stored and the certificate issued by the rotation function's four
steps; nothing else writes a set's secrets.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from certrotor.aws.clients import default_client
from certrotor.aws.errors import aws_call, error_code, translate
from certrotor.errors import RotationError
from certrotor.ports import pending_version


class RotationInProgressError(RotationError):
    """A rotation of the set is already under way; `token` is its version."""

    def __init__(self, secret_id: str, token: str) -> None:
        super().__init__(f"a rotation of {secret_id} is already in progress (version {token})")
        self.token = token


class SecretsManagerRotationTrigger:
    """RotateSecret(RotateImmediately) with a fresh ClientRequestToken."""

    def __init__(self, client: Any | None = None, new_token: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self._client = client or default_client("secretsmanager")
        self._new_token = new_token

    def in_progress(self, secret_id: str) -> str | None:
        """The token of the rotation in progress, if any."""
        with aws_call(f"DescribeSecret {secret_id}"):
            resp = self._client.describe_secret(SecretId=secret_id)
        return pending_version(resp.get("VersionIdsToStages", {}))

    def start(self, secret_id: str) -> str:
        """Start a rotation and return its token (the new VersionId); refuse
        with RotationInProgressError, naming the running token, if one runs."""
        running = self.in_progress(secret_id)
        if running is not None:
            raise RotationInProgressError(secret_id, running)
        token = self._new_token()
        try:
            resp = self._client.rotate_secret(SecretId=secret_id, ClientRequestToken=token, RotateImmediately=True)
        except ClientError as exc:
            # Another caller won the race between our check and RotateSecret:
            # Secrets Manager refuses a second rotation while one is pending.
            if error_code(exc) == "InvalidRequestException":
                running = self.in_progress(secret_id)
                if running is not None:
                    raise RotationInProgressError(secret_id, running) from exc
            raise translate(exc, f"RotateSecret {secret_id}") from exc
        return str(resp.get("VersionId") or token)

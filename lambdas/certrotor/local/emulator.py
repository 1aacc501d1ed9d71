"""The embedded AWS emulator: a moto server on 127.0.0.1, in this process.

Everything certrotor does locally goes through it over real HTTP with boto3,
exactly as in AWS. The server runs in this process so that local mode can do
the two things only Secrets Manager itself does (stage AWSPENDING on a new
version with no value, and enable rotation without a runnable Lambda) and
correct one emulator bug (see `_fix_default_version`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"
_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "certrotor-local",
    "AWS_SECRET_ACCESS_KEY": "certrotor-local-secret",
}
_patch_lock = threading.Lock()
_patched = False


def _fix_default_version() -> None:
    """After UpdateSecretVersionStage moves AWSCURRENT, AWS returns the new
    version from GetSecretValue without a stage and from BatchGetSecretValue;
    moto 5.2 keeps returning the old one. Point its default at the new one."""
    global _patched
    with _patch_lock:
        if _patched:
            return
        from moto.secretsmanager.models import SecretsManagerBackend

        original = SecretsManagerBackend.update_secret_version_stage

        def update_secret_version_stage(
            self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
        ) -> tuple[str, str]:
            result = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
            if version_stage == "AWSCURRENT" and move_to_version_id:
                self.secrets[secret_id].set_default_version_id(move_to_version_id)
            return result

        SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]
        _refuse_rewriting_versions(SecretsManagerBackend)
        _patched = True


def _refuse_rewriting_versions(backend_class: Any) -> None:
    """On AWS a version that holds a value is immutable: PutSecretValue with its
    VersionId and another value fails with ResourceExistsException, whatever
    its stages. moto 5.2 lets a version staged AWSPENDING be overwritten; the
    rotation's safety against two concurrent createSecret calls rests on that
    refusal, so the emulator makes it."""
    from moto.secretsmanager.exceptions import ResourceExistsException

    original = backend_class.put_secret_value

    def put_secret_value(
        self: Any,
        secret_id: str,
        secret_string: str,
        secret_binary: str,
        client_request_token: str,
        version_stages: list[str],
    ) -> Any:
        if self._is_valid_identifier(secret_id) and client_request_token:
            existing = self.secrets[secret_id].versions.get(client_request_token, {})
            has_value = "secret_string" in existing or "secret_binary" in existing
            if has_value and (
                existing.get("secret_string") != secret_string or existing.get("secret_binary") != secret_binary
            ):
                raise ResourceExistsException(
                    f"You can't use ClientRequestToken {client_request_token} because that value is already in use "
                    f"for a version of secret {self.secrets[secret_id].arn}."
                )
        return original(self, secret_id, secret_string, secret_binary, client_request_token, version_stages)

    backend_class.put_secret_value = put_secret_value


class Emulator:
    """A moto server on a free loopback port; use as a context manager."""

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self._server: Any = None
        self.endpoint_url = ""
        self._session = boto3.session.Session()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self) -> Emulator:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _fix_default_version()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients and environment --------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment that points boto3 (and the AWS CLI) at the emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **_CREDENTIALS,
        }

    def client(self, service: str) -> Any:
        """A boto3 client for the emulator, made once per service (clients
        are thread-safe, and making one costs more than most calls)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    aws_access_key_id=_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                )
            return self._clients[service]

    @contextmanager
    def activated(self, extra: Mapping[str, str] | None = None) -> Iterator[None]:
        """Set the emulator's environment (and `extra`) for the duration."""
        values = {**self.env(), **(extra or {})}
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old

    # -- what only Secrets Manager itself does ------------------------------

    def _secret(self, name: str) -> Any:
        from moto.backends import get_backend

        return get_backend("secretsmanager")[ACCOUNT][self.region].secrets[name]

    def enable_rotation(self, name: str, lambda_arn: str, days: int = 30) -> None:
        """Mark a secret as rotated by a Lambda, as RotateSecret's configuration would."""
        secret = self._secret(name)
        secret.rotation_lambda_arn = lambda_arn
        secret.auto_rotate_after_days = days
        secret.rotation_enabled = True
        secret.rotation_requested = True

    def stage_pending(self, name: str, token: str, copy_current: bool = False) -> None:
        """Add a version holding only AWSPENDING, as RotateSecret does before it
        invokes the rotation function: empty, or (`copy_current`, as when
        rotation is configured without rotating now) a copy of AWSCURRENT."""
        secret = self._secret(name)
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        version: dict[str, Any] = {
            "createdate": int(time.time()),
            "version_id": token,
            "version_stages": ["AWSPENDING"],
        }
        if copy_current:
            version["secret_string"] = secret.versions[secret.default_version_id]["secret_string"]
        secret.versions[token] = version

    def issued_certificates(self, ca_arn: str) -> int:
        """How many certificates the emulated Private CA has issued (for
        tests and benchmarks that prove nothing was paid for twice)."""
        from moto.backends import get_backend

        authority = get_backend("acm-pca")[ACCOUNT][self.region].certificate_authorities[ca_arn]
        return len(authority.issued_certificates)

    def set_rotation_enabled(self, name: str, enabled: bool) -> None:
        self._secret(name).rotation_enabled = enabled

"""The embedded AWS emulator: a moto server on 127.0.0.1, in this process.

Everything certrotor does locally goes through it over real HTTP with boto3,
exactly as in AWS. The server runs in this process so that local mode can do
the two things only Secrets Manager itself does (stage AWSPENDING on a new
version with no value, and enable rotation without a runnable Lambda) and
correct where moto deviates from AWS in ways certrotor's safety depends on
(see `_fix_default_version`, `_refuse_rewriting_versions` and
certrotor.local.private_ca).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3

from certrotor.local import private_ca

REGION = "us-east-1"
ACCOUNT = "123456789012"
_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "certrotor-local",
    "AWS_SECRET_ACCESS_KEY": "certrotor-local-secret",
}
_patch_lock = threading.Lock()
# Emulator.activated(): the environment saved before the first active layer,
# and the layers (dicts of variables) active now, oldest first.
_ACTIVATION_LOCK = threading.Lock()
_SAVED_ENV: dict[str, str | None] = {}
_LAYERS: list[dict[str, str]] = []
_patched = False
# RotateSecret's rotation in local mode, per region: called with the secret's
# name and the new version's token once AWSPENDING is staged on it.
_rotation_hooks: dict[str, Callable[[str, str], None]] = {}


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
        _rotate_through_hook(SecretsManagerBackend)
        _secrets_manager_limits(SecretsManagerBackend)
        _show_schedule_expressions()
        private_ca.install()
        _patched = True


def _rotate_through_hook(backend_class: Any) -> None:
    """RotateSecret as AWS does it, when local mode registered how to run the
    rotation function: refuse while a rotation is pending (AWSPENDING on a
    version that is not AWSCURRENT), stage AWSPENDING on a new version, and
    have the function's four steps run (asynchronously, as AWS invokes it).
    moto 5.2 instead invokes a Lambda it cannot run, and refuses in the
    opposite case. Without a hook, moto's own behaviour is kept."""
    from moto.secretsmanager.exceptions import InvalidRequestException

    original = backend_class.rotate_secret

    def rotate_secret(
        self: Any, secret_id: str, client_request_token: str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        hook = _rotation_hooks.get(self.region_name)
        if hook is None or not self._is_valid_identifier(secret_id):
            return original(self, secret_id, client_request_token, *args, **kwargs)
        secret = self.secrets[secret_id]
        for version_id, version in secret.versions.items():
            stages = version.get("version_stages", [])
            if "AWSPENDING" in stages and "AWSCURRENT" not in stages:
                raise InvalidRequestException(
                    f"A previous rotation isn't complete. That rotation will be reattempted. (version {version_id})"
                )
        token = client_request_token or str(uuid.uuid4())
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
        secret.rotation_requested = True
        hook(secret.name, token)
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "VersionId": token})

    backend_class.rotate_secret = rotate_secret


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


# PutSecretValue's limits (the API reference's length constraints).
MAX_SECRET_STRING = 65536
CLIENT_REQUEST_TOKEN_LENGTH = (32, 64)


def _secrets_manager_limits(backend_class: Any) -> None:
    """Three more places where moto 5.2 accepts what Secrets Manager refuses
    or shows what it hides (each pinned by tests/integration/contract):

    - a SecretString over 65,536 characters, or a ClientRequestToken over 64
      (botocore checks only the minimum, 32): refused (ValidationException);
    - UpdateSecretVersionStage removing AWSCURRENT without moving it to
      another version: refused (InvalidParameterException); AWSCURRENT can
      only be moved;
    - DescribeSecret's VersionIdsToStages lists only versions that carry a
      staging label (the others are deprecated); moto lists every version.
    """
    from moto.secretsmanager.exceptions import InvalidParameterException, ValidationException
    from moto.secretsmanager.models import FakeSecret

    put = backend_class.put_secret_value

    def put_secret_value(
        self: Any,
        secret_id: str,
        secret_string: str,
        secret_binary: str,
        client_request_token: str,
        version_stages: list[str],
    ) -> Any:
        if secret_string is not None and len(secret_string) > MAX_SECRET_STRING:
            raise ValidationException(f"SecretString is longer than {MAX_SECRET_STRING} characters")
        if client_request_token and len(client_request_token) > CLIENT_REQUEST_TOKEN_LENGTH[1]:
            raise ValidationException(f"ClientRequestToken is longer than {CLIENT_REQUEST_TOKEN_LENGTH[1]} characters")
        return put(self, secret_id, secret_string, secret_binary, client_request_token, version_stages)

    backend_class.put_secret_value = put_secret_value
    update_stage = backend_class.update_secret_version_stage

    def update_secret_version_stage(
        self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
    ) -> Any:
        if version_stage == "AWSCURRENT" and remove_from_version_id and not move_to_version_id:
            raise InvalidParameterException(
                "You can't remove the staging label AWSCURRENT from a version; move it to another version instead"
            )
        return update_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)

    backend_class.update_secret_version_stage = update_secret_version_stage

    def labelled_versions(self: Any) -> dict[str, Any]:
        return {key: value["version_stages"] for key, value in self.versions.items() if value["version_stages"]}

    FakeSecret._form_version_ids_to_stages = labelled_versions  # type: ignore[method-assign]


def _show_schedule_expressions() -> None:
    """DescribeSecret and ListSecrets show the RotationRules a rotation was
    enabled with (ScheduleExpression, Duration), as AWS does; moto 5.2 keeps
    and shows only AutomaticallyAfterDays."""
    from moto.secretsmanager.models import FakeSecret

    to_dict = FakeSecret.to_dict

    def with_rules(self: Any) -> dict[str, Any]:
        described = to_dict(self)
        rules = getattr(self, "certrotor_rotation_rules", None)
        if rules and "RotationRules" in described:
            described["RotationRules"] = dict(rules)
        return described

    FakeSecret.to_dict = with_rules  # type: ignore[method-assign]


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
        """Set the emulator's environment (and `extra`) for the duration.

        Activations may overlap across threads (a background rotation and the
        local gateway) as well as nest: each is a layer, and leaving one
        recomputes the environment from the values saved before the first
        layer plus the layers still active, so the order in which overlapping
        activations end never leaves a variable set."""
        layer = {**self.env(), **(extra or {})}
        with _ACTIVATION_LOCK:
            for key in layer:
                _SAVED_ENV.setdefault(key, os.environ.get(key))
            _LAYERS.append(layer)
            os.environ.update(layer)
        try:
            yield
        finally:
            with _ACTIVATION_LOCK:
                for i, active in enumerate(_LAYERS):
                    if active is layer:
                        del _LAYERS[i]
                        break
                for key, saved in _SAVED_ENV.items():
                    value = saved
                    for active in _LAYERS:
                        value = active.get(key, value)
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
                if not _LAYERS:
                    _SAVED_ENV.clear()

    # -- what only Secrets Manager itself does ------------------------------

    def _secret(self, name: str) -> Any:
        from moto.backends import get_backend

        return get_backend("secretsmanager")[ACCOUNT][self.region].secrets[name]

    def enable_rotation(
        self, name: str, lambda_arn: str, days: int = 30, rules: Mapping[str, str] | None = None
    ) -> None:
        """Mark a secret as rotated by a Lambda, as RotateSecret's configuration
        would; `rules` (ScheduleExpression, Duration) are what it then shows."""
        secret = self._secret(name)
        secret.rotation_lambda_arn = lambda_arn
        secret.auto_rotate_after_days = days
        secret.certrotor_rotation_rules = dict(rules) if rules else None
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

    def age_idempotency_tokens(self, seconds: float = private_ca.IDEMPOTENCY_WINDOW_SECONDS) -> None:
        """Move every IssueCertificate IdempotencyToken use `seconds` into the
        past (by default past Private CA's 5-minute window)."""
        private_ca.LEDGER.age(seconds)

    def set_rotation_enabled(self, name: str, enabled: bool) -> None:
        self._secret(name).rotation_enabled = enabled

    def on_rotate_secret(self, hook: Callable[[str, str], None] | None) -> None:
        """Have RotateSecret run `hook(name, token)` after staging AWSPENDING
        (None: moto's own RotateSecret)."""
        if hook is None:
            _rotation_hooks.pop(self.region, None)
        else:
            _rotation_hooks[self.region] = hook

    def rotated(self, name: str, when: float | None = None) -> None:
        """Record a finished rotation: DescribeSecret's LastRotatedDate."""
        self._secret(name).last_rotation_date = int(when if when is not None else time.time())

    def enable_step_functions(self) -> None:
        """Let Step Functions run state machines (moto's ASL interpreter,
        config stepfunctions.execute_state_machine); its aws-sdk tasks call
        this emulator."""
        from moto.core.config import default_user_config

        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        # The interpreter logs every handled state error (an IsPresent that is
        # false included) at ERROR; executions report their own failures.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        os.environ["MOTO_PORT"] = self.endpoint_url.rsplit(":", 1)[1]
        _sdk_timestamps_as_strings()


_sdk_patched = False


def _sdk_timestamps_as_strings() -> None:
    """Two corrections to aws-sdk tasks. On AWS an aws-sdk task's result is JSON: timestamps arrive as ISO 8601
    strings ("2026-01-02T03:04:05.678Z"), which Choice rules compare. moto
    5.2 hands the state botocore's datetime objects; convert them (to whole
    seconds, the only form its Choice rules parse)."""
    global _sdk_patched
    with _patch_lock:
        if _sdk_patched:
            return
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_aws_sdk as sdk_task,
        )

        make_client = sdk_task.boto_client_for

        def boto_client_for(*args: Any, **kwargs: Any) -> Any:
            return _IsoTimestamps(make_client(*args, **kwargs))

        sdk_task.boto_client_for = boto_client_for
        # AWS names an aws-sdk task's errors "SecretsManager.<Code>"; moto 5.2
        # says "secretsmanager.<Code>", which no Catch of the definition matches.
        sdk_task._SERVICE_ERROR_NAMES["secretsmanager"] = "SecretsManager"
        _sdk_patched = True


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        # Whole seconds: moto's Choice rules parse only "%Y-%m-%dT%H:%M:%SZ".
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    return value


class _IsoTimestamps:
    """A boto3 client whose responses carry timestamps as JSON does."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        return lambda *args, **kwargs: _iso(attribute(*args, **kwargs))

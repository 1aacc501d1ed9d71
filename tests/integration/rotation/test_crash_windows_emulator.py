"""Crash windows through the real handler, adapters and emulator.

The AWS calls of one rotation by the rotation function are recorded at
botocore's hooks of the function's own session (never listed here: the
sequence shrinks as the rotation gets cheaper). Then, for every call k, the
next rotation of the same set has one fault at call k:

- crash: the call takes effect, then the function dies (its caches with it);
- fail: the call is refused (AccessDeniedException) and changes nothing.

Secrets Manager retries from createSecret with the same token. After each
scenario the token is current on every secret, the set verifies, the emulated
Private CA (which honours IdempotencyToken) issued exactly one certificate
for the rotation, and every IssueCertificate carried the same token, the
set's Validity and its usage's template.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import certrotor.handlers.rotate as rotate_handler
from certrotor.aws.secrets import SecretStore
from certrotor.config import template_arn
from certrotor.handlers import runtime
from certrotor.local.driver import STEPS, RotationDriver
from certrotor.local.provision import LocalEnvironment
from certrotor.ports import CURRENT, PENDING
from certrotor.services.reader import SetReader
from certrotor.services.rotation import KnownVersions
from certrotor.services.verify import verify_set

DENIED = {
    "Error": {"Code": "AccessDeniedException", "Message": "injected"},
    "ResponseMetadata": {"HTTPStatusCode": 400},
}


class Crash(BaseException):
    """The function died mid-invocation."""


class _Http:
    status_code = 400
    headers: dict[str, str] = {}


@dataclass
class Faults:
    calls: list[str] = field(default_factory=list)
    at: int | None = None
    mode: str = "crash"
    fired: bool = False
    issues: list[dict[str, Any]] = field(default_factory=list)

    def before(self, model: Any, **_: Any) -> Any:
        label = f"{model.service_model.service_name}:{model.name}"
        if not self.fired and self.mode == "fail" and self.at == len(self.calls) + 1:
            self.fired = True
            self.calls.append(label)
            return _Http(), DENIED
        return None

    def after(self, model: Any, **_: Any) -> None:
        self.calls.append(f"{model.service_model.service_name}:{model.name}")
        if not self.fired and self.mode == "crash" and self.at == len(self.calls):
            self.fired = True
            raise Crash(f"crash after {self.calls[-1]}")

    def record_issue(self, params: dict[str, Any], **_: Any) -> None:
        self.issues.append(dict(params))

    def arm(self, at: int | None, mode: str) -> None:
        self.calls.clear()
        self.issues.clear()
        self.at, self.mode, self.fired = at, mode, False


@pytest.fixture
def faults() -> Iterator[Faults]:
    injected = Faults()
    session = runtime._session()
    session.register("before-call", injected.before, unique_id="certrotor-test-crash-before")
    session.register("after-call", injected.after, unique_id="certrotor-test-crash-after")
    session.register(
        "before-parameter-build.acm-pca.IssueCertificate", injected.record_issue, unique_id="certrotor-test-crash-issue"
    )
    yield injected
    session.unregister("before-call", unique_id="certrotor-test-crash-before")
    session.unregister("after-call", unique_id="certrotor-test-crash-after")
    session.unregister("before-parameter-build.acm-pca.IssueCertificate", unique_id="certrotor-test-crash-issue")


def _new_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new Lambda instance: nothing cached from the one that died."""
    runtime._adapters_for.cache_clear()
    monkeypatch.setattr(rotate_handler, "known_versions", KnownVersions())


def _rotate_like_secrets_manager(env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[str]]:
    name = env.config.sets[0].name
    driver = RotationDriver(env, max_attempts=1)
    token = driver.start(name, str(uuid.uuid4()))
    outcomes: list[str] = []
    for _attempt in range(4):
        try:
            for step in STEPS:
                driver.invoke(name, step, token)
            outcomes.append("done")
            break
        except Crash as crash:
            outcomes.append(str(crash))
            _new_instance(monkeypatch)
        except Exception as exc:
            outcomes.append(f"failed: {type(exc).__name__}")
    return token, outcomes


@pytest.mark.parametrize("mode", ["crash", "fail"])
def test_a_fault_at_every_aws_call_then_the_retry_converges_on_one_certificate(
    make_env: Any, faults: Faults, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # Given a rotated set, and the AWS calls of its next rotation recorded
    env = make_env(validity_days=40)
    cert_set = env.config.sets[0]
    name = cert_set.name
    secrets = SecretStore(env.emulator.client("secretsmanager"))
    RotationDriver(env).rotate(name)
    faults.arm(None, mode)
    _rotate_like_secrets_manager(env, monkeypatch)
    sequence = list(faults.calls)
    assert any(c.endswith("IssueCertificate") for c in sequence) and any(c.endswith("PutSecretValue") for c in sequence)
    problems: list[str] = []
    for k in range(1, len(sequence) + 1):
        # When call k of the next rotation crashes or fails, and Secrets Manager retries
        before = env.emulator.issued_certificates(env.ca_arn)
        faults.arm(k, mode)
        token, outcomes = _rotate_like_secrets_manager(env, monkeypatch)
        where = f"{mode} at call {k} ({sequence[k - 1]}): {outcomes}"
        # Then it finished: the token is current on every secret, AWSPENDING on no other version
        if outcomes[-1] != "done" or not faults.fired:
            problems.append(f"{where}: did not converge")
            continue
        for secret in (name, *cert_set.part_secret_names):
            stages = secrets.describe(secret).versions
            if CURRENT not in stages.get(token, ()) or any(PENDING in s for v, s in stages.items() if v != token):
                problems.append(f"{where}: {secret} stages {stages}")
        current = SetReader(secrets).read(name)
        verify_set(current, dt.datetime.now(dt.UTC), anchor=env.root.certificate, expected=cert_set)
        if current.manifest.version != token:
            problems.append(f"{where}: current is {current.manifest.version}")
        # And exactly one certificate was issued, every request with the same parameters
        if env.emulator.issued_certificates(env.ca_arn) - before != 1:
            problems.append(f"{where}: {env.emulator.issued_certificates(env.ca_arn) - before} certificates")
        requests = {
            (p["IdempotencyToken"], p["Validity"]["Value"], p["Validity"]["Type"], p["TemplateArn"])
            for p in faults.issues
        }
        if len(requests) != 1 or next(iter(requests))[1:] != (40, "DAYS", template_arn(cert_set.usage)):
            problems.append(f"{where}: IssueCertificate requests {requests}")
    assert problems == [], "\n".join(problems)

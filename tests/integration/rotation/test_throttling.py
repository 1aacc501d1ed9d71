"""Quota pressure during a rotation: throttled calls back off within the
Lambda's remaining time, then fail the step; never a mixed set, never a
second certificate. Faults are injected at botocore's before-call hook of the
rotation function's own session, so every adapter call is covered, whatever
calls the rotation makes (the sequence is recorded, not listed here)."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import certrotor.local.driver as driver_module
from certrotor.aws.secrets import SecretStore
from certrotor.handlers import runtime
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.local.driver import STEPS, RotationDriver, RotationFailed
from certrotor.local.provision import LocalEnvironment
from certrotor.ports import CURRENT, PENDING
from certrotor.services.reader import SetReader

THROTTLED = {
    "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
    "ResponseMetadata": {"HTTPStatusCode": 400},
}


class _Http:
    status_code = 400
    headers: dict[str, str] = {}


@dataclass
class Faults:
    """Throttles calls of the rotation function: `at` lists call indexes
    (counted from `arm()`) that are throttled `times` times each."""

    calls: list[str] = field(default_factory=list)
    at: set[int] = field(default_factory=set)
    times: int = 1
    forever_from: int | None = None
    injected: int = 0
    _seen: collections.Counter[int] = field(default_factory=collections.Counter)
    clock: float = 0.0
    issue_tokens: list[str] = field(default_factory=list)

    def record_issue(self, params: dict[str, Any], **_: Any) -> None:
        self.issue_tokens.append(str(params.get("IdempotencyToken")))

    def arm(self) -> None:
        self.calls.clear()
        self._seen.clear()

    def __call__(self, model: Any, **_: Any) -> Any:
        index = len(self.calls)
        throttle = (self.forever_from is not None and index >= self.forever_from) or (
            index in self.at and self._seen[index] < self.times
        )
        if throttle:
            self._seen[index] += 1
            self.injected += 1
            return _Http(), THROTTLED
        self.calls.append(f"{model.service_model.service_name}:{model.name}")
        return None

    def sleep(self, seconds: float) -> None:
        self.clock += seconds


@pytest.fixture
def make_env(emulator: Any, root_ca: Any) -> Any:
    """A set of a rotator of its own: its CA does not join the trust bundle
    the other tests' rotator shares in the session's emulator."""
    import copy
    import uuid

    from certrotor.config import load_config
    from certrotor.local.provision import DEFAULT_CONFIG, provision

    def build() -> LocalEnvironment:
        data = copy.deepcopy(DEFAULT_CONFIG)
        prefix = uuid.uuid4().hex[:8]
        data["service_name"] = f"r{prefix}"
        data["sets"] = [
            {**data["sets"][0], "name": f"t{prefix}/web", "services": [{"cluster": f"c{prefix}", "service": "web"}]}
        ]
        return provision(emulator, load_config(data), root_ca)

    return build


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    """Injected throttling, and a simulated clock for the function's
    remaining time: backoff sleeps advance it instead of real time."""
    injected = Faults()
    session = runtime._session()
    session.register("before-call", injected, unique_id="certrotor-test-throttle")
    session.register(
        "before-parameter-build.acm-pca.IssueCertificate", injected.record_issue, unique_id="certrotor-test-issue"
    )

    class SimulatedContext(driver_module.LambdaContext):
        begin: float | None = None

        def get_remaining_time_in_millis(self) -> int:
            if self.begin is None:
                self.begin = injected.clock
            return int((self.timeout_seconds - (injected.clock - self.begin)) * 1000)

    monkeypatch.setattr(driver_module, "LambdaContext", SimulatedContext)
    yield injected
    session.unregister("before-call", unique_id="certrotor-test-throttle")
    session.unregister("before-parameter-build.acm-pca.IssueCertificate", unique_id="certrotor-test-issue")


def _wire_sleep(env: LocalEnvironment, faults: Faults) -> Any:
    with env.emulator.activated(env.lambda_env()):
        retry = runtime.adapters().retry
    retry.sleep = faults.sleep
    return retry


def _issued(env: LocalEnvironment) -> int:
    return env.emulator.issued_certificates(env.ca_arn)


def _record_one_rotation(env: LocalEnvironment, faults: Faults) -> list[str]:
    """The calls of a rotation by a warm function (its caches filled)."""
    driver = RotationDriver(env, max_attempts=1)
    driver.rotate(env.config.sets[0].name)
    faults.arm()
    driver.rotate(env.config.sets[0].name)
    return list(faults.calls)


def test_throttled_calls_back_off_and_the_rotation_completes_with_one_certificate(
    make_env: Any, faults: Faults
) -> None:
    # Given a set, and the call sequence of one rotation recorded
    env = make_env()
    retry = _wire_sleep(env, faults)
    name = env.config.sets[0].name
    sequence = _record_one_rotation(env, faults)
    # When every call of the next rotation is throttled three times first
    faults.arm()
    faults.at, faults.times = set(range(len(sequence))), 3
    before, throttled_before = _issued(env), retry.throttled
    report = RotationDriver(env, max_attempts=1).rotate(name)
    # Then each step succeeded on its first invocation, after jittered backoff
    assert [a.step for a in report.attempts] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert retry.throttled - throttled_before == 3 * len(faults.calls) == faults.injected
    assert faults.clock > 0
    # And exactly one certificate was issued, now current
    assert _issued(env) - before == 1
    assert SetReader(SecretStore(env.emulator.client("secretsmanager"))).read(name).manifest.version == report.token


def test_throttling_that_outlasts_the_function_fails_the_step_then_a_retry_converges(
    make_env: Any, faults: Faults
) -> None:
    # Given a set with one rotation done, and the calls a rotation makes
    env = make_env()
    _wire_sleep(env, faults)
    name = env.config.sets[0].name
    sequence = _record_one_rotation(env, faults)
    store = SecretStore(env.emulator.client("secretsmanager"))
    for k in range(len(sequence)):
        current = store.get(name, stage=CURRENT).value
        faults.issue_tokens.clear()
        # When the quota stays exhausted from call k on, past the function's time
        faults.arm()
        faults.forever_from = k
        driver = RotationDriver(env, max_attempts=1)
        with pytest.raises(RotationFailed) as failed:
            driver.rotate(name)
        faults.forever_from = None
        # Then the step failed (the backoff stopped inside the remaining time)
        # and nothing mixed is current: AWSCURRENT still names the old set
        # unless finishSecret had moved every part already
        token = failed.value.report.token
        now_current = store.get(name, stage=CURRENT).value
        assert now_current in (current, INITIAL_VALUE) or token in now_current
        assert SetReader(store).read(name).manifest.version in (token, *_versions_in(current))
        # And the retry Secrets Manager makes converges on the same version;
        # every IssueCertificate of it carried one IdempotencyToken, which
        # Private CA answers with the same certificate (the emulator's CA
        # ignores the token, so calls are counted, not certificates)
        for step in STEPS[STEPS.index(failed.value.step) :]:
            driver.invoke(name, step, token)
        assert len(set(faults.issue_tokens)) == 1, f"throttled from call {k} ({sequence[k]})"
        stages = env.emulator.client("secretsmanager").describe_secret(SecretId=name)["VersionIdsToStages"]
        assert CURRENT in stages[token]
        assert not any(PENDING in s and CURRENT not in s for s in stages.values())


def _versions_in(manifest_value: str) -> tuple[str, ...]:
    import json

    try:
        return (str(json.loads(manifest_value)["version"]),)
    except (ValueError, KeyError, TypeError):
        return ()

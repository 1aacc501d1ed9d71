"""Every crash window of a rotation, found by recording its AWS calls.

A clean rotation is run once with every port call recorded (the sequence is
never written down here: it changes whenever the rotation makes fewer or
other calls). Then, for every call k of that sequence, a fresh set is rotated
again with one fault at call k:

- `crash`: call k takes effect, then the function dies (the Lambda instance
  is gone, and with it whatever it cached);
- `fail`: call k fails with an AWS error and has no effect (the instance
  lives on).

Secrets Manager then retries as it does: the same AWSPENDING token from
createSecret on. Each scenario asserts the state in between (a reader gets
the whole previous set or the whole new one, never a mix or an error), the
end state (the token current on every secret, a verified set, AWSPENDING on
no other version), the certificates issued (exactly one for the rotation,
never a second within the idempotency window) and what Private CA was asked
(IdempotencyToken, Validity, template).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from certrotor.config import CertrotorConfig, template_arn
from certrotor.errors import AwsError, CertrotorError
from certrotor.local.ca import LocalCA
from certrotor.ports import CURRENT, PENDING, CertificateAuthorityPort, SecretPort, ServicePort, idempotency_token
from certrotor.services.reader import SetReader
from certrotor.services.rotation import RotationRequest, RotationService
from certrotor.services.verify import trust_anchor, verify_set
from tests.unit.rotation.fakes import FakeCA, FakeSecrets, FakeServices, provision, stage

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# The methods of each port that are AWS calls.
AWS_CALLS = {
    "secrets": ("describe", "get", "find", "get_current_many", "put", "move_stage", "remove_stage", "tag"),
    "ca": ("signing_algorithm", "ca_certificate_chain", "issue", "get", "wait"),
    "services": ("redeploy", "missing"),
}
# Secrets Manager gives a failing rotation this many more tries.
RETRIES = 3


class Crash(BaseException):
    """The function died (BaseException: no handler in the code catches it)."""


@dataclass
class Plan:
    """Counts port calls and injects one fault at call `at` (1-based)."""

    at: int | None = None
    mode: str = "crash"
    calls: list[str] = field(default_factory=list)
    fired: bool = False

    def around(self, label: str, call: Callable[[], Any]) -> Any:
        self.calls.append(label)
        hit = not self.fired and self.at == len(self.calls)
        if hit and self.mode == "fail":
            self.fired = True
            raise AwsError(f"{label}: injected failure (InternalServiceError)")
        result = call()
        if hit:
            self.fired = True
            raise Crash(f"crash after {label}")
        return result


class Recorded:
    """A port whose AWS calls go through a Plan."""

    def __init__(self, port: object, name: str, plan: Plan) -> None:
        self._port, self._name, self._plan = port, name, plan

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._port, attr)
        if attr not in AWS_CALLS[self._name]:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._plan.around(f"{self._name}.{attr}", lambda: value(*args, **kwargs))

        return call


@dataclass
class World:
    config: CertrotorConfig
    secrets: FakeSecrets
    ca: FakeCA
    services: FakeServices
    plan: Plan
    previous: str | None = None

    @property
    def name(self) -> str:
        return self.config.sets[0].name

    def service(self) -> RotationService:
        """A new function instance (nothing cached) with recorded ports."""
        return RotationService(
            self.config,
            cast(SecretPort, Recorded(self.secrets, "secrets", self.plan)),
            cast(CertificateAuthorityPort, Recorded(self.ca, "ca", self.plan)),
            cast(ServicePort, Recorded(self.services, "services", self.plan)),
        )

    def invoke(self, rotation: RotationService, step: str, token: str) -> None:
        event: dict[str, object] = {
            "Step": step,
            "SecretId": self.secrets.arn_of(self.name),
            "ClientRequestToken": token,
            "RotationToken": str(uuid.uuid4()),
        }
        rotation.run(RotationRequest.parse(event), remaining_seconds=lambda: 60)

    def read_current(self) -> tuple[str, int]:
        """The current set, verified: (its version, its serial)."""
        assembled = SetReader(self.secrets).read(self.name, provisioned_chain_parts=self.config.sets[0].chain_parts)
        anchor = trust_anchor(self.ca.ca_certificate_chain())
        verified = verify_set(assembled, dt.datetime.now(dt.UTC), anchor=anchor, expected=self.config.sets[0])
        return assembled.manifest.version, verified.bundle.leaf.serial_number


@pytest.fixture(scope="module")
def authority(root_ca: LocalCA) -> LocalCA:
    return root_ca.create_subordinate("certrotor crash-window Private CA")


def make_world(root_ca: LocalCA, authority: LocalCA, usage: str) -> World:
    """A set rotated once already (so there is a previous set to read)."""
    secrets = FakeSecrets()
    ca = FakeCA(root_ca, authority)
    services = FakeServices()
    config = provision(secrets, ca.ca_arn, usage=usage, validity_days=33)
    world = World(config, secrets, ca, services, Plan())
    token = str(uuid.uuid4())
    stage(secrets, world.name, token)
    rotation = world.service()
    for step in STEPS:
        world.invoke(rotation, step, token)
    world.plan.calls.clear()
    world.previous = token
    return world


def rotate_like_secrets_manager(world: World, token: str) -> list[str]:
    """The four steps; after a fault, again from createSecret with the same
    token (a new instance after a crash). Returns each attempt's outcome."""
    outcomes: list[str] = []
    rotation = world.service()
    for _attempt in range(RETRIES + 1):
        try:
            for step in STEPS:
                world.invoke(rotation, step, token)
            outcomes.append("done")
            return outcomes
        except Crash as crash:
            outcomes.append(str(crash))
            rotation = world.service()
        except CertrotorError as exc:
            outcomes.append(f"failed: {exc}")
        # Between attempts, any reader gets a whole set: the old one or the new one.
        version, _serial = world.read_current()
        assert version in (world.previous, token), outcomes
    return outcomes


@functools.cache
def recorded_sequence(usage: str) -> tuple[str, ...]:
    """The AWS calls of one clean rotation (recorded at collection time)."""
    root = LocalCA.create_root("certrotor crash-window recording root")
    world = make_world(root, root.create_subordinate("recording CA"), usage)
    token = str(uuid.uuid4())
    stage(world.secrets, world.name, token)
    rotation = world.service()
    for step in STEPS:
        world.invoke(rotation, step, token)
    return tuple(world.plan.calls)


USAGES = ("server", "client")
MODES = ("crash", "fail")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One scenario per (usage, mode, call k) of the recorded sequence."""
    if "fault" in metafunc.fixturenames:
        cases = [
            (usage, mode, k, label)
            for usage in USAGES
            for mode in MODES
            for k, label in enumerate(recorded_sequence(usage), start=1)
        ]
        metafunc.parametrize("fault", cases, ids=[f"{u}-{m}-{k}-{label}" for u, m, k, label in cases])


def test_a_clean_rotation_calls_every_port() -> None:
    # The recording is what the scenarios enumerate: it must see the writes,
    # the certificate request and the redeploy, or they would prove nothing
    for usage in USAGES:
        calls = recorded_sequence(usage)
        assert "secrets.put" in calls and "secrets.move_stage" in calls and "secrets.tag" in calls
        assert calls.count("ca.issue") == 1
        assert calls.count("services.redeploy") == 1


def test_a_fault_at_any_call_then_the_retry_converges_on_one_verified_set(
    root_ca: LocalCA, authority: LocalCA, fault: tuple[str, str, int, str]
) -> None:
    usage, mode, k, label = fault
    # Given a set with a current certificate, and a rotation staged
    world = make_world(root_ca, authority, usage)
    _previous_version, previous_serial = world.read_current()
    certificates_before = world.ca.certificates
    redeploys_before = len(world.services.redeployed)
    world.ca.calls.clear()
    token = str(uuid.uuid4())
    stage(world.secrets, world.name, token)
    # When call k of the rotation crashes (after taking effect) or fails, and Secrets Manager retries
    world.plan.at, world.plan.mode = k, mode
    outcomes = rotate_like_secrets_manager(world, token)
    # Then the fault happened at that call
    assert world.plan.fired and world.plan.calls[k - 1] == label, world.plan.calls
    # And the rotation finished: the token is current on every secret, AWSPENDING on no other version
    assert outcomes[-1] == "done", outcomes
    cert_set = world.config.sets[0]
    for name in (cert_set.name, *cert_set.part_secret_names):
        stages = world.secrets.stages_of(name)
        assert CURRENT in stages[token], (name, stages)
        assert all(PENDING not in s for v, s in stages.items() if v != token), (name, stages)
    version, serial = world.read_current()
    assert version == token and serial != previous_serial
    # And exactly one certificate was paid for, always with the same request parameters
    assert world.ca.certificates == certificates_before + 1
    assert world.ca.calls, "no certificate was requested"
    for call in world.ca.calls:
        assert call.token == idempotency_token(world.secrets.arn_of(world.name), token)
        assert call.validity_days == 33
        assert call.template_arn == template_arn(cert_set.usage)
    # And the services were redeployed once; twice when the function died
    # or failed after the redeploy and before recording it (at least once);
    # never when the redeploy itself failed (reported, not retried: not strict)
    redeploys = len(world.services.redeployed) - redeploys_before
    after_redeploy = k > recorded_sequence(usage).index("services.redeploy")
    if (mode, label) == ("fail", "services.redeploy"):
        assert redeploys == 0
    else:
        assert redeploys == 1 or (after_redeploy and redeploys == 2), (redeploys, outcomes)

"""What each rotation step reports (its StepResult, its log lines, its exact
refusals) and what it sends, for every branch a retry or a misrouted call
takes; all over the in-memory fakes."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from certrotor.config import CertrotorConfig, KeyAlgorithm
from certrotor.errors import AwsError, BundleError, IntegrityError, RotationError
from certrotor.layout import Manifest
from certrotor.local.ca import LocalCA
from certrotor.pki.keys import generate_key, key_to_pem
from certrotor.ports import CURRENT
from certrotor.services.rotation import (
    TAG_CA,
    TAG_ISSUING,
    TAG_REDEPLOYED,
    KnownVersions,
    RotationRequest,
    RotationService,
    Step,
    StepResult,
)
from tests.unit.rotation.fakes import ACCOUNT, FakeCA, FakeSecrets, FakeServices, provision, stage

OTHER_CA_ARN = f"arn:aws:acm-pca:eu-west-1:{ACCOUNT}:certificate-authority/11111111-2222-3333-4444-555555555555"


@dataclass
class World:
    config: CertrotorConfig
    secrets: FakeSecrets
    ca: FakeCA
    services: FakeServices
    known: KnownVersions

    @property
    def name(self) -> str:
        return self.config.sets[0].name

    def service(self, **options: Any) -> RotationService:
        """A RotationService as the handler builds it (one per function
        instance; `known` shared unless replaced)."""
        options.setdefault("known", self.known)
        return RotationService(self.config, self.secrets, self.ca, self.services, **options)

    def run(self, step: str, token: str, service: RotationService | None = None, **event: Any) -> StepResult:
        request = RotationRequest.parse(
            {"Step": step, "SecretId": self.secrets.arn_of(self.name), "ClientRequestToken": token, **event}
        )
        return (service or self.service()).run(request, remaining_seconds=lambda: 60)

    def start(self) -> str:
        token = str(uuid.uuid4())
        stage(self.secrets, self.name, token)
        return token

    def manifest_at(self, token: str) -> Manifest:
        found = self.secrets.find(self.name, token)
        assert found is not None
        return Manifest.from_json(found.value)

    def current_token(self) -> str:
        version = self.secrets.describe(self.name).version_with(CURRENT)
        assert version is not None
        return version


@pytest.fixture(scope="module")
def sub_ca(root_ca: LocalCA) -> LocalCA:
    return root_ca.create_subordinate("certrotor fake Private CA")


@pytest.fixture
def make_world(root_ca: LocalCA, sub_ca: LocalCA) -> Callable[..., World]:
    def build(ca: FakeCA | None = None, fake_services: FakeServices | None = None, **overrides: Any) -> World:
        secrets = FakeSecrets()
        fake_ca = ca or FakeCA(root_ca, sub_ca)
        config = provision(secrets, fake_ca.ca_arn, **overrides)
        return World(config, secrets, fake_ca, fake_services or FakeServices(), KnownVersions())

    return build


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


def _count_gets(secrets: FakeSecrets, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """Every GetSecretValue (find included) as (secret, version)."""
    calls: list[tuple[str, str | None]] = []
    original = secrets.get

    def counted(secret_id: str, version: str | None = None, stage: str | None = None) -> Any:
        calls.append((secret_id, version))
        return original(secret_id, version=version, stage=stage)

    monkeypatch.setattr(secrets, "get", counted)
    return calls


# -- what each step reports -------------------------------------------------------


def test_each_step_reports_its_step_its_set_and_the_certificate_it_made(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a staged rotation, on a function instance with the default logger
    token = world.start()

    # When the four steps run
    with caplog.at_level(logging.INFO, logger="certrotor.rotation"):
        results = [world.run(step, token, RotationToken="rt") for step in Step]

    # Then create and test report the serial and expiry of the pending
    # certificate, and finish the redeploy it made
    manifest = world.manifest_at(token)
    assert results == [
        StepResult(Step.CREATE, world.name, "created", manifest.serial, manifest.not_after),
        StepResult(Step.SET, world.name, "nothing to set"),
        StepResult(Step.TEST, world.name, "verified", manifest.serial, manifest.not_after),
        StepResult(Step.FINISH, world.name, "finished", redeployed=["apps/web"]),
    ]
    # And createSecret logged the request and the stored set under the
    # certrotor.rotation logger, with the set, ARN, serial and expiry as fields
    arn = world.secrets.describe(world.name).tags[TAG_ISSUING].split(" ")[1]
    logged = [
        (r.name, r.levelno, r.getMessage(), {k: getattr(r, k, None) for k in ("set", "certificate_arn")})
        for r in caplog.records
    ]
    assert logged[:2] == [
        ("certrotor.rotation", logging.INFO, "certificate requested", {"set": world.name, "certificate_arn": arn}),
        ("certrotor.rotation", logging.INFO, "pending set stored", {"set": world.name, "certificate_arn": None}),
    ]
    stored = caplog.records[1]
    assert (getattr(stored, "serial", None), getattr(stored, "not_after", None)) == (
        manifest.serial,
        manifest.not_after,
    )


def test_only_the_manifest_put_carries_the_events_rotation_token(world: World) -> None:
    # Given a staged rotation
    token = world.start()
    # When createSecret runs with a RotationToken in its event
    world.run("createSecret", token, RotationToken="the-rotation-token")
    # Then the manifest's PutSecretValue carries it (Secrets Manager checks it
    # there) and no other put does
    sent = {w.secret: w.rotation_token for w in world.secrets.puts}
    assert sent.pop(world.name) == "the-rotation-token"
    assert set(sent.values()) == {None}


def test_a_retried_create_reports_already_created_for_its_set(world: World) -> None:
    token = world.start()
    world.run("createSecret", token)
    assert world.run("createSecret", token) == StepResult(Step.CREATE, world.name, "already created")


@pytest.mark.parametrize("step", ["createSecret", "testSecret"])
def test_a_step_for_the_current_version_reports_already_current(world: World, step: str) -> None:
    # Given a set rotated once
    token = world.start()
    for each in Step:
        world.run(each, token)
    writes = len(world.secrets.writes)
    # When create or test is called again for the version now current
    result = world.run(step, token)
    # Then it says so for its step and set, and writes nothing
    assert result == StepResult(Step(step), world.name, "already current")
    assert len(world.secrets.writes) == writes


def test_testsecret_before_the_first_issuance_reports_nothing_to_test(world: World) -> None:
    token = str(uuid.uuid4())
    world.secrets.stage_pending(world.name, token, copy_current=True)
    assert world.run("testSecret", token) == StepResult(Step.TEST, world.name, "nothing issued yet to test")


# -- exact refusals --------------------------------------------------------------


def _previous_token(world: World) -> str:
    """A version of the manifest labelled only AWSPREVIOUS (after one rotation)."""
    previous = world.current_token()
    token = world.start()
    for step in Step:
        world.run(step, token)
    assert world.secrets.stages_of(world.name)[previous] == ("AWSPREVIOUS",)
    return previous


@pytest.mark.parametrize("step", ["createSecret", "testSecret", "finishSecret"])
def test_a_version_not_staged_pending_is_refused_naming_version_and_secret(world: World, step: str) -> None:
    previous = _previous_token(world)
    with pytest.raises(RotationError) as raised:
        world.run(step, previous)
    assert str(raised.value) == f"version {previous} of {world.name} is not staged AWSPENDING"


def test_a_token_that_is_no_version_of_the_secret_is_refused(world: World) -> None:
    token = str(uuid.uuid4())
    with pytest.raises(RotationError) as raised:
        world.run("createSecret", token)
    assert str(raised.value) == f"version {token} is not a version of {world.name}"


def test_testsecret_before_createsecret_names_the_set_from_the_arn(world: World) -> None:
    token = world.start()
    with pytest.raises(RotationError) as raised:
        world.run("testSecret", token)
    assert str(raised.value) == f"{world.name} has no value at version {token}; createSecret did not complete"


def test_finishsecret_before_createsecret_says_create_did_not_complete(world: World) -> None:
    token = world.start()
    with pytest.raises(IntegrityError) as raised:
        world.run("finishSecret", token)
    assert str(raised.value) == f"{world.name} has no complete set at version {token}; createSecret did not complete"


def test_a_part_without_the_tokens_version_is_refused_at_finish(world: World, make_world: Callable[..., World]) -> None:
    # Given a manifest at the token whose parts were never written there (a
    # complete set in another account's secrets stands for a lost write)
    token = world.start()
    elsewhere = make_world()
    stage(elsewhere.secrets, elsewhere.name, token)
    elsewhere.run("createSecret", token)
    manifest = elsewhere.secrets.find(elsewhere.name, token)
    assert manifest is not None
    world.secrets.put(world.name, manifest.value, token)
    # When finishSecret runs
    with pytest.raises(IntegrityError) as raised:
        world.run("finishSecret", token)
    # Then the first part is named, and the manifest did not move
    first = world.config.sets[0].part_secret_names[0]
    assert str(raised.value) == f"{first} has no version {token}; createSecret did not complete"
    assert world.current_token() != token


def test_a_strict_finish_names_every_missing_service(make_world: Callable[..., World]) -> None:
    services = [{"cluster": "apps", "service": "web"}, {"cluster": "apps", "service": "api"}]
    world = make_world(
        fake_services=FakeServices(gone=["apps/web", "apps/api"]), services=services, redeploy_strict=True
    )
    token = world.start()
    world.run("createSecret", token)
    with pytest.raises(RotationError) as raised:
        world.run("finishSecret", token)
    assert str(raised.value) == "services not found: apps/web, apps/api (redeploy_strict is set)"


def test_a_strict_redeploy_failure_names_every_failed_service_and_logs_each(
    make_world: Callable[..., World], caplog: pytest.LogCaptureFixture
) -> None:
    services = [{"cluster": "apps", "service": "web"}, {"cluster": "apps", "service": "api"}]
    world = make_world(
        fake_services=FakeServices(failing=["apps/web", "apps/api"]), services=services, redeploy_strict=True
    )
    token = world.start()
    world.run("createSecret", token)
    with caplog.at_level(logging.ERROR, logger="certrotor.rotation"), pytest.raises(AwsError) as raised:
        world.run("finishSecret", token)
    assert str(raised.value) == "redeploy failed for apps/web, apps/api (redeploy_strict is set)"
    logged = [
        (r.getMessage(), getattr(r, "set", None), getattr(r, "service", None), getattr(r, "error", None))
        for r in caplog.records
    ]
    assert logged == [
        ("redeploy failed", world.name, label, f"UpdateService {label}: AccessDeniedException")
        for label in ("apps/web", "apps/api")
    ]


def test_a_strict_finish_retried_after_its_redeploy_does_not_look_for_the_services_again(
    make_world: Callable[..., World],
) -> None:
    # Given a strict set whose finish redeployed its service and recorded it
    services = FakeServices()
    world = make_world(fake_services=services, redeploy_strict=True)
    token = world.start()
    for step in Step:
        world.run(step, token)
    # When the service is gone and Secrets Manager retries finishSecret
    services.gone.add("apps/web")
    result = world.run("finishSecret", token)
    # Then the retry reports the recorded redeploy instead of refusing
    assert result == StepResult(Step.FINISH, world.name, "finished; services already redeployed")
    assert world.secrets.describe(world.name).tags[TAG_REDEPLOYED] == token


# -- the CA a set is tagged with ---------------------------------------------------


def test_a_set_tagged_for_another_ca_is_refused_without_a_way_to_reach_it(world: World) -> None:
    world.secrets.tag(world.name, TAG_CA, OTHER_CA_ARN)
    token = world.start()
    with pytest.raises(RotationError) as raised:
        world.run("createSecret", token)
    assert str(raised.value) == (
        f"the set is tagged for CA {OTHER_CA_ARN}, but this function can only issue from its own CA"
    )
    assert world.ca.issue_count == 0


def test_a_set_tagged_for_another_ca_is_issued_and_proved_by_that_ca(world: World, other_root_ca: LocalCA) -> None:
    # Given a set a CA rotation tagged for a CA under another root
    other = FakeCA(other_root_ca, ca_arn=OTHER_CA_ARN)
    asked: list[str] = []

    def ca_for(arn: str) -> FakeCA:
        asked.append(arn)
        return other

    world.secrets.tag(world.name, TAG_CA, OTHER_CA_ARN)
    service = world.service(ca_for=ca_for)
    token = world.start()
    # When create and test run
    created = world.run("createSecret", token, service=service)
    tested = world.run("testSecret", token, service=service)
    # Then that CA issued it and testSecret proved it against that CA's root
    assert (created.action, tested.action) == ("created", "verified")
    assert (other.issue_count, world.ca.issue_count) == (1, 0)
    assert set(asked) == {OTHER_CA_ARN}
    assert world.manifest_at(token).ca == OTHER_CA_ARN


def test_the_template_is_in_the_cas_partition(
    make_world: Callable[..., World], root_ca: LocalCA, sub_ca: LocalCA
) -> None:
    arn = f"arn:aws-cn:acm-pca:cn-north-1:{ACCOUNT}:certificate-authority/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    world = make_world(ca=FakeCA(root_ca, sub_ca, ca_arn=arn))
    world.run("createSecret", world.start())
    assert [c.template_arn for c in world.ca.calls] == [
        "arn:aws-cn:acm-pca:::template/EndEntityServerAuthCertificate/V1"
    ]


def test_a_create_reads_the_cached_ca_chain_without_refreshing_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_chain = world.ca.ca_certificate_chain
    reads: list[bool] = []

    def chain(refresh: bool = False) -> str:
        reads.append(refresh)
        return real_chain(refresh)

    monkeypatch.setattr(world.ca, "ca_certificate_chain", chain)
    world.run("createSecret", world.start())
    assert reads and not any(reads)


# -- testSecret's clock -------------------------------------------------------------


@pytest.mark.parametrize(("left", "verified"), [(dt.timedelta(minutes=59), False), (dt.timedelta(hours=1), True)])
def test_a_pending_certificate_must_stay_valid_an_hour_to_pass(
    world: World, left: dt.timedelta, verified: bool
) -> None:
    token = world.start()
    world.run("createSecret", token)
    not_after = dt.datetime.fromisoformat(world.manifest_at(token).not_after)
    service = world.service(now=lambda: not_after - left)
    if verified:
        assert world.run("testSecret", token, service=service).action == "verified"
    else:
        with pytest.raises(BundleError, match="sooner than required"):
            world.run("testSecret", token, service=service)


# -- what a warm function instance remembers ------------------------------------------


def test_finish_on_the_instance_that_created_reads_no_value_back(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a createSecret on this instance, testSecret on another one
    token = world.start()
    world.run("createSecret", token)
    world.run("testSecret", token, service=world.service(known=KnownVersions()))
    gets = _count_gets(world.secrets, monkeypatch)
    # When finishSecret runs on this instance again
    world.run("finishSecret", token)
    # Then it knows the manifest is stored (it wrote it) and reads no value
    assert gets == []


def test_finish_on_the_instance_that_tested_reads_no_value_back(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    token = world.start()
    world.run("createSecret", token, service=world.service(known=KnownVersions()))
    world.run("testSecret", token)
    gets = _count_gets(world.secrets, monkeypatch)
    world.run("finishSecret", token)
    assert gets == []


def test_a_key_found_at_the_token_is_not_read_again_by_testsecret(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a createSecret that found another attempt's key at the token
    token = world.start()
    key_name = world.config.sets[0].key_secret_name
    other_pem = key_to_pem(generate_key(KeyAlgorithm.EC_P256))

    def other_writer(name: str, version: str) -> None:
        if name == key_name:
            world.secrets.before_put = None
            world.secrets.put(name, other_pem, version)

    world.secrets.before_put = other_writer
    world.run("createSecret", token)
    gets = _count_gets(world.secrets, monkeypatch)
    # When testSecret runs on the same instance
    assert world.run("testSecret", token).action == "verified"
    # Then only the pending manifest was read: the key and the chain are known
    assert gets == [(world.secrets.arn_of(world.name), token)]


def test_finish_drops_what_the_instance_knew_of_the_set(world: World) -> None:
    token = world.start()
    world.run("createSecret", token)
    assert world.known.values(world.name, token)
    world.run("testSecret", token)
    world.run("finishSecret", token)
    assert world.known.values(world.name, token) == {}


def test_knownversions_keeps_the_latest_token_of_each_set() -> None:
    known = KnownVersions()
    known.remember("a", "t1", "a/key", "k1")
    known.remember("b", "t1", "b/key", "kb")
    known.remember("a", "t2", "a/key", "k2")
    assert (known.values("a", "t1"), known.values("a", "t2")) == ({}, {"a/key": "k2"})
    known.forget("a")
    assert (known.values("a", "t2"), known.values("b", "t1")) == ({}, {"b/key": "kb"})


# -- what createSecret meets at the token and in service ------------------------------


def test_a_key_put_refused_with_no_key_at_the_token_is_an_integrity_error(world: World) -> None:
    # Given a store that refuses the key at the token yet holds none there
    token = world.start()
    key_name = world.config.sets[0].key_secret_name

    def refuse(name: str, version: str) -> None:
        if name == key_name:
            raise IntegrityError(f"{name} already holds a different value for version {version}")

    world.secrets.before_put = refuse
    # When createSecret runs
    with pytest.raises(IntegrityError) as raised:
        world.run("createSecret", token)
    # Then it says so, and requests no certificate
    assert str(raised.value) == f"{key_name} refused a key at {token} but holds none"
    assert world.ca.issue_count == 0


def test_an_unreadable_current_manifest_is_logged_and_does_not_stop_the_rotation(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a set whose current manifest is not a manifest
    world.secrets.put(world.name, "not a manifest", str(uuid.uuid4()), stages=(CURRENT,))
    token = world.start()
    # When createSecret runs
    with caplog.at_level(logging.WARNING, logger="certrotor.rotation"):
        result = world.run("createSecret", token)
    # Then the set is created, superseding nothing, and the warning names the set and the error
    assert result.action == "created"
    assert world.manifest_at(token).superseded == ()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [(r.getMessage(), getattr(r, "set", None), getattr(r, "error", None)) for r in warnings] == [
        (
            "current manifest unreadable; its certificate is not recorded as superseded",
            world.name,
            _manifest_error("not a manifest"),
        )
    ]


def _manifest_error(value: str) -> str:
    with pytest.raises(IntegrityError) as raised:
        Manifest.from_json(value)
    return str(raised.value)

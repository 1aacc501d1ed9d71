"""RotationService's four steps against in-memory fakes: what each step
writes, what a retry after a failure at each point converges on, and what is
refused before anything is written."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certrotor.config import CertificateSetConfig, CertrotorConfig, KeyAlgorithm, Usage
from certrotor.config import template_arn as fakes_template_arn
from certrotor.errors import (
    AwsError,
    BundleError,
    CapacityError,
    DeadlineError,
    IntegrityError,
    PolicyError,
    RotationError,
)
from certrotor.layout import AssembledSet
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import parse_bundle
from certrotor.pki.keys import generate_key, key_to_pem
from certrotor.ports import CURRENT, PENDING, pending_version
from certrotor.services.reader import SetReader
from certrotor.services.rotation import TAG_ISSUING, TAG_REDEPLOYED, RotationRequest, RotationService, StepResult
from tests.unit.rotation.fakes import FakeCA, FakeSecrets, FakeServices, provision, stage

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def _public_der(public_key: Any) -> bytes:
    return bytes(public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


@dataclass
class Rig:
    """One set provisioned in the fakes, and the service under test."""

    config: CertrotorConfig
    secrets: FakeSecrets
    ca: FakeCA
    services: FakeServices
    rotation: RotationService

    @property
    def cert_set(self) -> CertificateSetConfig:
        return self.config.sets[0]

    @property
    def name(self) -> str:
        return self.cert_set.name

    def run(self, step: str, token: str) -> StepResult:
        """One invocation, with an event shaped like Secrets Manager's."""
        event: dict[str, object] = {
            "Step": step,
            "SecretId": self.secrets.arn_of(self.name),
            "ClientRequestToken": token,
            "RotationToken": str(uuid.uuid4()),
        }
        return self.rotation.run(RotationRequest.parse(event), remaining_seconds=lambda: 60)

    def start(self) -> str:
        token = str(uuid.uuid4())
        stage(self.secrets, self.name, token)
        return token

    def rotate_until_finish(self) -> str:
        """A new token through createSecret, setSecret and testSecret."""
        token = self.start()
        for step in STEPS[:3]:
            self.run(step, token)
        return token

    def rotate(self) -> str:
        token = self.rotate_until_finish()
        self.run("finishSecret", token)
        return token

    def current(self) -> AssembledSet:
        return SetReader(self.secrets).read(self.name, provisioned_chain_parts=self.cert_set.chain_parts)

    def current_version(self, name: str) -> str | None:
        return self.secrets.describe(name).version_with(CURRENT)


@pytest.fixture(scope="module")
def fake_ca_authority(root_ca: LocalCA) -> LocalCA:
    """The subordinate the fake Private CA signs with (made once: keys cost)."""
    return root_ca.create_subordinate("certrotor fake Private CA")


@pytest.fixture
def make_rig(root_ca: LocalCA, fake_ca_authority: LocalCA) -> Callable[..., Rig]:
    """A rig for BASE_SET with `set_overrides`; `fake_ca` and `fake_services`
    replace the default fakes."""

    def build(fake_ca: FakeCA | None = None, fake_services: FakeServices | None = None, **set_overrides: Any) -> Rig:
        secrets = FakeSecrets()
        ca = fake_ca or FakeCA(root_ca, fake_ca_authority)
        services = fake_services or FakeServices()
        config = provision(secrets, ca.ca_arn, **set_overrides)
        return Rig(config, secrets, ca, services, RotationService(config, secrets, ca, services))

    return build


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    return make_rig()


# -- the whole rotation --------------------------------------------------------


def test_the_four_steps_make_the_token_current_on_every_part_and_the_manifest(rig: Rig) -> None:
    # Given a provisioned set with AWSPENDING staged on a new token
    token = rig.start()

    # When Secrets Manager runs the four steps
    results = [rig.run(step, token) for step in STEPS]

    # Then every secret of the set is at the token, AWSPENDING is on no
    # other version (no rotation in progress), one certificate was requested
    # and the service redeployed once
    assert [r.action for r in results] == ["created", "nothing to set", "verified", "finished"]
    for name in (rig.name, *rig.cert_set.part_secret_names):
        info = rig.secrets.describe(name)
        assert info.version_with(CURRENT) == token, name
        assert pending_version(info.versions) is None, name
    assert rig.current().manifest.version == token
    assert rig.ca.issue_count == 1
    assert rig.services.redeployed == ["apps/web"]
    assert rig.secrets.describe(rig.name).tags[TAG_REDEPLOYED] == token


# -- createSecret ----------------------------------------------------------------


def _race_on_key(rig: Rig) -> str:
    """Another createSecret for the same token stores its key between this
    one's lookup of the key and its put; returns the other writer's key PEM."""
    other_pem = key_to_pem(generate_key(KeyAlgorithm.EC_P256))

    def other_writer(name: str, version: str) -> None:
        if name == rig.cert_set.key_secret_name:
            rig.secrets.before_put = None
            rig.secrets.put(name, other_pem, version)

    rig.secrets.before_put = other_writer
    return other_pem


def test_a_create_that_finds_another_writers_key_at_the_token_certifies_that_key_once(rig: Rig) -> None:
    # Given another createSecret (an earlier attempt, or one running now) that
    # stored its key for the same token between this one's key generation and put
    token = rig.start()
    other_pem = _race_on_key(rig)

    # When this createSecret runs, then testSecret
    created = rig.run("createSecret", token)
    tested = rig.run("testSecret", token)

    # Then the pending set pairs the stored key with a certificate for it;
    # this create's own key was never stored, and one certificate was requested
    assert (created.action, tested.action) == ("created", "verified")
    pending = SetReader(rig.secrets).read(rig.name, version=token)
    assert pending.key_pem == other_pem
    leaf = parse_bundle(pending.bundle_pem).leaf
    other_key = serialization.load_pem_private_key(other_pem.encode(), password=None)
    assert _public_der(leaf.public_key()) == _public_der(other_key.public_key())
    assert rig.ca.issue_count == 1


def test_a_create_retried_after_it_completed_writes_nothing_more_and_issues_nothing(rig: Rig) -> None:
    # Given a createSecret that completed
    token = rig.start()
    rig.run("createSecret", token)
    stored = {name: rig.secrets.find(name, token) for name in (rig.name, *rig.cert_set.part_secret_names)}
    puts = len(rig.secrets.puts)

    # When Secrets Manager calls createSecret again for the token
    result = rig.run("createSecret", token)

    # Then it says so; the one refused key put is all it tried, and every value is unchanged
    assert result.action == "already created"
    assert len(rig.secrets.puts) == puts + 1
    assert {name: rig.secrets.find(name, token) for name in stored} == stored
    assert rig.ca.issue_count == 1


def test_a_certificate_for_another_key_is_refused_before_any_chain_part_or_manifest_is_written(rig: Rig) -> None:
    # Given a CA that answers with a certificate for a key that is not the set's
    rig.ca.certify_instead = generate_key(KeyAlgorithm.EC_P256).public_key()
    token = rig.start()

    # When createSecret runs
    with pytest.raises(BundleError):
        rig.run("createSecret", token)

    # Then no chain part and no manifest has a value at the token
    for name in (*rig.cert_set.chain_secret_names, rig.name):
        assert rig.secrets.find(name, token) is None, name
    assert [w.secret for w in rig.secrets.puts] == [rig.cert_set.key_secret_name]


def test_a_create_retried_after_the_wait_failed_reuses_the_recorded_certificate(rig: Rig) -> None:
    # Given a createSecret whose wait for the certificate ran out of time
    token = rig.start()
    rig.ca.wait_failures.append(DeadlineError("certificate not issued within the time left"))
    with pytest.raises(DeadlineError):
        rig.run("createSecret", token)
    issuing = rig.secrets.describe(rig.name).tags[TAG_ISSUING]
    assert issuing.split(" ")[0] == token

    # When Secrets Manager retries createSecret
    result = rig.run("createSecret", token)

    # Then the recorded certificate is stored; none was requested again
    assert result.action == "created"
    assert rig.ca.issue_count == 1
    assert (
        rig.ca.get(issuing.split(" ")[1]).certificate_pem
        == SetReader(rig.secrets).read(rig.name, version=token).manifest.certificate
    )


@pytest.fixture(scope="module")
def rsa_ca(root_ca: LocalCA) -> FakeCA:
    """A Private CA with an RSA chain: each certificate alone is over 1,024
    characters of PEM."""
    root = LocalCA.create_root("certrotor RSA root", KeyAlgorithm.RSA_2048)
    return FakeCA(root, root.create_subordinate("certrotor RSA Private CA", KeyAlgorithm.RSA_2048))


def test_a_set_whose_ca_chain_cannot_fit_its_parts_stores_no_key_and_requests_no_certificate(
    make_rig: Callable[..., Rig], rsa_ca: FakeCA
) -> None:
    # Given one chain part of 1,024 characters and an RSA CA chain
    rig = make_rig(fake_ca=rsa_ca, chain_parts=1, value_limit=1024)
    issued_before = rsa_ca.issue_count
    token = rig.start()

    # When createSecret runs
    with pytest.raises(CapacityError):
        rig.run("createSecret", token)

    # Then no key was stored and no certificate requested
    assert rig.secrets.find(rig.cert_set.key_secret_name, token) is None
    assert rig.secrets.writes == []
    assert rsa_ca.issue_count == issued_before


# -- refused before anything is written --------------------------------------------


def test_a_set_with_rotation_disabled_is_refused_and_nothing_is_written(rig: Rig) -> None:
    # Given a staged token on a set whose rotation is disabled
    token = rig.start()
    rig.secrets.set_rotation_enabled(rig.name, False)

    # When createSecret runs
    with pytest.raises(RotationError, match="not enabled"):
        rig.run("createSecret", token)

    # Then nothing was written, requested or redeployed
    assert rig.secrets.writes == []
    assert rig.ca.issue_count == 0 and rig.services.attempts == []


@pytest.mark.parametrize("which", ["a token never staged", "the previous version"])
def test_a_token_that_is_not_staged_pending_is_refused_and_nothing_is_written(rig: Rig, which: str) -> None:
    # Given a token that is not a version of the set, or one no longer staged
    if which == "the previous version":
        rig.rotate()
        token = rig.secrets.describe(rig.name).version_with("AWSPREVIOUS")
        assert token is not None
    else:
        token = str(uuid.uuid4())
    writes, issued, attempts = len(rig.secrets.writes), rig.ca.issue_count, len(rig.services.attempts)

    # When createSecret runs for it
    with pytest.raises(RotationError):
        rig.run("createSecret", token)

    # Then nothing more was written, requested or redeployed
    assert len(rig.secrets.writes) == writes
    assert (rig.ca.issue_count, len(rig.services.attempts)) == (issued, attempts)


def test_an_unknown_step_is_refused_and_nothing_is_written(rig: Rig) -> None:
    # Given a staged token
    token = rig.start()

    # When an event names a step Secrets Manager does not have
    with pytest.raises(RotationError, match="unknown rotation step"):
        rig.run("deleteSecret", token)

    # Then nothing was written, requested or redeployed
    assert rig.secrets.writes == []
    assert rig.ca.issue_count == 0 and rig.services.attempts == []


# -- testSecret --------------------------------------------------------------------


def test_testsecret_on_the_configuration_test_copy_proves_the_current_set(rig: Rig) -> None:
    # Given a rotated set, and the pending copy of its current manifest that
    # Secrets Manager makes when rotation is configured without rotating now
    rig.rotate()
    serial = rig.current().manifest.serial
    token = str(uuid.uuid4())
    stage(rig.secrets, rig.name, token, copy_current=True)

    # When testSecret runs alone on the copy
    result = rig.run("testSecret", token)

    # Then the current set is proved
    assert (result.action, result.serial) == ("verified", serial)


def test_testsecret_before_the_first_issuance_has_nothing_to_test(rig: Rig) -> None:
    # Given a set never rotated, and the configuration-test copy of its placeholder
    token = str(uuid.uuid4())
    stage(rig.secrets, rig.name, token, copy_current=True)

    # When testSecret runs alone on the copy
    result = rig.run("testSecret", token)

    # Then there is nothing to prove yet, and nothing was written
    assert result.action == "nothing issued yet to test"
    assert rig.secrets.writes == []


def test_testsecret_refuses_a_pending_manifest_naming_another_version_that_is_not_the_current_one(rig: Rig) -> None:
    # Given two rotations, and a pending version holding the first one's
    # (now previous) manifest
    first = rig.rotate()
    rig.rotate()
    stale = rig.secrets.get(rig.name, version=first).value
    token = rig.start()
    rig.secrets.put(rig.name, stale, token)

    # When testSecret runs on it
    # Then it is refused: the manifest names neither the token nor the current set
    with pytest.raises(IntegrityError, match="names version"):
        rig.run("testSecret", token)


# -- finishSecret ------------------------------------------------------------------


def test_a_finish_that_stopped_after_promoting_some_parts_completes_on_retry_and_redeploys_once(rig: Rig) -> None:
    # Given a finishSecret that promoted the key and the first chain part, then stopped
    token = rig.rotate_until_finish()
    for name in rig.cert_set.part_secret_names[:2]:
        previous = rig.current_version(name)
        rig.secrets.move_stage(name, CURRENT, token, previous)
        rig.secrets.remove_stage(name, PENDING, token)

    # When Secrets Manager retries finishSecret
    result = rig.run("finishSecret", token)

    # Then every secret is at the token, and the service was redeployed once
    assert result.action == "finished"
    for name in (rig.name, *rig.cert_set.part_secret_names):
        assert rig.current_version(name) == token, name
        assert pending_version(rig.secrets.describe(name).versions) is None, name
    assert rig.current().manifest.version == token
    assert rig.services.redeployed == ["apps/web"]


def test_a_strict_redeploy_that_fails_after_promotion_raises_and_records_no_redeploy(
    make_rig: Callable[..., Rig],
) -> None:
    # Given redeploy_strict and a service whose redeploy fails
    rig = make_rig(fake_services=FakeServices(failing={"apps/web"}), redeploy_strict=True)
    token = rig.rotate_until_finish()

    # When finishSecret runs
    with pytest.raises(AwsError, match="redeploy failed"):
        rig.run("finishSecret", token)

    # Then the new set is current, but the redeploy is not recorded as done
    assert rig.current().manifest.version == token
    assert TAG_REDEPLOYED not in rig.secrets.describe(rig.name).tags


def test_a_strict_finish_retried_after_a_failed_redeploy_redeploys_and_records_it(
    make_rig: Callable[..., Rig],
) -> None:
    # Given a strict finishSecret whose redeploy failed after promotion
    rig = make_rig(fake_services=FakeServices(failing={"apps/web"}), redeploy_strict=True)
    token = rig.rotate_until_finish()
    with pytest.raises(AwsError):
        rig.run("finishSecret", token)

    # When the service can be redeployed again and Secrets Manager retries
    rig.services.failing.clear()
    result = rig.run("finishSecret", token)

    # Then the service is redeployed and the redeploy recorded for the token
    assert result.redeployed == ["apps/web"]
    assert rig.services.redeployed == ["apps/web"]
    assert rig.secrets.describe(rig.name).tags[TAG_REDEPLOYED] == token


TWO_SERVICES = [{"cluster": "apps", "service": "web"}, {"cluster": "apps", "service": "api"}]


def test_a_failing_service_is_reported_and_the_redeploy_recorded_when_not_strict(
    make_rig: Callable[..., Rig],
) -> None:
    # Given two services, one of which fails to redeploy, without redeploy_strict
    rig = make_rig(fake_services=FakeServices(failing={"apps/api"}), services=TWO_SERVICES)
    token = rig.rotate_until_finish()

    # When finishSecret runs
    result = rig.run("finishSecret", token)

    # Then the failure is reported, the other service redeployed, and the token recorded
    assert result.redeploy_failures == ["apps/api"]
    assert result.redeployed == ["apps/web"]
    assert rig.secrets.describe(rig.name).tags[TAG_REDEPLOYED] == token


def test_a_finish_retried_after_a_reported_redeploy_failure_does_not_redeploy_again(
    make_rig: Callable[..., Rig],
) -> None:
    # Given a finishSecret that reported a failed redeploy without redeploy_strict
    rig = make_rig(fake_services=FakeServices(failing={"apps/api"}), services=TWO_SERVICES)
    token = rig.rotate_until_finish()
    rig.run("finishSecret", token)
    attempts = list(rig.services.attempts)

    # When Secrets Manager calls finishSecret again
    result = rig.run("finishSecret", token)

    # Then no service is redeployed a second time
    assert result.action == "finished; services already redeployed"
    assert rig.services.attempts == attempts


def test_a_finish_before_create_completed_is_refused_and_promotes_nothing(rig: Rig) -> None:
    # Given a createSecret that stored the key, then failed waiting for the certificate
    token = rig.start()
    rig.ca.wait_failures.append(DeadlineError("certificate not issued within the time left"))
    with pytest.raises(DeadlineError):
        rig.run("createSecret", token)
    before = {name: rig.current_version(name) for name in (rig.name, *rig.cert_set.part_secret_names)}

    # When finishSecret is invoked for the token out of order
    with pytest.raises(IntegrityError):
        rig.run("finishSecret", token)

    # Then no secret of the set moved: the current key still matches the current certificate
    assert {name: rig.current_version(name) for name in before} == before
    assert rig.services.attempts == []


def test_a_ca_certificate_renewed_since_it_was_cached_is_read_again_once(
    rig: Rig, root_ca: LocalCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function instance whose cached CA chain is not the CA's current one
    # (a certificate of another CA under the same root stands for the stale copy)
    stale_chain = root_ca.create_subordinate("before renewal").pem + root_ca.pem
    real_chain = rig.ca.ca_certificate_chain
    reads: list[bool] = []

    def chain(refresh: bool = False) -> str:
        reads.append(refresh)
        return real_chain(refresh) if refresh else stale_chain

    monkeypatch.setattr(rig.ca, "ca_certificate_chain", chain)
    token = rig.start()
    # When createSecret assembles the issued certificate
    result = rig.run("createSecret", token)
    # Then it read the chain again, once, and stored the set with one certificate
    assert result.action == "created"
    assert reads.count(True) == 1
    assert rig.ca.issue_count == 1


# -- calls per rotation ------------------------------------------------------------


def _count_reads(rig: Rig) -> Counter[str]:
    """Counts the rig's Secrets Manager reads (its writes are recorded already)."""
    reads: Counter[str] = Counter()
    for operation in ("describe", "get"):
        original = getattr(rig.secrets, operation)

        def counted(*args: Any, _original: Any = original, _operation: str = operation, **kwargs: Any) -> Any:
            reads[_operation] += 1
            return _original(*args, **kwargs)

        setattr(rig.secrets, operation, counted)
    return reads


def test_a_warm_rotation_writes_each_secret_once_moves_each_current_once_and_reads_back_nothing_it_wrote(
    rig: Rig,
) -> None:
    # Given a set rotated once (every part now current at the manifest's version)
    rig.rotate()
    reads = _count_reads(rig)
    rig.secrets.writes.clear()

    # When the four steps run on one function instance
    token = rig.rotate()

    # Then each secret got one value and one AWSCURRENT move, AWSPENDING was
    # never removed, and the only reads were one DescribeSecret at create and
    # at finish, the current manifest at create (what the new one supersedes)
    # and the pending manifest's stages at test
    names = [rig.name, *rig.cert_set.part_secret_names]
    operations = Counter(w.operation for w in rig.secrets.writes)
    assert operations == Counter({"put": len(names), "move_stage": len(names), "tag": 2})
    assert sorted(w.secret for w in rig.secrets.writes if w.operation == "move_stage") == sorted(names)
    assert reads == Counter({"describe": 2, "get": 2})
    assert rig.current().manifest.version == token


def test_steps_on_different_function_instances_read_what_they_did_not_write_and_converge(rig: Rig) -> None:
    # Given a set rotated once
    rig.rotate()
    reads = _count_reads(rig)
    token = rig.start()

    # When every step runs on a fresh function instance (nothing carried over)
    actions = []
    for step in STEPS:
        rig.rotation = RotationService(rig.config, rig.secrets, rig.ca, rig.services)
        actions.append(rig.run(step, token).action)

    # Then createSecret read the current manifest (what it supersedes),
    # testSecret read every part at the token, finishSecret checked the
    # manifest's value, and the set is current with one certificate
    assert actions == ["created", "nothing to set", "verified", "finished"]
    assert reads["get"] == 1 + 1 + len(rig.cert_set.part_secret_names) + 1
    assert rig.current().manifest.version == token
    assert rig.ca.issue_count == 2


def test_a_finish_whose_parts_are_not_current_at_the_manifests_version_looks_at_them_and_completes(rig: Rig) -> None:
    # Given a set whose parts were never current at the manifest's version
    # (as provisioned: each secret has its own first version)
    token = rig.rotate_until_finish()
    assert {rig.current_version(n) for n in rig.cert_set.part_secret_names}.isdisjoint({rig.current_version(rig.name)})

    # When finishSecret runs
    result = rig.run("finishSecret", token)

    # Then every part and the manifest are current at the token
    assert result.action == "finished"
    for name in (rig.name, *rig.cert_set.part_secret_names):
        assert rig.current_version(name) == token, name


def test_setsecret_makes_no_call_and_refuses_a_secret_this_function_does_not_manage(rig: Rig) -> None:
    # Given a staged token
    token = rig.start()
    reads = _count_reads(rig)

    # When setSecret runs for the set's ARN, and for another secret
    result = rig.run("setSecret", token)
    event = {"Step": "setSecret", "SecretId": "arn:aws:secretsmanager:eu-west-1:1:secret:other-AbCdEf"}
    with pytest.raises(RotationError, match="not a certificate set"):
        rig.rotation.run(RotationRequest.parse({**event, "ClientRequestToken": token}), remaining_seconds=lambda: 60)

    # Then the set's step did nothing, and neither read nor wrote anything
    assert (result.set_name, result.action) == (rig.name, "nothing to set")
    assert reads == Counter() and rig.secrets.writes == []


def test_a_reload_set_is_finished_without_any_redeploy(make_rig: Callable[..., Rig]) -> None:
    # Given a set whose consumers reload (no services to redeploy)
    rig = make_rig(delivery="reload", services=[])
    token = rig.rotate_until_finish()

    # When finishSecret runs, twice (Secrets Manager may retry it)
    result = rig.run("finishSecret", token)
    again = rig.run("finishSecret", token)

    # Then the set is current, and no service was redeployed or recorded
    assert rig.current().manifest.version == token
    assert result.action == again.action == "finished; delivery is reload, no redeploy"
    assert rig.services.attempts == []
    assert TAG_REDEPLOYED not in rig.secrets.describe(rig.name).tags


def test_a_both_set_is_redeployed_as_a_redeploy_set_is(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(delivery="both")
    token = rig.rotate_until_finish()
    result = rig.run("finishSecret", token)
    assert result.redeployed == ["apps/web"]
    assert rig.secrets.describe(rig.name).tags[TAG_REDEPLOYED] == token


# -- usages: each certificate proved in the role(s) it is for --------------------


@pytest.mark.parametrize(
    ("usage", "template", "eku"),
    [
        ("server", "EndEntityServerAuthCertificate/V1", ["serverAuth"]),
        ("client", "EndEntityClientAuthCertificate/V1", ["clientAuth"]),
        ("both", "EndEntityCertificate/V1", ["serverAuth", "clientAuth"]),
    ],
)
def test_a_set_of_each_usage_rotates_with_its_template_and_validity(
    make_rig: Callable[..., Rig], usage: str, template: str, eku: list[str]
) -> None:
    # Given a set with this usage and a 41-day validity
    rig = make_rig(usage=usage, validity_days=41)
    # When it rotates through the four steps
    token = rig.rotate()
    # Then Private CA was asked for the usage's template and the configured validity
    (call,) = rig.ca.calls
    assert call.template_arn == f"arn:aws:acm-pca:::template/{template}"
    assert call.validity_days == 41
    # And the current set's certificate carries exactly that usage
    leaf = parse_bundle(rig.current().bundle_pem).leaf
    assert [oid._name for oid in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value] == eku
    assert rig.current().manifest.version == token


@pytest.mark.parametrize(("usage", "issued_as"), [("client", "server"), ("server", "client"), ("both", "server")])
def test_testsecret_refuses_a_certificate_issued_for_another_usage(
    make_rig: Callable[..., Rig], usage: str, issued_as: str
) -> None:
    # Given a CA that answers every request with the template of another usage
    rig = make_rig(usage=usage)
    real_issue = rig.ca.issue

    def other_template(csr_pem: str, validity_days: int, template_arn: str, token: str) -> str:
        return real_issue(csr_pem, validity_days, fakes_template_arn(Usage(issued_as)), token)

    rig.ca.issue = other_template  # type: ignore[method-assign]
    token = rig.start()
    rig.run("createSecret", token)
    # When testSecret proves the pending set / Then it fails, naming the usage
    with pytest.raises(PolicyError, match="extended key usage"):
        rig.run("testSecret", token)


def test_testsecret_proves_a_client_certificate_as_the_client_of_a_mutual_tls_server(
    make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a client set and a record of the handshakes testSecret runs
    rig = make_rig(usage="client")
    roles: list[str] = []
    # (verify imports the TLS stack only when it proves a handshake)
    from certrotor.pki import handshake

    for name in ("handshake_in_memory", "client_handshake_in_memory", "mutual_handshake_in_memory"):
        real = getattr(handshake, name)
        monkeypatch.setattr(handshake, name, _recording(real, name, roles))
    token = rig.start()
    rig.run("createSecret", token)
    # When testSecret runs
    rig.run("testSecret", token)
    # Then the certificate was proved as a client, in one mutual-TLS handshake
    assert roles == ["client_handshake_in_memory"]


def _recording(real: Callable[..., Any], name: str, roles: list[str]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        roles.append(name)
        return real(*args, **kwargs)

    return run

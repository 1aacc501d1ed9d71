"""SetReader over the fake secret store: the calls each kind of read takes
(`last.calls`, which certrotor-fetch reports), the trust secret read with the
parts, the fallbacks when BatchGetSecretValue is refused or throttled, and the
exact refusals of a set whose pieces do not belong together."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

from certrotor.config import CertrotorConfig, load_config
from certrotor.errors import AwsError, CapacityError, IntegrityError, NotFoundError, ThrottledError
from certrotor.local.ca import LocalCA
from certrotor.ports import CURRENT, SecretValue
from certrotor.services.reader import ReadStats, SetReader
from certrotor.services.rotation import RotationRequest, RotationService, Step
from tests.unit.rotation.fakes import FakeCA, FakeSecrets, FakeServices, provision, stage

TRUST_VALUE = '{"trust": "bundle"}'


class BatchRefusingSecrets(FakeSecrets):
    """A store whose BatchGetSecretValue fails with `error` (fault injection:
    a reader without the batch permission, or a throttled batch)."""

    def __init__(self, error: AwsError) -> None:
        super().__init__()
        self.error = error

    def get_current_many(self, secret_ids: Sequence[str]) -> dict[str, SecretValue]:
        raise self.error


@dataclass
class Rotated:
    config: CertrotorConfig
    secrets: FakeSecrets
    token: str

    @property
    def name(self) -> str:
        return self.config.sets[0].name

    @property
    def part_count(self) -> int:
        return len(SetReader(self.secrets).read(self.name).manifest.parts)

    @property
    def trust_name(self) -> str:
        trust = SetReader(self.secrets).read(self.name).manifest.trust
        assert trust is not None
        return trust


def _rotate(secrets: FakeSecrets, config: CertrotorConfig, ca: FakeCA) -> str:
    token = str(uuid.uuid4())
    stage(secrets, config.sets[0].name, token)
    rotation = RotationService(config, secrets, ca, FakeServices())
    for step in Step:
        event = {"Step": step.value, "SecretId": config.sets[0].name, "ClientRequestToken": token}
        rotation.run(RotationRequest.parse(event), remaining_seconds=lambda: 60)
    return token


@pytest.fixture
def rotate(root_ca: LocalCA) -> Callable[..., Rotated]:
    """A set rotated once in `secrets` (a plain fake store by default), with
    its trust secret holding TRUST_VALUE unless `trust` is False."""

    def build(secrets: FakeSecrets | None = None, trust: bool = True, **overrides: object) -> Rotated:
        store = secrets if secrets is not None else FakeSecrets()
        ca = FakeCA(root_ca)
        config = provision(store, ca.ca_arn, **overrides)
        token = _rotate(store, config, ca)
        rotated = Rotated(config, store, token)
        if trust:
            store.create_secret(rotated.trust_name, TRUST_VALUE)
        return rotated

    return build


def test_a_reader_that_has_read_nothing_reports_no_calls_and_no_trust() -> None:
    reader = SetReader(FakeSecrets())
    assert (reader.last, reader.trust, reader.trust_error) == (ReadStats(0), None, None)


def test_the_current_set_takes_the_manifest_and_one_batch(rotate: Callable[..., Rotated]) -> None:
    rotated = rotate()
    reader = SetReader(rotated.secrets)
    assembled = reader.read(rotated.name)
    assert assembled.manifest.version == rotated.token
    assert reader.last == ReadStats(2)
    assert (reader.trust, reader.trust_error) == (None, None)


def test_the_trust_secret_comes_in_the_parts_batch(rotate: Callable[..., Rotated]) -> None:
    rotated = rotate()
    reader = SetReader(rotated.secrets)
    reader.read(rotated.name, with_trust=True)
    assert reader.last == ReadStats(2)
    assert reader.trust is not None
    assert (reader.trust.name, reader.trust.value, reader.trust_error) == (rotated.trust_name, TRUST_VALUE, None)


@pytest.mark.parametrize(
    "error", [AwsError("BatchGetSecretValue: AccessDeniedException"), ThrottledError("BatchGetSecretValue: throttled")]
)
def test_without_the_batch_each_part_and_the_trust_secret_are_read_on_their_own(
    rotate: Callable[..., Rotated], error: AwsError
) -> None:
    # Given a store whose BatchGetSecretValue is refused or throttled
    rotated = rotate(BatchRefusingSecrets(error))
    reader = SetReader(rotated.secrets)
    # When the current set is read with its trust secret
    assembled = reader.read(rotated.name, with_trust=True)
    # Then the manifest, each part and the trust secret took one call each
    assert assembled.manifest.version == rotated.token
    assert reader.last == ReadStats(1 + 1 + rotated.part_count + 1)
    assert reader.trust is not None
    assert (reader.trust.value, reader.trust_error) == (TRUST_VALUE, None)


def test_a_trust_secret_that_cannot_be_read_is_reported_not_raised(rotate: Callable[..., Rotated]) -> None:
    rotated = rotate(trust=False)
    reader = SetReader(rotated.secrets)
    assembled = reader.read(rotated.name, with_trust=True)
    assert assembled.manifest.version == rotated.token
    assert reader.trust is None
    assert isinstance(reader.trust_error, NotFoundError)
    # The batch failed on the missing trust secret: each part, then the trust secret, on its own
    assert reader.last == ReadStats(1 + 1 + rotated.part_count + 1)


def test_a_set_read_by_version_reads_each_part_at_it_and_the_trust_secret_alone(
    rotate: Callable[..., Rotated],
) -> None:
    rotated = rotate()
    reader = SetReader(rotated.secrets)
    reader.read(rotated.name, version=rotated.token, with_trust=True)
    assert reader.last == ReadStats(1 + rotated.part_count + 1)
    assert reader.trust is not None
    assert reader.trust.value == TRUST_VALUE


def test_a_caller_holding_the_manifest_and_the_parts_makes_no_call(rotate: Callable[..., Rotated]) -> None:
    rotated = rotate()
    manifest = rotated.secrets.get(rotated.name, version=rotated.token)
    parts = {
        p.name: rotated.secrets.get(p.name, version=rotated.token).value
        for p in SetReader(rotated.secrets).read(rotated.name).manifest.parts
    }
    reader = SetReader(rotated.secrets)
    reader.read(rotated.name, version=rotated.token, manifest_value=manifest)
    assert reader.last == ReadStats(rotated.part_count)
    reader.read(rotated.name, version=rotated.token, manifest_value=manifest, known_parts=parts)
    assert reader.last == ReadStats(0)
    reader.read(rotated.name, version=rotated.token, known_parts=parts)
    assert reader.last == ReadStats(1)


def test_a_copy_of_the_current_manifest_at_another_version_is_refused(rotate: Callable[..., Rotated]) -> None:
    # Given RotateSecret's copy of the current manifest at a new version
    rotated = rotate()
    copy = str(uuid.uuid4())
    rotated.secrets.stage_pending(rotated.name, copy, copy_current=True)
    # When that version is read as a set
    with pytest.raises(IntegrityError) as raised:
        SetReader(rotated.secrets).read(rotated.name, version=copy)
    # Then it is refused: the manifest names another version
    assert str(raised.value) == f"manifest names version {rotated.token} but was read at {copy}"


def test_a_manifest_whose_parts_lack_its_version_names_the_first_such_part(
    rotate: Callable[..., Rotated], root_ca: LocalCA
) -> None:
    # Given a current manifest whose parts were never written at its version
    rotated = rotate()
    manifest = rotated.secrets.get(rotated.name, stage=CURRENT).value
    fresh = FakeSecrets()
    config = provision(fresh, FakeCA(root_ca).ca_arn)
    fresh.put(rotated.name, manifest, rotated.token, stages=(CURRENT,))
    # When the current set is read
    with pytest.raises(IntegrityError) as raised:
        SetReader(fresh).read(rotated.name)
    # Then the first part missing the version is named
    first = config.sets[0].key_secret_name
    assert str(raised.value) == (
        f"part {first} has no version {rotated.token}, the manifest's: the set's parts are from different rotations"
    )


def test_a_manifest_listing_more_chain_parts_than_provisioned_is_refused(rotate: Callable[..., Rotated]) -> None:
    # Given a set whose chain needs several parts
    rotated = rotate(value_limit=1024, chain_parts=3)
    used = len(SetReader(rotated.secrets).read(rotated.name).manifest.chain_parts)
    assert used >= 2
    # When it is read by a caller that provisioned one part fewer
    with pytest.raises(CapacityError) as raised:
        SetReader(rotated.secrets).read(rotated.name, provisioned_chain_parts=used - 1)
    # Then it is refused, and the caller that provisioned them all reads it
    assert str(raised.value) == (
        f"set {rotated.name}: manifest lists {used} chain parts but only {used - 1} are provisioned; raise chain_parts"
    )
    SetReader(rotated.secrets).read(rotated.name, provisioned_chain_parts=used)


@pytest.mark.parametrize("copy", [False, True], ids=["pending set", "copy of the current set"])
def test_testsecret_with_fewer_chain_parts_than_the_set_uses_refuses_it(root_ca: LocalCA, copy: bool) -> None:
    # Given a set created with several chain parts: its rotation pending, or
    # finished and Secrets Manager's pending copy of the current value staged
    secrets = FakeSecrets()
    ca = FakeCA(root_ca)
    config = provision(secrets, ca.ca_arn, value_limit=1024, chain_parts=3)
    name = config.sets[0].name
    token = str(uuid.uuid4())
    if copy:
        _rotate(secrets, config, ca)
        secrets.stage_pending(name, token, copy_current=True)
    else:
        stage(secrets, name, token)
        created = RotationService(config, secrets, ca, FakeServices())
        event = {"Step": "createSecret", "SecretId": name, "ClientRequestToken": token}
        created.run(RotationRequest.parse(event), remaining_seconds=lambda: 60)
    used = len(SetReader(secrets).read(name, version=None if copy else token).manifest.chain_parts)
    # When a function configured with one chain part fewer tests it
    rotation = RotationService(_with_chain_parts(config, used - 1), secrets, ca, FakeServices())
    event = {"Step": "testSecret", "SecretId": name, "ClientRequestToken": token}
    # Then testSecret refuses the set it could not hold
    with pytest.raises(CapacityError, match=f"manifest lists {used} chain parts but only {used - 1} are provisioned"):
        rotation.run(RotationRequest.parse(event), remaining_seconds=lambda: 60)


def _with_chain_parts(config: CertrotorConfig, chain_parts: int) -> CertrotorConfig:
    cert_set = config.sets[0]
    return load_config(
        {
            "ca": {"arn": config.ca.arn},
            "sets": [
                {
                    "name": cert_set.name,
                    "common_name": cert_set.common_name,
                    "dns_names": list(cert_set.dns_names),
                    "ip_addresses": list(cert_set.ip_addresses),
                    "key_algorithm": cert_set.key_algorithm.value,
                    "validity_days": cert_set.validity_days,
                    "chain_parts": chain_parts,
                    "value_limit": cert_set.value_limit,
                    "services": [{"cluster": s.cluster, "service": s.service} for s in cert_set.services],
                }
            ],
        }
    )

"""SecretPort's contract: FakeSecrets and SecretStore on the emulator behave
as Secrets Manager does, scenario by scenario. Where moto deviates from AWS,
the emulator is corrected (certrotor.local.emulator); where the fake did, the
fake is. docs/TESTING.md lists each difference found and how it was resolved."""

from __future__ import annotations

import uuid

import pytest

from certrotor.errors import AwsError, IntegrityError, NotFoundError
from certrotor.ports import CURRENT, PENDING
from tests.integration.contract.conftest import SecretBackend

PREVIOUS = "AWSPREVIOUS"
MAX_SECRET_STRING = 65536


def token() -> str:
    return str(uuid.uuid4())


def test_a_put_value_reads_back_by_version_with_its_stages(secrets: SecretBackend) -> None:
    name = secrets.name()
    secrets.create(name, "v0")
    version = token()
    secrets.port.put(name, "v1", version)
    got = secrets.port.get(name, version=version)
    assert (got.name, got.value, got.version, got.stages) == (name, "v1", version, (PENDING,))


def test_a_get_without_version_or_stage_is_awscurrent(secrets: SecretBackend) -> None:
    name = secrets.name()
    first = secrets.create(name, "v0")
    secrets.port.put(name, "v1", token())
    got = secrets.port.get(name)
    assert (got.value, got.version, got.stages) == ("v0", first, (CURRENT,))


def test_the_same_value_again_is_a_no_op_and_another_value_is_an_integrity_error(secrets: SecretBackend) -> None:
    name = secrets.name()
    secrets.create(name, "v0")
    version = token()
    secrets.port.put(name, "v1", version)
    secrets.port.put(name, "v1", version)
    with pytest.raises(IntegrityError):
        secrets.port.put(name, "other", version)
    assert secrets.port.get(name, version=version).value == "v1"


def test_a_value_of_exactly_the_limit_is_stored_and_one_more_character_is_refused(secrets: SecretBackend) -> None:
    name = secrets.name()
    secrets.create(name, "v0")
    at_limit = token()
    secrets.port.put(name, "x" * MAX_SECRET_STRING, at_limit)
    assert len(secrets.port.get(name, version=at_limit).value) == MAX_SECRET_STRING
    over = token()
    with pytest.raises(AwsError):
        secrets.port.put(name, "x" * (MAX_SECRET_STRING + 1), over)
    assert secrets.port.find(name, over) is None


@pytest.mark.parametrize("length", [31, 65])
def test_a_client_request_token_outside_32_to_64_characters_is_an_aws_error(
    secrets: SecretBackend, length: int
) -> None:
    # botocore refuses it before sending (ParamValidationError): the port says AwsError, like any refusal
    name = secrets.name()
    secrets.create(name, "v0")
    with pytest.raises(AwsError):
        secrets.port.put(name, "v1", "t" * length)


@pytest.mark.parametrize("length", [32, 64])
def test_a_client_request_token_of_32_or_64_characters_is_accepted(secrets: SecretBackend, length: int) -> None:
    name = secrets.name()
    secrets.create(name, "v0")
    secrets.port.put(name, "v1", "t" * length)
    assert secrets.port.get(name, version="t" * length).value == "v1"


def test_a_version_asked_for_with_a_stage_it_does_not_carry_is_refused(secrets: SecretBackend) -> None:
    # VersionId and VersionStage both given must agree (InvalidRequestException):
    # a refusal, not "no such version"
    name = secrets.name()
    first = secrets.create(name, "v0")
    with pytest.raises(AwsError) as refused:
        secrets.port.get(name, version=first, stage=PENDING)
    assert not isinstance(refused.value, NotFoundError)


def test_the_pending_version_rotatesecret_made_has_no_value_yet(secrets: SecretBackend) -> None:
    name = secrets.name()
    secrets.create(name, "v0")
    pending = token()
    secrets.stage_pending(name, pending)
    assert secrets.port.find(name, pending) is None
    assert secrets.port.describe(name).versions[pending] == (PENDING,)
    # createSecret's put gives it the value, keeping AWSPENDING
    secrets.port.put(name, "v1", pending)
    assert secrets.port.get(name, version=pending).value == "v1"


def test_an_unknown_version_or_secret_is_not_found(secrets: SecretBackend) -> None:
    name = secrets.name()
    secrets.create(name, "v0")
    assert secrets.port.find(name, token()) is None
    with pytest.raises(NotFoundError):
        secrets.port.get(name, version=token())
    with pytest.raises(NotFoundError):
        secrets.port.describe(secrets.name())


def test_moving_awscurrent_labels_the_version_it_left_awsprevious(secrets: SecretBackend) -> None:
    name = secrets.name()
    first = secrets.create(name, "v0")
    second = token()
    secrets.port.put(name, "v1", second)
    secrets.port.move_stage(name, CURRENT, second, first)
    versions = secrets.port.describe(name).versions
    assert versions[second] == (PENDING, CURRENT) or sorted(versions[second]) == sorted((PENDING, CURRENT))
    assert versions[first] == (PREVIOUS,)
    assert secrets.port.get(name).version == second


def test_moving_a_stage_from_a_version_that_does_not_hold_it_is_refused(secrets: SecretBackend) -> None:
    name = secrets.name()
    first = secrets.create(name, "v0")
    third, second = token(), token()
    secrets.port.put(name, "v2", third)
    secrets.port.put(name, "v1", second)  # AWSPENDING moves here: `third` holds no label
    with pytest.raises(AwsError):
        secrets.port.move_stage(name, CURRENT, second, third)
    with pytest.raises(AwsError):
        secrets.port.move_stage(name, CURRENT, second, None)
    assert secrets.port.get(name).version == first


def test_awscurrent_can_only_be_moved_never_removed(secrets: SecretBackend) -> None:
    name = secrets.name()
    first = secrets.create(name, "v0")
    with pytest.raises(AwsError):
        secrets.port.remove_stage(name, CURRENT, first)
    assert secrets.port.get(name).version == first


def test_removing_a_stage_leaves_the_version_unlabelled_and_unlisted(secrets: SecretBackend) -> None:
    # DescribeSecret lists only versions that carry a label (others are deprecated)
    name = secrets.name()
    first = secrets.create(name, "v0")
    second = token()
    secrets.port.put(name, "v1", second)
    secrets.port.remove_stage(name, PENDING, second)
    assert secrets.port.describe(name).versions == {first: (CURRENT,)}
    # while the value stays readable by VersionId
    assert secrets.port.get(name, version=second).value == "v1"


def test_a_put_with_awscurrent_moves_it_from_the_version_that_held_it(secrets: SecretBackend) -> None:
    name = secrets.name()
    first = secrets.create(name, "v0")
    second = token()
    secrets.port.put(name, "v1", second, stages=(CURRENT,))
    versions = secrets.port.describe(name).versions
    assert versions[second] == (CURRENT,)
    assert CURRENT not in versions[first]
    assert secrets.port.get(name).value == "v1"


def test_a_secret_is_addressed_by_name_or_arn(secrets: SecretBackend) -> None:
    name = secrets.name()
    secrets.create(name, "v0")
    arn = secrets.port.describe(name).arn
    assert arn.startswith("arn:aws:secretsmanager:")
    assert secrets.port.describe(arn).name == name
    assert secrets.port.get(arn).value == "v0"


def test_tags_are_set_and_replaced_by_key(secrets: SecretBackend) -> None:
    name = secrets.name()
    secrets.create(name, "v0")
    secrets.port.tag(name, "certrotor:issuing", "a b")
    secrets.port.tag(name, "certrotor:issuing", "c d")
    assert secrets.port.describe(name).tags["certrotor:issuing"] == "c d"


def test_many_current_values_are_read_at_once_and_a_missing_one_is_not_found(secrets: SecretBackend) -> None:
    names = [secrets.name() for _ in range(3)]
    for i, name in enumerate(names):
        secrets.create(name, f"v{i}")
    got = secrets.port.get_current_many(names)
    assert {n: v.value for n, v in got.items()} == {n: f"v{i}" for i, n in enumerate(names)}
    with pytest.raises(NotFoundError):
        secrets.port.get_current_many([*names, secrets.name()])


def test_a_put_without_stages_is_refused(secrets: SecretBackend) -> None:
    # VersionStages needs at least one label (left out, AWS would make the version AWSCURRENT)
    name = secrets.name()
    secrets.create(name, "v0")
    with pytest.raises(AwsError):
        secrets.port.put(name, "v1", token(), stages=())


def test_rotation_enabled_is_reported(secrets: SecretBackend) -> None:
    name = secrets.name()
    secrets.create(name, "v0")
    assert secrets.port.describe(name).rotation_enabled is False

"""SecretStore against the emulator over HTTP."""

from __future__ import annotations

import uuid

import pytest

from certrotor.aws.secrets import BATCH_LIMIT, SecretStore
from certrotor.errors import IntegrityError, NotFoundError
from certrotor.local.emulator import Emulator


@pytest.fixture
def store(emulator: Emulator) -> SecretStore:
    return SecretStore(emulator.client("secretsmanager"))


def new_secret(emulator: Emulator, value: str = "initial") -> str:
    name = f"adapter/{uuid.uuid4().hex[:10]}"
    emulator.client("secretsmanager").create_secret(Name=name, SecretString=value)
    return name


def test_a_version_written_twice_with_the_same_value_is_one_version(emulator: Emulator, store: SecretStore) -> None:
    # Given a secret
    name = new_secret(emulator)
    token = str(uuid.uuid4())
    # When the same value is put twice under one token
    store.put(name, "value", token)
    store.put(name, "value", token)
    # Then one pending version holds it
    info = store.describe(name)
    assert info.versions[token] == ("AWSPENDING",)
    assert store.get(name, version=token).value == "value"


@pytest.mark.parametrize("stage", ["AWSPENDING", "AWSCURRENT"])
def test_a_different_value_under_an_existing_version_is_refused(
    emulator: Emulator, store: SecretStore, stage: str
) -> None:
    # Given a version written with a value (a pending key part, say)
    name = new_secret(emulator)
    token = str(uuid.uuid4())
    store.put(name, "first", token, stages=(stage,))
    # When another writer puts a different value under the same token
    # (two createSecret calls racing), then it is refused and the first value kept
    with pytest.raises(IntegrityError):
        store.put(name, "second", token, stages=(stage,))
    assert store.get(name, version=token).value == "first"


def test_the_staged_empty_version_takes_its_first_value(emulator: Emulator, store: SecretStore) -> None:
    # Given AWSPENDING staged on an empty version, as RotateSecret does
    name = new_secret(emulator)
    token = str(uuid.uuid4())
    emulator.stage_pending(name, token)
    # When the rotation writes it, then the value is stored under that version
    store.put(name, "manifest", token)
    assert store.get(name, version=token).value == "manifest"


def test_find_returns_none_for_a_version_without_value(emulator: Emulator, store: SecretStore) -> None:
    # Given a secret with AWSPENDING staged on an empty version, as RotateSecret does
    name = new_secret(emulator)
    token = str(uuid.uuid4())
    emulator.stage_pending(name, token)
    # When the version is looked up, then there is nothing yet (ResourceNotFoundException on AWS)
    assert store.find(name, token) is None
    assert store.find(name, str(uuid.uuid4())) is None


def test_a_missing_secret_is_not_found(store: SecretStore) -> None:
    with pytest.raises(NotFoundError):
        store.describe("adapter/does-not-exist")


def test_batch_reads_more_secrets_than_one_call_takes(emulator: Emulator, store: SecretStore) -> None:
    # Given more secrets than BatchGetSecretValue accepts at once
    names = [new_secret(emulator, f"value-{i}") for i in range(BATCH_LIMIT + 3)]
    # When they are read together
    values = store.get_current_many(names)
    # Then every value comes back
    assert [values[n].value for n in names] == [f"value-{i}" for i in range(BATCH_LIMIT + 3)]


def test_moving_awscurrent_marks_the_old_version_previous(emulator: Emulator, store: SecretStore) -> None:
    # Given a pending version beside the current one
    name = new_secret(emulator)
    old = store.describe(name).version_with("AWSCURRENT")
    token = str(uuid.uuid4())
    store.put(name, "new", token)
    # When AWSCURRENT moves and AWSPENDING is removed
    store.move_stage(name, "AWSCURRENT", token, old)
    store.remove_stage(name, "AWSPENDING", token)
    # Then the token is current alone and the old version is previous
    info = store.describe(name)
    assert info.versions[token] == ("AWSCURRENT",)
    assert old is not None and info.versions[old] == ("AWSPREVIOUS",)
    assert store.get(name).value == "new"


def test_tags_are_read_back_by_describe(emulator: Emulator, store: SecretStore) -> None:
    name = new_secret(emulator)
    store.tag(name, "certrotor:redeployed", "token-1")
    assert store.describe(name).tags["certrotor:redeployed"] == "token-1"

"""TrustStore.update, the compare-and-swap of the trust secret, over the
in-memory secret store: what it writes, a concurrent writer (retried with
growing jittered waits, neither change lost), a failure that is not a
conflict, and ensure_ca's decisions (a retired CA stays retired, a known CA
is written again only when its anchor moved)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from certrotor.errors import AwsError
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.local.ca import LocalCA
from certrotor.ports import CURRENT, PENDING
from certrotor.services import trust as trust_module
from certrotor.services.trust import CaStatus, TrustConflict, TrustDocument, TrustStore, ensure_ca
from tests.unit.rotation.fakes import FakeSecrets

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ARN_A = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "a" * 36
ARN_B = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "b" * 36
ARN_C = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "c" * 36


@pytest.fixture(scope="module")
def chains() -> dict[str, str]:
    """CA chains: A and B under one root, C under another, A2 is A renewed under C's root."""
    one, two = LocalCA.create_root("trust root one"), LocalCA.create_root("trust root two")
    return {
        "a": one.create_subordinate("a").pem + one.pem,
        "b": one.create_subordinate("b").pem + one.pem,
        "c": two.create_subordinate("c").pem + two.pem,
        "a2": two.create_subordinate("a renewed").pem + two.pem,
        "root_one": one.pem,
        "root_two": two.pem,
    }


class Interleaving(FakeSecrets):
    """Before each of the next moves of AWSCURRENT, another writer runs
    (whose own writes go through undisturbed)."""

    def __init__(self) -> None:
        super().__init__()
        self.before_swap: list[Callable[[], object]] = []
        self._busy = False

    def move_stage(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        if stage == CURRENT and self.before_swap and not self._busy:
            self._busy = True
            try:
                self.before_swap.pop(0)()
            finally:
                self._busy = False
        super().move_stage(secret_id, stage, to_version, from_version)


def new_store(secrets: FakeSecrets, sleeps: list[float] | None = None) -> TrustStore:
    store = TrustStore(secrets, "rot", sleep=(sleeps if sleeps is not None else []).append)
    secrets.create_secret(store.name, INITIAL_VALUE)
    return store


def test_a_write_is_labelled_current_and_never_pending(chains: dict[str, str]) -> None:
    secrets = FakeSecrets()
    store = new_store(secrets)
    document, written = ensure_ca(store, ARN_A, chains["a"], NOW)
    assert written is True
    # The document read back is the one returned, for this rotator.
    assert store.load() == document
    assert document.rotator == "rot" and document.trusts(ARN_A)
    labels = [stages for stages in secrets.stages_of(store.name).values() if CURRENT in stages]
    assert labels == [(TrustStore.CANDIDATE_STAGE, CURRENT)]
    assert all(PENDING not in stages for stages in secrets.stages_of(store.name).values())


def test_nothing_changed_writes_nothing(chains: dict[str, str]) -> None:
    secrets = FakeSecrets()
    store = new_store(secrets)
    ensure_ca(store, ARN_A, chains["a"], NOW)
    ensure_ca(store, ARN_B, chains["b"], NOW)
    writes = len(secrets.writes)
    # A known CA whose anchor is trusted already: same document, no write (not even a reordering).
    document, written = ensure_ca(store, ARN_A, chains["a"], NOW + dt.timedelta(days=1))
    assert written is False
    assert len(secrets.writes) == writes
    assert [c.arn for c in document.cas] == [ARN_A, ARN_B]


def test_a_retired_ca_is_not_trusted_again(chains: dict[str, str]) -> None:
    secrets = FakeSecrets()
    store = new_store(secrets)
    ensure_ca(store, ARN_A, chains["a"], NOW)
    ensure_ca(store, ARN_C, chains["c"], NOW)
    store.update(lambda before: before.with_status(ARN_A, CaStatus.RETIRED, NOW))
    writes = len(secrets.writes)
    document, written = ensure_ca(store, ARN_A, chains["a"], NOW)
    assert written is False and len(secrets.writes) == writes
    assert document.ca(ARN_A) is not None and document.ca(ARN_A).status == CaStatus.RETIRED  # type: ignore[union-attr]
    assert not document.trusts(ARN_A)
    assert document.pem == chains["root_two"]


def test_a_known_ca_whose_root_changed_keeps_its_status_and_trusts_the_new_root(chains: dict[str, str]) -> None:
    secrets = FakeSecrets()
    store = new_store(secrets)
    ensure_ca(store, ARN_A, chains["a"], NOW, status=CaStatus.INCOMING)
    document, written = ensure_ca(store, ARN_A, chains["a2"], NOW)
    assert written is True
    known = document.ca(ARN_A)
    assert known is not None and known.status == CaStatus.INCOMING
    assert document.trusts(ARN_A)
    assert chains["root_two"] in document.pem


def test_a_concurrent_writer_is_kept_and_the_change_applied_on_top(
    chains: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = Interleaving()
    sleeps: list[float] = []
    store = new_store(secrets, sleeps)
    other = TrustStore(secrets, "rot", sleep=lambda s: None)
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    monkeypatch.setattr(trust_module.random, "uniform", uniform)
    # Two other writers, each between this writer's read and its swap.
    secrets.before_swap = [
        lambda: ensure_ca(other, ARN_B, chains["b"], NOW),
        lambda: ensure_ca(other, ARN_C, chains["c"], NOW),
    ]
    document, written = ensure_ca(store, ARN_A, chains["a"], NOW)
    assert written is True
    assert {c.arn for c in store.load().cas} == {ARN_A, ARN_B, ARN_C}
    assert store.load() == document
    assert store.conflicts == 2
    # Jittered waits, up to 50 ms then doubling.
    assert bounds == [(0, 0.05), (0, 0.1)]
    assert sleeps == [0.05, 0.1]


def test_a_writer_that_always_loses_gives_up_with_a_clear_error(chains: dict[str, str]) -> None:
    secrets = Interleaving()
    sleeps: list[float] = []
    store = new_store(secrets, sleeps)
    other = TrustStore(secrets, "rot", sleep=lambda s: None)
    statuses = [CaStatus.ACTIVE, CaStatus.INCOMING] * TrustStore.ATTEMPTS
    ensure_ca(other, ARN_B, chains["b"], NOW)
    secrets.before_swap = [
        (lambda status=status: other.update(lambda d, s=status: d.with_status(ARN_B, s, NOW)))  # type: ignore[misc]
        for status in statuses[1 : TrustStore.ATTEMPTS + 1]
    ]
    with pytest.raises(TrustConflict) as conflict:
        ensure_ca(store, ARN_A, chains["a"], NOW)
    assert str(conflict.value) == ("rot/trust changed under every one of 6 attempts to write it; run the command again")
    assert store.conflicts == TrustStore.ATTEMPTS == 6
    assert len(sleeps) == 6
    assert store.load().ca(ARN_A) is None


class FailingSwap(FakeSecrets):
    def move_stage(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        raise AwsError(f"UpdateSecretVersionStage {secret_id}: AccessDeniedException")


def test_a_failed_swap_without_a_concurrent_write_is_raised_not_retried(chains: dict[str, str]) -> None:
    secrets = FailingSwap()
    sleeps: list[float] = []
    store = new_store(secrets, sleeps)
    with pytest.raises(AwsError, match=r"^UpdateSecretVersionStage rot/trust: AccessDeniedException$"):
        ensure_ca(store, ARN_A, chains["a"], NOW)
    assert store.conflicts == 0 and sleeps == []
    assert TrustDocument.from_json(secrets.get(store.name, stage=CURRENT).value, "rot") == TrustDocument("rot")


def test_a_trust_secret_never_written_loads_as_this_rotators_empty_bundle() -> None:
    store = new_store(FakeSecrets())
    assert store.load() == TrustDocument(rotator="rot")
    assert store.load().pem == ""


def test_save_writes_the_document_as_current_unless_it_equals_the_one_before(chains: dict[str, str]) -> None:
    secrets = FakeSecrets()
    store = new_store(secrets)
    empty = store.load()
    trusting = empty.with_ca(ARN_A, chains["a"], CaStatus.ACTIVE, NOW)
    assert store.save(trusting, empty) is True
    assert store.load() == trusting
    writes = len(secrets.writes)
    assert store.save(trusting, store.load()) is False
    assert len(secrets.writes) == writes
    # A document equal to an older version becomes current again, under a new version.
    paused = trusting.with_status(ARN_A, CaStatus.INCOMING, NOW)
    assert store.save(paused) is True
    assert store.save(trusting) is True
    assert store.load() == trusting
    current = [v for v, stages in secrets.stages_of(store.name).items() if CURRENT in stages]
    assert len(current) == 1 and len(secrets.stages_of(store.name)) == 4
    assert all(PENDING not in stages for stages in secrets.stages_of(store.name).values())

"""CaRotation's stages over in-memory fakes: the trust document in a fake
Secrets Manager, a trigger that completes (or leaves pending) each rotation
from the CA the set is tagged with, a moved clock. What each stage records,
what it starts and in which order, and every refusal."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from certrotor.aws.rotation_trigger import RotationInProgressError
from certrotor.config import chain_secret_name, key_secret_name
from certrotor.errors import RotationError
from certrotor.layout import Manifest
from certrotor.layout.manifest import INITIAL_VALUE, PartRef
from certrotor.local.ca import LocalCA
from certrotor.ports import CURRENT, SecretInfo
from certrotor.services.ca_rotation import CaPorts, CaRotation, CaRotationError, Paused
from certrotor.services.rotation import TAG_CA, TAG_REDEPLOYED
from certrotor.services.trust import CaStatus, TrustDocument, TrustStore, ensure_ca
from tests.unit.rotation.fakes import FakeSecrets

START = dt.datetime(2026, 4, 1, 8, 0, 0, tzinfo=dt.UTC)
OLD = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/" + "0" * 36
NEW = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/" + "1" * 36
SHARED = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/" + "2" * 36
A, B, C = "tls/a", "tls/b", "tls/c"


def manifest(name: str, version: str, ca: str | None) -> str:
    parts = (PartRef(key_secret_name(name), "key", "0" * 64), PartRef(chain_secret_name(name, 0), "chain", "0" * 64))
    return Manifest(
        set_name=name,
        version=version,
        serial=uuid.uuid4().hex,
        not_before=START.isoformat(),
        not_after=(START + dt.timedelta(days=30)).isoformat(),
        fingerprint="f" * 64,
        key_algorithm="EC_prime256v1",
        parts=parts,
        ca=ca,
    ).to_json()


class Clock:
    def __init__(self) -> None:
        self.mono = 0.0
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        return START

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds


class Secrets(FakeSecrets):
    """FakeSecrets that also logs DescribeSecret calls into a shared event list."""

    def __init__(self, events: list[tuple[str, str]]) -> None:
        super().__init__()
        self.events = events

    def describe(self, secret_id: str) -> SecretInfo:
        self.events.append(("describe", secret_id))
        return super().describe(secret_id)


class Trigger:
    """RotateSecret as the rotation function completes it: a new manifest
    version from the CA the set is tagged with, made current and recorded
    redeployed; `deliver=False` leaves the version pending."""

    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets
        self.started: list[str] = []
        self.deliver = True
        self.redeploy: str | None = "token"  # "token", another value, or None (a reload set)
        self.issue_from: str | None = None
        self.running: dict[str, str] = {}
        self.fail: RotationError | None = None
        self.before_start: Callable[[str], None] | None = None
        self.token: str | None = None

    def start(self, secret_id: str) -> str:
        if self.before_start is not None:
            self.before_start(secret_id)
        if self.fail is not None:
            raise self.fail
        if secret_id in self.running:
            running = self.running.pop(secret_id)
            self.complete(secret_id, running)
            raise RotationInProgressError(secret_id, running)
        self.started.append(secret_id)
        self.secrets.events.append(("start", secret_id))
        token = self.token or str(uuid.uuid4())
        if self.token is not None:
            return token
        if self.deliver:
            self.complete(secret_id, token)
        else:
            self.secrets.stage_pending(secret_id, token)
        return token

    def complete(self, name: str, token: str) -> None:
        # Unrecorded: only CaRotation's own DescribeSecret calls are events.
        ca = self.issue_from or FakeSecrets.describe(self.secrets, name).tags.get(TAG_CA) or OLD
        self.secrets.put(name, manifest(name, token, ca), token, stages=[CURRENT])
        if self.redeploy == "token":
            self.secrets.tag(name, TAG_REDEPLOYED, token)
        elif self.redeploy is not None:
            self.secrets.tag(name, TAG_REDEPLOYED, self.redeploy)


class World:
    def __init__(self, roots: dict[str, str], sets: list[str]) -> None:
        self.events: list[tuple[str, str]] = []
        self.secrets = Secrets(self.events)
        self.clock = Clock()
        self.trigger = Trigger(self.secrets)
        self.roots = roots
        self.disabled: list[str] = []
        self.lines: list[str] = []
        self.sets = sets
        self.secrets.create_secret("rot/trust", INITIAL_VALUE)
        self.store = TrustStore(self.secrets, "rot")
        ensure_ca(self.store, OLD, roots[OLD], START)
        for name in sets:
            self.secrets.create_secret(name, manifest(name, "first", OLD))

    def ports(self) -> CaPorts:
        return CaPorts(
            secrets=self.secrets,
            trust=self.store,
            trigger=self.trigger,
            ca_chain=lambda arn: self.roots[arn],
            disable_ca=self.disabled.append,
        )

    def rotation(self, **kwargs: Any) -> CaRotation:
        options: dict[str, Any] = {"min_interval": 0.0, "poll": 1.0, "timeout": 5.0, **kwargs}
        return CaRotation(
            self.ports(),
            list(reversed(self.sets)),
            say=self.lines.append,
            now=self.clock.now,
            sleep=self.clock.sleep,
            clock=self.clock.monotonic,
            **options,
        )

    def document(self) -> TrustDocument:
        return self.store.load()

    def ca_of(self, name: str) -> str | None:
        return Manifest.from_json(self.secrets.get(name, stage=CURRENT).value).ca

    def tags(self, name: str) -> dict[str, str]:
        return self.secrets.describe(name).tags


@pytest.fixture(scope="module")
def chains(root_ca: LocalCA) -> dict[str, str]:
    """OLD is the shared test root; NEW has its own root; SHARED is a
    subordinate of OLD's root (a new CA that adds no anchor)."""
    new_root = LocalCA.create_root("certrotor new root")
    shared = root_ca.create_subordinate("certrotor shared-root CA")
    return {OLD: root_ca.pem, NEW: new_root.pem, SHARED: shared.pem + root_ca.pem}


@pytest.fixture
def make_world(chains: dict[str, str]) -> Callable[..., World]:
    def build(sets: list[str] | None = None) -> World:
        return World(chains, sets or [A, B])

    return build


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


def test_a_rotation_to_a_ca_under_a_new_root_goes_through_every_stage(world: World) -> None:
    before = world.document()
    assert before.revision == 1
    assert world.rotation().status() is None
    state = world.rotation().rotate(NEW, disable_old=True)
    assert state["stage"] == "done"
    assert (state["from"], state["to"], state["paused"]) == (OLD, NEW, False)
    assert (state["trust_changed"], state["disable_old"]) == (True, True)
    assert state["started"] == state["updated"] == START.isoformat(timespec="seconds")
    # Every set rotated once to pick up the bundle, then once onto the new CA, in name order.
    assert world.trigger.started == [A, B, A, B]
    for name in (A, B):
        assert world.ca_of(name) == NEW
        assert world.tags(name)[TAG_CA] == NEW
        record = state["sets"][name]
        assert set(record) == {"refresh", "refresh_done", "move", "move_done"}
        assert record["refresh_done"] is True and record["move_done"] is True
        assert record["refresh"] != record["move"]
    assert world.disabled == [OLD]
    after = world.document()
    old, new = after.ca(OLD), after.ca(NEW)
    assert old is not None and new is not None
    assert (old.status, new.status) == (CaStatus.RETIRED, CaStatus.ACTIVE)
    assert after.trusts(NEW) and not after.trusts(OLD)
    assert [a.pem for a in after.anchors] == [world.roots[NEW]]
    assert after.revision == 3
    assert world.rotation().status() == state
    assert world.lines == [
        f"CA rotation {OLD} -> {NEW}: the new CA's root is added to the trust bundle (revision 2)",
        "stage trust: rotating every set once so every consumer reads the new trust bundle",
        "refresh: 2/2 sets delivered",
        "stage move",
        f"stage move: moving every set to {NEW}",
        "move: no re-key state machine; rotating set by set (at most 5 at once, 0 s apart)",
        "move: 2/2 sets delivered",
        "stage prune",
        f"stage prune: {OLD} retired; trust bundle revision 3",
        "stage disable",
        f"disabled {OLD} in Private CA",
        "stage done",
        "CA rotation done",
    ]


def test_a_new_ca_under_the_same_root_moves_the_sets_without_a_refresh(world: World) -> None:
    state = world.rotation().rotate(SHARED)
    assert state["stage"] == "done" and state["trust_changed"] is False
    assert world.trigger.started == [A, B]
    assert world.disabled == []
    after = world.document()
    # The old CA is retired, but its anchor stays: the new CA shares it.
    assert after.revision == 1
    assert after.trusts(SHARED)
    assert (
        world.lines[0]
        == f"CA rotation {OLD} -> {SHARED}: the new CA's root is already in the trust bundle (revision 1)"
    )
    assert "stage trust: rotating every set once so every consumer reads the new trust bundle" not in world.lines
    assert world.lines[-3:] == [
        f"stage prune: {OLD} retired; trust bundle revision 1",
        "stage done",
        "CA rotation done",
    ]


def test_until_stops_before_the_named_stage_and_a_later_run_resumes(world: World) -> None:
    state = world.rotation().rotate(NEW, until="trust")
    assert state["stage"] == "trust" and world.trigger.started == []
    assert world.lines[-1] == "stopped before stage trust; run certrotor ca rotate again to go on"
    state = world.rotation().rotate(NEW, until="move")
    assert state["stage"] == "move" and world.trigger.started == [A, B]
    assert f"resuming the CA rotation to {NEW} at stage trust" in world.lines
    assert world.rotation().rotate(NEW)["stage"] == "done"
    assert world.trigger.started == [A, B, A, B]
    with pytest.raises(CaRotationError, match="--until must be one of trust, move, prune, disable, done"):
        world.rotation().rotate(NEW, until="later")


def test_a_rotation_to_another_ca_while_one_is_in_progress_is_refused(world: World) -> None:
    world.rotation().rotate(NEW, until="move")
    with pytest.raises(CaRotationError) as refused:
        world.rotation().rotate(SHARED)
    assert str(refused.value) == (
        f"a CA rotation to {NEW} is in progress (stage move); "
        "finish it (certrotor ca rotate --to that ARN) or roll it back first"
    )


def test_refusals_before_anything_starts(world: World) -> None:
    with pytest.raises(CaRotationError, match="the rotator has no sets to move"):
        CaRotation(world.ports(), [])
    with pytest.raises(CaRotationError, match=f"{OLD} is already this rotator's active CA"):
        world.rotation().rotate(OLD)
    for message in ("pause", "rollback"):
        with pytest.raises(CaRotationError, match="no CA rotation in progress"):
            getattr(world.rotation(), message)()
    two = world.document().with_ca(SHARED, world.roots[SHARED], CaStatus.ACTIVE, START)
    world.store.save(two)
    with pytest.raises(CaRotationError, match="the trust bundle lists 2 active CAs; expected exactly one"):
        world.rotation().rotate(NEW)
    none = two.with_status(SHARED, CaStatus.RETIRED, START).with_status(OLD, CaStatus.RETIRED, START)
    world.store.save(none)
    with pytest.raises(CaRotationError, match="the trust bundle lists 0 active CAs"):
        world.rotation().rotate(NEW)
    assert world.trigger.started == []


def test_a_pause_stops_between_sets_and_a_resume_reuses_the_recorded_rotation(world: World) -> None:
    def pause_once(name: str) -> None:
        world.trigger.before_start = None
        world.rotation().pause()

    world.trigger.before_start = pause_once
    with pytest.raises(Paused) as paused:
        world.rotation().rotate(NEW)
    assert str(paused.value) == "CA rotation paused at stage trust; resume with certrotor ca rotate"
    assert "pause requested at stage trust; the running operation stops after its current set" in world.lines
    state = world.rotation().status()
    assert state is not None and state["paused"] is True
    assert set(state["sets"]) == {A}
    assert world.trigger.started == [A]
    state = world.rotation().rotate(NEW)
    assert state["stage"] == "done" and state["paused"] is False
    # A's refresh was recorded before the pause: it is waited for, not started again.
    assert world.trigger.started == [A, B, A, B]


def test_a_rollback_before_prune_moves_every_set_back_and_retires_the_new_ca(world: World) -> None:
    world.rotation().rotate(NEW, until="prune")
    assert [world.ca_of(n) for n in (A, B)] == [NEW, NEW]
    world.lines.clear()
    state = world.rotation().rollback()
    assert state["stage"] == "rolled_back"
    assert [world.ca_of(n) for n in (A, B)] == [OLD, OLD]
    assert [world.tags(n)[TAG_CA] for n in (A, B)] == [OLD, OLD]
    assert world.trigger.started == [A, B, A, B, A, B]
    assert all(state["sets"][n]["back_done"] is True for n in (A, B))
    after = world.document()
    new = after.ca(NEW)
    assert new is not None and new.status == CaStatus.RETIRED
    assert after.trusts(OLD) and not after.trusts(NEW)
    assert world.lines == [
        f"rolling back: moving every set back to {OLD}",
        "back: no re-key state machine; rotating set by set (at most 5 at once, 0 s apart)",
        "back: 2/2 sets delivered",
        f"rolled back: every set is on {OLD}; {NEW} is no longer trusted unless it shares a root",
    ]
    # Rolled back: a rotation may start again.
    assert world.rotation().status() == state
    assert world.rotation().rotate(NEW, until="move")["stage"] == "move"


def test_a_rollback_of_a_set_already_back_on_the_old_ca_starts_nothing(world: World) -> None:
    world.rotation().rotate(SHARED, until="move")
    started = list(world.trigger.started)
    assert world.rotation().rollback()["stage"] == "rolled_back"
    assert world.trigger.started == started
    with pytest.raises(CaRotationError, match="at stage rolled_back"):
        world.rotation().rollback()


def test_no_rollback_once_the_old_ca_left_the_trust_bundle(world: World) -> None:
    world.rotation().rotate(NEW, disable_old=True, until="disable")
    with pytest.raises(CaRotationError) as refused:
        world.rotation().rollback()
    assert str(refused.value) == (
        "the CA rotation is at stage disable: the old CA left the trust bundle, so it cannot be rolled back; "
        "rotate to the old CA as a new CA rotation instead"
    )
    world.rotation().rotate(NEW)
    with pytest.raises(CaRotationError, match="at stage done"):
        world.rotation().rollback()


def test_a_rotation_not_delivered_in_time_is_reported_with_its_versions(world: World) -> None:
    world.trigger.deliver = False
    with pytest.raises(CaRotationError) as late:
        world.rotation().rotate(NEW)
    token = world.rotation().status()["sets"][A]["refresh"]  # type: ignore[index]
    current = world.secrets.describe(A).version_with(CURRENT)
    assert str(late.value) == (
        f"{A}: rotation {token} not delivered within 5s (current {current}, pending {token}); "
        "fix it and resume with certrotor ca rotate"
    )
    # Polled every second until the timeout; started nothing more.
    assert world.clock.sleeps == [1.0] * 5
    assert world.trigger.started == [A, B]


def test_a_current_version_not_yet_redeployed_is_not_delivered(world: World) -> None:
    world.trigger.redeploy = "an-older-version"
    with pytest.raises(CaRotationError, match="not delivered within 5s"):
        world.rotation().rotate(NEW)
    assert world.clock.sleeps == [1.0] * 5


def test_a_set_that_records_no_redeploy_is_delivered_once_current(world: World) -> None:
    world.trigger.redeploy = None
    assert world.rotation().rotate(NEW)["stage"] == "done"
    assert world.clock.sleeps == []


def test_a_rotation_whose_version_vanished_is_reported(world: World) -> None:
    world.trigger.token = "0" * 36
    with pytest.raises(CaRotationError) as gone:
        world.rotation().rotate(NEW)
    assert str(gone.value) == f"{A}: version {'0' * 36} is gone; resume with certrotor ca rotate"


def test_starts_are_paced_by_the_minimum_interval(world: World) -> None:
    world.rotation(min_interval=0.25).rotate(NEW)
    # Four starts; the clock moves only while waiting.
    assert world.clock.sleeps == [0.25, 0.25, 0.25]


def test_sets_are_started_in_batches_of_parallel_then_waited_for(make_world: Callable[..., World]) -> None:
    world = make_world([A, B, C])
    world.rotation(parallel=2).rotate(SHARED)
    moves = [e for e in world.events if e[1] in (A, B, C)]
    # _move_one reads nothing through describe; the waits do.
    assert moves == [
        ("start", A),
        ("start", B),
        ("describe", A),
        ("describe", B),
        ("start", C),
        ("describe", C),
    ]
    assert "move: 2/3 sets delivered" in world.lines and "move: 3/3 sets delivered" in world.lines
    world = make_world([A, B])
    world.rotation(parallel=0).rotate(SHARED)
    moves = [e for e in world.events if e[1] in (A, B)]
    assert moves == [("start", A), ("describe", A), ("start", B), ("describe", B)]


def test_a_rotation_already_running_is_waited_for_then_one_is_started(world: World) -> None:
    world.secrets.stage_pending(A, "r" * 36)
    world.trigger.running[A] = "r" * 36
    state = world.rotation().rotate(SHARED)
    assert state["stage"] == "done"
    assert f"{A}: waiting for the rotation already in progress ({'r' * 36})" in world.lines
    assert world.trigger.started == [A, B]
    assert state["sets"][A]["move"] != "r" * 36


def test_a_refusal_without_a_running_rotation_is_not_retried(world: World) -> None:
    world.trigger.fail = RotationError("rotation is disabled")
    with pytest.raises(RotationError, match="rotation is disabled"):
        world.rotation().rotate(SHARED)


def test_prune_refuses_while_a_set_is_not_on_the_new_ca(world: World) -> None:
    world.trigger.issue_from = OLD
    with pytest.raises(CaRotationError) as refused:
        world.rotation().rotate(NEW)
    assert str(refused.value) == (
        f"not removing {OLD} from the trust bundle: 2 set(s) are not on the new CA ({A}, {B}); "
        "resume with certrotor ca rotate"
    )
    old = world.document().ca(OLD)
    assert old is not None and old.status == CaStatus.ACTIVE


def test_a_resumed_move_skips_a_set_already_on_the_new_ca(world: World) -> None:
    world.secrets.put(B, manifest(B, "second", SHARED), str(uuid.uuid4()), stages=[CURRENT])
    state = world.rotation().rotate(SHARED)
    assert world.trigger.started == [A]
    assert state["sets"][B] == {"move_done": True}
    assert world.tags(B)[TAG_CA] == SHARED


def test_a_set_never_issued_is_moved_and_a_malformed_manifest_stops_the_rotation(world: World) -> None:
    world.secrets.put(A, INITIAL_VALUE, str(uuid.uuid4()), stages=[CURRENT])
    world.rotation().rotate(SHARED)
    assert world.trigger.started == [A, B]
    other = World(world.roots, [A])
    other.secrets.put(A, '{"format": 1}', str(uuid.uuid4()), stages=[CURRENT])
    with pytest.raises(CaRotationError, match=f"^{A}: manifest"):
        other.rotation().rotate(SHARED)


def test_an_unknown_stage_is_refused(world: World) -> None:
    world.rotation().rotate(NEW, until="move")
    document = world.document()
    state = dict(document.ca_rotation or {})
    state["stage"] = "sideways"
    world.store.save(document.with_rotation(state), document)
    with pytest.raises(CaRotationError, match="unknown CA rotation stage 'sideways'"):
        world.rotation().rotate(NEW)


def test_a_rollback_at_the_trust_stage_moves_nothing_and_retires_the_new_ca(world: World) -> None:
    world.rotation().rotate(NEW, until="trust")
    world.rotation().pause()
    state = world.rotation().rollback()
    assert (state["stage"], state["paused"]) == ("rolled_back", False)
    assert world.trigger.started == []
    assert [world.tags(n)[TAG_CA] for n in (A, B)] == [OLD, OLD]
    new = world.document().ca(NEW)
    assert new is not None and new.status == CaStatus.RETIRED


def test_a_rollback_that_stopped_midway_is_finished_by_the_next_one(world: World) -> None:
    world.rotation().rotate(NEW, until="prune")

    def fail_on_b(name: str) -> None:
        if name == B:
            raise RotationError("rotation is disabled")

    world.trigger.before_start = fail_on_b
    with pytest.raises(RotationError):
        world.rotation().rollback()
    state = world.rotation().status()
    assert state is not None and (state["stage"], state["paused"]) == ("rolling_back", False)
    # A's rotation back was started and recorded, B's start failed.
    assert "back" in state["sets"][A] and "back_done" not in state["sets"][A]
    assert "back" not in state["sets"].get(B, {})
    world.trigger.before_start = None
    assert world.rotation().rollback()["stage"] == "rolled_back"
    assert world.trigger.started == [A, B, A, B, A, B]
    assert [world.ca_of(n) for n in (A, B)] == [OLD, OLD]


def test_prune_names_at_most_five_sets_still_on_the_old_ca(make_world: Callable[..., World]) -> None:
    names = [f"tls/s{i}" for i in range(6)]
    world = make_world(names)
    world.trigger.issue_from = OLD
    with pytest.raises(CaRotationError) as refused:
        world.rotation().rotate(SHARED)
    assert f"6 set(s) are not on the new CA ({', '.join(names[:5])}); resume" in str(refused.value)


def test_the_pace_counts_the_time_since_the_last_start(world: World) -> None:
    def a_tenth_passes(name: str) -> None:
        world.clock.mono += 0.1

    world.trigger.before_start = a_tenth_passes
    world.rotation(min_interval=0.25).rotate(SHARED)
    assert world.clock.sleeps == pytest.approx([0.15])


def test_the_defaults_pace_starts_batch_five_poll_every_two_seconds_and_wait_fifteen_minutes(
    make_world: Callable[..., World],
) -> None:
    names = [f"tls/s{i}" for i in range(6)]
    world = make_world(names)
    defaults = CaRotation(
        world.ports(),
        names,
        say=world.lines.append,
        now=world.clock.now,
        sleep=world.clock.sleep,
        clock=world.clock.monotonic,
    )
    defaults.rotate(SHARED)
    starts = [e for e in world.events if e[0] == "start"]
    assert len(starts) == 6
    # Five started before the first wait, the sixth after the batch was delivered.
    first_wait = world.events.index(("describe", names[0]))
    assert [e[1] for e in world.events[:first_wait] if e[0] == "start"] == names[:5]
    assert world.clock.sleeps == pytest.approx([0.2] * 5)
    world = make_world([A])
    world.trigger.deliver = False
    late = CaRotation(world.ports(), [A], now=world.clock.now, sleep=world.clock.sleep, clock=world.clock.monotonic)
    with pytest.raises(CaRotationError, match="not delivered within 900s"):
        late.rotate(SHARED)
    assert set(world.clock.sleeps) == {2.0} and len(world.clock.sleeps) == 450


def test_refusal_messages_are_exact(world: World) -> None:
    with pytest.raises(CaRotationError) as refused:
        CaRotation(world.ports(), [])
    assert str(refused.value) == "the rotator has no sets to move"
    with pytest.raises(CaRotationError) as refused:
        world.rotation().pause()
    assert str(refused.value) == "no CA rotation in progress"


def test_the_incoming_ca_is_listed_as_incoming_until_prune(world: World) -> None:
    world.rotation().rotate(NEW, until="prune")
    new = world.document().ca(NEW)
    assert new is not None and new.status == CaStatus.INCOMING


def test_a_finished_rotation_is_not_resumed_by_rotating_to_the_same_ca(world: World) -> None:
    world.rotation().rotate(NEW)
    with pytest.raises(CaRotationError, match="is already this rotator's active CA"):
        world.rotation().rotate(NEW)


def test_an_unchanged_state_writes_no_new_trust_version(world: World) -> None:
    world.rotation().rotate(NEW, until="move")
    world.rotation().pause()
    versions = len(world.secrets.stages_of("rot/trust"))
    world.rotation().pause()
    assert len(world.secrets.stages_of("rot/trust")) == versions


def test_the_state_holds_exactly_its_fields(world: World) -> None:
    state = world.rotation().rotate(NEW, until="move")
    assert set(state) == {"from", "to", "stage", "paused", "disable_old", "trust_changed", "started", "sets", "updated"}


def test_a_resume_does_not_wait_again_for_a_set_already_done(world: World) -> None:
    def pause_after_a(name: str) -> None:
        if name == A:
            world.trigger.before_start = None
            world.rotation(parallel=1).pause()

    world.trigger.before_start = pause_after_a
    with pytest.raises(Paused):
        world.rotation(parallel=1).rotate(NEW)
    # A's refresh was delivered before the pause stopped the run at B: the
    # resume neither starts nor waits for A again.
    world.events.clear()
    world.rotation(parallel=1).rotate(NEW, until="move")
    refresh = [e for e in world.events if e[1] in (A, B)]
    assert refresh == [("start", B), ("describe", B)]


def test_a_start_after_waiting_for_a_running_rotation_is_paced_from_then(world: World) -> None:
    world.secrets.stage_pending(A, "r" * 36)
    world.trigger.running[A] = "r" * 36
    world.rotation(min_interval=0.25).rotate(SHARED)
    assert world.clock.sleeps == [0.25]


def test_a_resumed_rotation_is_recorded_as_not_paused(world: World) -> None:
    world.rotation().rotate(NEW, until="trust")
    world.rotation().pause()
    state = world.rotation().rotate(NEW, until="trust")
    assert state["paused"] is False
    status = world.rotation().status()
    assert status is not None and status["paused"] is False

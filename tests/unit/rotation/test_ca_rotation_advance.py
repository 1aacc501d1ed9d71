"""CaRotation.advance, the monitor's bounded pass over a CA rotation the
deploy asks for, over the in-memory world of test_ca_rotation_stages: each
call starts at most `max_starts` rotations, records the deliveries it sees,
never waits, and goes on stage by stage."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from certrotor.errors import RotationError
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.local.ca import LocalCA
from certrotor.ports import CURRENT
from certrotor.services.ca_rotation import CaRotation, CaRotationError
from certrotor.services.rotation import TAG_CA, TAG_REDEPLOYED
from certrotor.services.trust import CaStatus
from tests.unit.rotation.test_ca_rotation_stages import NEW, OLD, SHARED, World, manifest

A, B, C = "tls/a", "tls/b", "tls/c"


@pytest.fixture
def roots(root_ca: LocalCA, other_root_ca: LocalCA, intermediate_ca: LocalCA) -> dict[str, str]:
    """OLD under the test root, NEW under another root, SHARED a subordinate of OLD's root."""
    return {OLD: root_ca.pem, NEW: other_root_ca.pem, SHARED: intermediate_ca.pem + root_ca.pem}


@pytest.fixture
def world(roots: dict[str, str]) -> World:
    return World(roots, [A, B])


def test_each_call_starts_or_records_and_the_stages_follow_without_waiting(world: World) -> None:
    rotation = world.rotation()
    state = rotation.advance(NEW)
    assert state is not None and state["stage"] == "trust"
    assert (state["from"], state["to"], state["disable_old"], state["trust_changed"]) == (OLD, NEW, False, True)
    assert world.trigger.started == [A, B]
    assert world.lines == [
        f"CA rotation {OLD} -> {NEW}: the new CA's root is added to the trust bundle (revision 2)",
        "refresh: 0/2 sets delivered",
    ]
    # A refresh rotates the sets as they are: no set is pointed at the new CA yet.
    assert TAG_CA not in world.tags(A) and TAG_CA not in world.tags(B)
    world.lines.clear()
    state = world.rotation().advance(NEW)
    assert state is not None and state["stage"] == "move"
    assert world.trigger.started == [A, B, A, B]
    assert [world.tags(n)[TAG_CA] for n in (A, B)] == [NEW, NEW]
    assert world.lines == ["refresh: 2/2 sets delivered", "stage move", "move: 0/2 sets delivered"]
    world.lines.clear()
    state = world.rotation().advance(NEW)
    assert state is not None and state["stage"] == "done"
    assert world.trigger.started == [A, B, A, B]
    assert [world.ca_of(n) for n in (A, B)] == [NEW, NEW]
    assert world.lines == [
        "move: 2/2 sets delivered",
        "stage prune",
        f"stage prune: {OLD} retired; trust bundle revision 3",
        "stage done",
    ]
    document = world.document()
    old, new = document.ca(OLD), document.ca(NEW)
    assert old is not None and new is not None
    assert (old.status, new.status) == (CaStatus.RETIRED, CaStatus.ACTIVE)
    assert world.disabled == []
    # Finished: later calls return the state and change nothing.
    world.lines.clear()
    assert world.rotation().advance(NEW) == state
    assert world.lines == [] and world.trigger.started == [A, B, A, B]
    assert world.document().revision == 3


def test_the_state_returned_and_kept_records_every_delivery(world: World) -> None:
    first = world.rotation().advance(NEW)
    assert first is not None
    tokens = {n: first["sets"][n]["refresh"] for n in (A, B)}
    assert first["sets"] == {n: {"refresh": tokens[n]} for n in (A, B)}
    moving = world.rotation().advance(NEW)
    assert moving is not None
    for name in (A, B):
        record = moving["sets"][name]
        assert set(record) == {"refresh", "refresh_done", "move"}
        assert record["refresh_done"] is True and record["refresh"] == tokens[name]
    done = world.rotation().advance(NEW)
    assert done is not None and done == world.rotation().status()
    for name in (A, B):
        assert set(done["sets"][name]) == {"refresh", "refresh_done", "move", "move_done"}
        assert done["sets"][name]["move_done"] is True


def test_a_call_starts_at_most_max_starts_rotations(roots: dict[str, str]) -> None:
    world = World(roots, [A, B, C])
    state = world.rotation().advance(NEW, max_starts=2)
    assert world.trigger.started == [A, B]
    assert world.lines[-1] == "refresh: 0/3 sets delivered"
    assert state is not None and state["stage"] == "trust"
    assert set(world.rotation().status()["sets"]) == {A, B}  # type: ignore[index]
    world.rotation().advance(NEW, max_starts=2)
    assert world.trigger.started == [A, B, C]
    assert world.lines[-1] == "refresh: 2/3 sets delivered"
    state = world.rotation().advance(NEW, max_starts=2)
    # Two moves started; the third set is neither started nor pointed at the new CA.
    assert state is not None and state["stage"] == "move"
    assert world.trigger.started == [A, B, C, A, B]
    assert world.tags(C).get(TAG_CA) != NEW
    assert world.lines[-1] == "move: 0/3 sets delivered"
    world.lines.clear()
    assert world.rotation().advance(NEW, max_starts=0)["stage"] == "move"  # type: ignore[index]
    assert world.trigger.started == [A, B, C, A, B]
    assert world.lines == ["move: 2/3 sets delivered"]


def test_a_set_already_on_the_new_ca_is_done_without_a_rotation_and_uses_the_budget(world: World) -> None:
    world.secrets.put(B, manifest(B, "second", SHARED), str(uuid.uuid4()), stages=[CURRENT])
    state = world.rotation().advance(SHARED, max_starts=1)
    # The same root: no refresh; the first start goes to A.
    assert state is not None and state["stage"] == "move" and state["trust_changed"] is False
    assert world.trigger.started == [A]
    assert world.lines[-2:] == ["stage move", "move: 0/2 sets delivered"]
    assert TAG_CA not in world.tags(B)
    state = world.rotation().advance(SHARED, max_starts=1)
    assert state is not None
    assert world.tags(B)[TAG_CA] == SHARED
    assert world.trigger.started == [A]
    assert "move: 2/2 sets delivered" in world.lines
    assert state["stage"] == "done"


def test_a_refused_start_is_reported_and_left_for_the_next_pass_without_using_the_budget(world: World) -> None:
    def refuse_a(name: str) -> None:
        if name == A:
            raise RotationError("rotation is disabled")

    world.trigger.before_start = refuse_a
    state = world.rotation().advance(NEW, max_starts=1)
    assert world.trigger.started == [B]
    assert world.lines[-2:] == ["refresh: tls/a: rotation is disabled; next pass", "refresh: 0/2 sets delivered"]
    assert state is not None and state["stage"] == "trust"
    world.trigger.before_start = None
    world.rotation().advance(NEW, max_starts=1)
    assert world.trigger.started == [B, A]
    assert world.lines[-1] == "refresh: 1/2 sets delivered"


def test_a_rotation_not_current_or_not_redeployed_is_not_yet_delivered(world: World) -> None:
    world.trigger.deliver = False
    world.rotation().advance(NEW)
    world.rotation().advance(NEW)
    assert world.lines[-1] == "refresh: 0/2 sets delivered"
    state = world.rotation().status()
    assert state is not None and state["stage"] == "trust"
    for name in (A, B):
        world.trigger.complete(name, state["sets"][name]["refresh"])
    # Current, but the redeploy recorded is of another version.
    world.secrets.tag(A, TAG_REDEPLOYED, "an-older-version")
    after = world.rotation().advance(NEW)
    assert world.lines[-1] == "refresh: 1/2 sets delivered"
    assert after is not None and after["stage"] == "trust"
    assert world.rotation().status()["sets"][A] == {"refresh": state["sets"][A]["refresh"]}  # type: ignore[index]
    assert world.trigger.started == [A, B]


def test_a_set_that_records_no_redeploy_is_delivered_once_current(world: World) -> None:
    world.trigger.redeploy = None
    world.rotation().advance(NEW)
    assert world.rotation().advance(NEW)["stage"] == "move"  # type: ignore[index]
    assert "refresh: 2/2 sets delivered" in world.lines


def test_a_rotation_whose_version_vanished_is_reported(world: World) -> None:
    world.trigger.token = "0" * 36
    world.rotation().advance(NEW)
    with pytest.raises(CaRotationError) as gone:
        world.rotation().advance(NEW)
    assert str(gone.value) == f"{A}: version {'0' * 36} is gone; resume with certrotor ca rotate"


def test_a_paused_rotation_is_left_as_it_is(world: World) -> None:
    world.rotation().advance(NEW, max_starts=0)
    world.rotation().pause()
    world.lines.clear()
    state = world.rotation().advance(NEW)
    assert state is not None and state["paused"] is True and state["stage"] == "trust"
    assert world.lines == ["CA rotation paused at stage trust; nothing done"]
    assert world.trigger.started == []


def test_until_stops_before_the_named_stage(world: World) -> None:
    world.rotation().advance(NEW, until="move")
    state = world.rotation().advance(NEW, until="move")
    assert state is not None and state["stage"] == "move"
    assert world.trigger.started == [A, B]
    assert world.lines[-2:] == ["refresh: 2/2 sets delivered", "stage move"]
    assert TAG_CA not in world.tags(A)
    with pytest.raises(CaRotationError) as refused:
        world.rotation().advance(NEW, until="later")
    assert str(refused.value) == "until must be one of trust, move, prune, disable, done"


def test_a_rotator_already_on_the_ca_asked_for_is_left_alone(world: World) -> None:
    assert world.rotation().advance(OLD) is None
    assert world.rotation().status() is None
    assert world.document().revision == 1 and world.trigger.started == [] and world.lines == []


def test_a_rotation_to_another_ca_in_progress_is_not_replaced(world: World) -> None:
    world.rotation().advance(NEW, max_starts=0)
    with pytest.raises(CaRotationError) as refused:
        world.rotation().advance(SHARED)
    assert str(refused.value) == (
        f"a CA rotation to {NEW} is in progress (stage trust); "
        f"not starting one to {SHARED}: finish or roll it back with certrotor ca"
    )


def test_a_finished_rotation_to_another_ca_is_followed_by_a_new_one(world: World) -> None:
    world.rotation().rotate(SHARED)
    state = world.rotation().advance(NEW, max_starts=0)
    assert state is not None and (state["from"], state["to"], state["stage"]) == (SHARED, NEW, "trust")


def test_a_rolled_back_or_rolling_back_rotation_is_left_as_it_is(world: World) -> None:
    world.rotation().rotate(NEW, until="prune")

    def refuse_b(name: str) -> None:
        if name == B:
            raise RotationError("rotation is disabled")

    world.trigger.before_start = refuse_b
    with pytest.raises(RotationError):
        world.rotation().rollback()
    world.trigger.before_start = None
    started = list(world.trigger.started)
    state = world.rotation().advance(NEW)
    assert state is not None and state["stage"] == "rolling_back"
    assert world.trigger.started == started
    rolled_back = world.rotation().rollback()
    started = list(world.trigger.started)
    assert world.rotation().advance(NEW) == rolled_back
    assert world.trigger.started == started


def test_a_rotation_that_disables_the_old_ca_does_so_then_finishes(world: World) -> None:
    world.rotation().rotate(NEW, disable_old=True, until="disable")
    world.lines.clear()
    state = world.rotation().advance(NEW)
    assert state is not None and state["stage"] == "done"
    assert world.disabled == [OLD]
    assert world.lines == ["stage done"]


def test_a_set_never_issued_is_rotated_onto_the_new_ca(world: World) -> None:
    world.secrets.put(A, INITIAL_VALUE, str(uuid.uuid4()), stages=[CURRENT])
    world.rotation().advance(SHARED)
    assert world.trigger.started == [A, B]
    assert world.rotation().advance(SHARED)["stage"] == "done"  # type: ignore[index]
    assert world.ca_of(A) == SHARED


def test_a_set_recorded_delivered_stays_done_when_it_rotates_again(world: World) -> None:
    world.rotation().advance(NEW, max_starts=1)
    world.rotation().advance(NEW, max_starts=1)
    assert world.trigger.started == [A, B]
    assert world.lines[-1] == "refresh: 1/2 sets delivered"
    # A scheduled rotation replaces A's refresh version: the refresh was delivered all the same.
    world.trigger.complete(A, str(uuid.uuid4()))
    state = world.rotation().advance(NEW, max_starts=0)
    assert "refresh: 2/2 sets delivered" in world.lines
    assert state is not None and state["stage"] == "move"


def test_a_set_found_on_the_new_ca_is_done_once_and_the_others_go_on(world: World) -> None:
    world.secrets.put(A, manifest(A, "second", SHARED), str(uuid.uuid4()), stages=[CURRENT])
    world.rotation().advance(SHARED, max_starts=2)
    assert world.trigger.started == [B]
    assert world.lines[-1] == "move: 1/2 sets delivered"
    state = world.rotation().advance(SHARED, max_starts=0)
    assert "move: 2/2 sets delivered" in world.lines
    assert state is not None and state["stage"] == "done"
    tags_of_a = [w for w in world.secrets.writes if w.operation == "tag" and w.secret == A and w.stage == TAG_CA]
    assert len(tags_of_a) == 1


def test_a_pass_out_of_budget_still_records_the_deliveries_of_later_sets(world: World) -> None:
    def refuse_a(name: str) -> None:
        if name == A:
            raise RotationError("rotation is disabled")

    world.trigger.before_start = refuse_a
    world.rotation().advance(NEW)
    assert world.trigger.started == [B]
    world.trigger.before_start = None
    world.rotation().advance(NEW, max_starts=0)
    assert world.lines[-1] == "refresh: 1/2 sets delivered"
    assert world.trigger.started == [B]


def test_a_rotation_begun_by_another_writer_meanwhile_is_not_overwritten(world: World) -> None:
    def chain_while_another_begins(arn: str) -> str:
        world.rotation().rotate(SHARED, until="trust")
        return world.roots[arn]

    racing = CaRotation(
        replace(world.ports(), ca_chain=chain_while_another_begins), [A, B], say=world.lines.append, now=world.clock.now
    )
    with pytest.raises(CaRotationError) as refused:
        racing.advance(NEW)
    assert str(refused.value) == f"another CA rotation began meanwhile (to {SHARED})"
    state = world.rotation().status()
    assert state is not None and (state["to"], state["stage"]) == (SHARED, "trust")
    new = world.document().ca(NEW)
    assert new is None

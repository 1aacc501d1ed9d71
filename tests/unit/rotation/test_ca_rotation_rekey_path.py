"""A CA rotation's move (and a rollback's way back) through the fleet re-key
state machine, over the in-memory world of test_ca_rotation_stages and a
fake state machine: one execution over the sets the old CA issued,
followed with its progress lines, retried for the sets it left, stopped by
a pause; then every set waited on until settled."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable

import pytest

from certrotor.errors import NotIssuedError
from certrotor.fleet.rekey import Progress
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.local.ca import LocalCA
from certrotor.ports import CURRENT
from certrotor.services.ca_rotation import CaPorts, CaRotation, CaRotationError, Paused
from certrotor.services.rotation import TAG_CA, TAG_REDEPLOYED
from tests.unit.rotation.test_ca_rotation_stages import NEW, OLD, SHARED, World, manifest

A, B = "tls/a", "tls/b"
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:rot-rekey"


class Rekey:
    """The re-key state machine: an execution over the sets whose current
    certificate `from_ca` issued, RUNNING for `polls` progress reads, then
    each set rotated through the world's trigger (except those in `fail`),
    SUCCEEDED with the failed ones listed; a stopped one ends ABORTED,
    rotating nothing."""

    state_machine = MACHINE

    def __init__(self, world: World, polls: int = 2) -> None:
        self.world = world
        self.polls = polls
        self.starts: list[tuple[str, str]] = []
        self.stopped: list[str] = []
        self.fail: dict[str, int] = {}  # set -> executions it fails in
        self.on_start: Callable[[], object] | None = None
        self.on_poll: Callable[[int], None] | None = None
        self.runs: dict[str, list[str]] = {}
        self.reads: Counter[str] = Counter()
        self.ended: dict[str, Progress] = {}

    def start(self, from_ca: str, reason: str) -> str | None:
        self.starts.append((from_ca, reason))
        if self.on_start is not None:
            self.on_start()
        names = [n for n in self.world.sets if self._issuer(n) == from_ca]
        if not names:
            return None
        execution = f"{MACHINE.replace(':stateMachine:', ':execution:')}:run-{len(self.starts)}"
        self.runs[execution] = names
        return execution

    def _issuer(self, name: str) -> str | None:
        try:
            return self.world.ca_of(name)
        except NotIssuedError:
            return None

    def progress(self, execution: str) -> Progress:
        names = self.runs[execution]
        self.reads[execution] += 1
        if self.on_poll is not None:
            self.on_poll(self.reads[execution])
        if execution in self.ended:
            return self.ended[execution]
        if execution in self.stopped:
            self.ended[execution] = Progress("ABORTED", total=len(names))
            return self.ended[execution]
        if self.reads[execution] <= self.polls:
            return Progress("RUNNING", total=len(names))
        failed = {}
        for name in names:
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                failed[name] = "failed: AccessDeniedException"
            else:
                self.world.trigger.start(name)
        outcomes = Counter({"started": len(names) - len(failed), "failed": len(failed)})
        self.ended[execution] = Progress("SUCCEEDED", total=len(names), outcomes=outcomes, failed=failed)
        return self.ended[execution]

    def stop(self, execution: str) -> None:
        self.stopped.append(execution)


def execution(n: int) -> str:
    return f"arn:aws:states:eu-west-1:123456789012:execution:rot-rekey:run-{n}"


@pytest.fixture
def world(root_ca: LocalCA, other_root_ca: LocalCA, intermediate_ca: LocalCA) -> World:
    return World({OLD: root_ca.pem, NEW: other_root_ca.pem, SHARED: intermediate_ca.pem + root_ca.pem}, [A, B])


@pytest.fixture
def rekey(world: World) -> Rekey:
    return Rekey(world)


def rotation(world: World, rekey: Rekey, **kwargs: float) -> CaRotation:
    options: dict[str, float] = {"min_interval": 0.0, "poll": 1.0, "timeout": 5.0, **kwargs}
    ports = CaPorts(
        secrets=world.secrets,
        trust=world.store,
        trigger=world.trigger,
        ca_chain=lambda arn: world.roots[arn],
        disable_ca=world.disabled.append,
        rekey=rekey,
    )
    return CaRotation(
        ports,
        list(reversed(world.sets)),
        say=world.lines.append,
        now=world.clock.now,
        sleep=world.clock.sleep,
        clock=world.clock.monotonic,
        **options,  # type: ignore[arg-type]
    )


RUNNING = "running: 0 of 2 sets (0 started, 0 skipped, 0 in-progress, 0 failed)"
SUCCEEDED = "succeeded: 2 of 2 sets (2 started, 0 skipped, 0 in-progress, 0 failed)"


def test_the_move_runs_one_execution_over_the_old_cas_sets_and_follows_it(world: World, rekey: Rekey) -> None:
    state = rotation(world, rekey).rotate(NEW)
    assert state["stage"] == "done"
    # The refresh is a paced rotation of each set; the move is the execution.
    assert world.trigger.started == [A, B, A, B]
    assert rekey.starts == [(OLD, f"certrotor ca rotate: move to {NEW}")]
    assert [world.ca_of(n) for n in (A, B)] == [NEW, NEW]
    assert [world.tags(n)[TAG_CA] for n in (A, B)] == [NEW, NEW]
    assert state["executions"] == [execution(1)] and state["move_execution"] is None
    for name in (A, B):
        assert set(state["sets"][name]) == {"refresh", "refresh_done", "move_done"}
        assert state["sets"][name]["move_done"] is True
    # Polled every `poll` seconds while RUNNING; the unchanged line is said once.
    assert world.clock.sleeps == [1.0, 1.0]
    start = world.lines.index(f"stage move: moving every set to {NEW}")
    assert world.lines[start:] == [
        f"stage move: moving every set to {NEW}",
        f"move: through the re-key state machine {MACHINE} (sets issued by {OLD})",
        f"move: started {execution(1)}",
        f"move: {RUNNING}",
        f"move: {SUCCEEDED}",
        f"move: 2/2 sets delivered on {NEW}",
        "stage prune",
        f"stage prune: {OLD} retired; trust bundle revision 3",
        "stage done",
        "CA rotation done",
    ]


def test_sets_an_execution_left_get_another_one_over_the_sets_still_on_the_old_ca(world: World, rekey: Rekey) -> None:
    rekey.fail = {B: 1}
    state = rotation(world, rekey).rotate(SHARED)
    assert state["stage"] == "done"
    assert rekey.starts == [(OLD, f"certrotor ca rotate: move to {SHARED}")] * 2
    assert rekey.runs == {execution(1): [A, B], execution(2): [B]}
    assert state["executions"] == [execution(1), execution(2)]
    assert world.trigger.started == [A, B]
    assert world.lines[1:10] == [
        "stage move",
        f"stage move: moving every set to {SHARED}",
        f"move: through the re-key state machine {MACHINE} (sets issued by {OLD})",
        f"move: started {execution(1)}",
        f"move: {RUNNING}",
        "move: succeeded: 2 of 2 sets (1 started, 0 skipped, 0 in-progress, 1 failed)",
        f"move: {B}: failed: AccessDeniedException",
        f"move: 1/2 sets delivered on {SHARED}",
        f"move: started {execution(2)}",
    ]
    assert f"move: 2/2 sets delivered on {SHARED}" in world.lines


def test_a_set_left_by_every_execution_stops_the_move_after_three(world: World, rekey: Rekey) -> None:
    rekey.fail = {B: 3}
    with pytest.raises(CaRotationError) as stuck:
        rotation(world, rekey).rotate(SHARED)
    assert str(stuck.value) == (
        f"move: 1 set(s) still not on {SHARED} after 3 re-key executions ({B}); "
        "see certrotor rekey --status, fix them and resume with certrotor ca rotate"
    )
    assert len(rekey.starts) == 3
    state = world.rotation().status()
    assert state is not None and state["stage"] == "move"
    assert state["executions"] == [execution(1), execution(2), execution(3)]
    assert state["sets"][A] == {"move_done": True} and "move_done" not in state["sets"].get(B, {})
    assert world.ca_of(A) == SHARED and world.ca_of(B) == OLD
    # The next run starts afresh for B.
    rekey.fail = {}
    assert rotation(world, rekey).rotate(SHARED)["stage"] == "done"
    assert rekey.runs[execution(4)] == [B]


def test_sets_already_on_the_new_ca_start_no_execution(world: World, rekey: Rekey) -> None:
    for name in (A, B):
        world.secrets.put(name, manifest(name, "second", SHARED), str(uuid.uuid4()), stages=[CURRENT])
    state = rotation(world, rekey).rotate(SHARED)
    assert state["stage"] == "done" and rekey.starts == []
    assert "executions" not in state
    assert f"move: 2/2 sets delivered on {SHARED}" in world.lines
    assert [world.tags(n)[TAG_CA] for n in (A, B)] == [SHARED, SHARED]


def test_a_set_the_old_ca_never_issued_is_not_moved_by_the_state_machine(world: World, rekey: Rekey) -> None:
    world.secrets.put(A, INITIAL_VALUE, str(uuid.uuid4()), stages=[CURRENT])
    world.sets.remove(B)
    with pytest.raises(CaRotationError, match=rf"^move: 1 set\(s\) still not on {SHARED} after 3 re-key executions"):
        rotation(world, rekey).rotate(SHARED)
    # Each execution asked for found no set: nothing started, followed or recorded.
    assert rekey.starts == [(OLD, f"certrotor ca rotate: move to {SHARED}")] * 3
    assert not any(line.startswith("move: started") for line in world.lines)
    state = world.rotation().status()
    assert state is not None and "executions" not in state and world.clock.sleeps == []


def test_a_pause_while_following_stops_the_execution_and_the_resume_starts_another(world: World, rekey: Rekey) -> None:
    def pause_at_first_read(read: int) -> None:
        if read == 1:
            world.rotation().pause()

    rekey.on_poll = pause_at_first_read
    with pytest.raises(Paused) as paused:
        rotation(world, rekey).rotate(SHARED)
    assert str(paused.value) == (
        f"CA rotation paused at stage move: stopped {execution(1)}; resume with certrotor ca rotate"
    )
    assert rekey.stopped == [execution(1)]
    assert world.clock.sleeps == []
    state = world.rotation().status()
    assert state is not None and state["paused"] is True and state["move_execution"] == execution(1)
    rekey.on_poll = None
    world.lines.clear()
    state = rotation(world, rekey).rotate(SHARED)
    assert state["stage"] == "done"
    # The stopped execution is read once more (ABORTED, nothing moved), then another moves the sets.
    assert state["executions"] == [execution(1), execution(2)]
    assert rekey.starts == [(OLD, f"certrotor ca rotate: move to {SHARED}")] * 2
    assert world.lines[:6] == [
        f"resuming the CA rotation to {SHARED} at stage move",
        f"stage move: moving every set to {SHARED}",
        f"move: through the re-key state machine {MACHINE} (sets issued by {OLD})",
        "move: aborted: 0 of 2 sets (0 started, 0 skipped, 0 in-progress, 0 failed)",
        f"move: 0/2 sets delivered on {SHARED}",
        f"move: started {execution(2)}",
    ]


def test_a_pause_requested_while_the_execution_starts_is_kept_and_stops_it(world: World, rekey: Rekey) -> None:
    rekey.on_start = lambda: world.rotation().pause()
    with pytest.raises(Paused, match=f"stopped {execution(1)}"):
        rotation(world, rekey).rotate(SHARED)
    assert rekey.stopped == [execution(1)]
    state = world.rotation().status()
    assert state is not None and state["paused"] is True and state["executions"] == [execution(1)]


def test_a_pause_before_the_move_tags_no_set(world: World, rekey: Rekey) -> None:
    def pause_at_b(name: str) -> None:
        if name == B:
            world.trigger.before_start = None
            world.rotation().pause()

    world.trigger.before_start = pause_at_b
    with pytest.raises(Paused) as paused:
        rotation(world, rekey).rotate(NEW)
    assert str(paused.value) == "CA rotation paused at stage move; resume with certrotor ca rotate"
    assert [world.tags(n).get(TAG_CA) for n in (A, B)] == [None, None]
    assert rekey.starts == []


def test_a_resumed_run_follows_the_recorded_execution_instead_of_starting_one(world: World, rekey: Rekey) -> None:
    def crash_at_first_read(read: int) -> None:
        if read == 1:
            raise ConnectionError("the connection was reset")

    rekey.on_poll = crash_at_first_read
    with pytest.raises(ConnectionError):
        rotation(world, rekey).rotate(SHARED)
    rekey.on_poll = None
    state = rotation(world, rekey).rotate(SHARED)
    assert state["stage"] == "done"
    assert rekey.starts == [(OLD, f"certrotor ca rotate: move to {SHARED}")]
    assert state["executions"] == [execution(1)]


def test_a_rollback_moves_the_new_cas_sets_back_through_the_state_machine(world: World, rekey: Rekey) -> None:
    rotation(world, rekey).rotate(NEW, until="prune")
    world.lines.clear()
    state = rotation(world, rekey).rollback()
    assert state["stage"] == "rolled_back"
    assert rekey.starts[-1] == (NEW, f"certrotor ca rotate: back to {OLD}")
    assert state["executions"] == [execution(1), execution(2)] and state["back_execution"] is None
    assert [world.ca_of(n) for n in (A, B)] == [OLD, OLD]
    assert [world.tags(n)[TAG_CA] for n in (A, B)] == [OLD, OLD]
    assert world.lines == [
        f"rolling back: moving every set back to {OLD}",
        f"back: through the re-key state machine {MACHINE} (sets issued by {NEW})",
        f"back: started {execution(2)}",
        f"back: {RUNNING}",
        f"back: {SUCCEEDED}",
        f"back: 2/2 sets delivered on {OLD}",
        f"rolled back: every set is on {OLD}; {NEW} is no longer trusted unless it shares a root",
    ]


class LateClock:
    """Completes what `later` holds after the `after`-th sleep."""

    def __init__(self, world: World, after: int, later: Callable[[], None]) -> None:
        self.world, self.after, self.later = world, after, later
        self.sleep_of = world.clock.sleep

    def sleep(self, seconds: float) -> None:
        self.sleep_of(seconds)
        if len(self.world.clock.sleeps) == self.after:
            self.later()


def test_every_set_is_waited_on_until_no_rotation_is_pending_and_its_version_is_redeployed(
    world: World, rekey: Rekey
) -> None:
    rekey.polls = 0
    world.trigger.deliver = False
    tokens: dict[str, str] = {}

    def complete_pending() -> None:
        for name in (A, B):
            stages = world.secrets.stages_of(name)
            tokens[name] = next(v for v, labels in stages.items() if "AWSPENDING" in labels)
            world.trigger.complete(name, tokens[name])
        world.secrets.tag(B, TAG_REDEPLOYED, "an-older-version")

    def redeploy_b() -> None:
        world.secrets.tag(B, TAG_REDEPLOYED, tokens[B])

    world.clock.sleep = LateClock(world, 2, complete_pending).sleep  # type: ignore[method-assign]
    world.clock.sleep = LateClock(world, 4, redeploy_b).sleep  # type: ignore[method-assign]
    state = rotation(world, rekey).rotate(SHARED)
    assert state["stage"] == "done"
    # A: pending for two polls; B: then current but redeployed as another version for two more.
    assert world.clock.sleeps == [1.0] * 4
    assert [world.ca_of(n) for n in (A, B)] == [SHARED, SHARED]
    describes = [e for e in world.events if e[0] == "describe"]
    assert describes == [("describe", A)] * 3 + [("describe", B)] * 3


def test_a_set_not_settled_in_time_is_reported(world: World, rekey: Rekey) -> None:
    rekey.polls = 0
    world.trigger.redeploy = "an-older-version"
    with pytest.raises(CaRotationError) as late:
        rotation(world, rekey).rotate(SHARED)
    current = world.secrets.describe(A).version_with(CURRENT)
    assert str(late.value) == (
        f"{A}: not settled within 5s (current {current}, pending None); fix it and resume with certrotor ca rotate"
    )
    assert world.clock.sleeps == [1.0] * 5


def test_a_set_still_pending_is_reported_with_the_pending_version(world: World, rekey: Rekey) -> None:
    rekey.polls = 0
    world.trigger.deliver = False
    with pytest.raises(CaRotationError) as late:
        rotation(world, rekey, timeout=900.0, poll=2.0).rotate(SHARED)
    info = world.secrets.describe(A)
    pending = next(v for v, stages in info.versions.items() if "AWSPENDING" in stages)
    assert str(late.value) == (
        f"{A}: not settled within 900s (current {info.version_with(CURRENT)}, pending {pending}); "
        "fix it and resume with certrotor ca rotate"
    )
    assert world.clock.sleeps == [2.0] * 450


def test_a_set_that_records_no_redeploy_is_settled_once_nothing_is_pending(world: World, rekey: Rekey) -> None:
    rekey.polls = 0
    world.trigger.redeploy = None
    assert rotation(world, rekey).rotate(SHARED)["stage"] == "done"
    assert world.clock.sleeps == []
    assert [e for e in world.events if e[0] == "describe"] == [("describe", A), ("describe", B)]


def test_a_move_left_unfinished_names_at_most_five_sets(root_ca: LocalCA, intermediate_ca: LocalCA) -> None:
    names = [f"tls/s{i}" for i in range(6)]
    world = World({OLD: root_ca.pem, SHARED: intermediate_ca.pem + root_ca.pem}, names)
    rekey = Rekey(world, polls=0)
    rekey.fail = dict.fromkeys(names, 3)
    with pytest.raises(CaRotationError) as stuck:
        rotation(world, rekey).rotate(SHARED)
    assert str(stuck.value) == (
        f"move: 6 set(s) still not on {SHARED} after 3 re-key executions ({', '.join(names[:5])}); "
        "see certrotor rekey --status, fix them and resume with certrotor ca rotate"
    )

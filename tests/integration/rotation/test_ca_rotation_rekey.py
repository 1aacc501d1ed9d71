"""CA rotation whose move runs through the fleet re-key state machine (the
definition AWS runs, executed by the emulator's Step Functions): sets issued
by the old CA are selected (`--ca OLD_ARN`), the execution is followed, a
pause stops it, and rotate resumes; a TLS handshake after each step."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from certrotor.fleet.quotas import Pacing
from certrotor.fleet.rekey import RekeyExecutions, find_state_machine
from certrotor.local.ca import LocalCA
from certrotor.local.emulator import Emulator
from certrotor.local.rekey import BackgroundRotations, deploy_state_machine
from certrotor.services.ca_rotation import CaRotation, Paused

from .test_ca_rotation import World, build_world


@pytest.fixture
def world(emulator: Emulator, root_ca: LocalCA) -> World:
    return build_world(emulator, root_ca, "ck")


FAST = Pacing(concurrency=2, wait_seconds=1)


class Machine:
    """The re-key state machine of the world's emulator, counting executions."""

    def __init__(self, world: World, pacing: Pacing = FAST) -> None:
        self.rotations = BackgroundRotations(world.env)
        self.arn = deploy_state_machine(world.env, self.rotations)
        self.rekey = RekeyExecutions(
            world.env.emulator.client("stepfunctions"),
            world.env.emulator.client("secretsmanager"),
            self.arn,
            world.env.config.rotator_id,
            pacing,
        )
        self.started: list[str] = []
        self.while_running: list[Any] = []

    def start(self, from_ca: str, reason: str) -> str | None:
        execution = self.rekey.start(from_ca, reason)
        if execution is not None:
            self.started.append(execution)
        return execution

    def progress(self, execution: str) -> Any:
        progress = self.rekey.progress(execution)
        if progress.status == "RUNNING" and self.while_running:
            self.while_running.pop(0)()
        return progress

    def stop(self, execution: str) -> None:
        self.rekey.stop(execution)

    @property
    def state_machine(self) -> str:
        return self.arn


def through(world: World, machine: Machine, lines: list[str]) -> CaRotation:
    rotation = world.rotation(say=lines.append)
    rotation._ports = rotation._ports.__class__(**{**rotation._ports.__dict__, "rekey": machine})
    return rotation


def test_the_move_goes_through_the_re_key_state_machine_and_every_handshake_holds(world: World) -> None:
    machine = Machine(world)
    lines: list[str] = []
    rotation = through(world, machine, lines)
    _, before = world.fetch(world.names[0])
    # Given stage trust done (every consumer holds both roots)
    rotation.rotate(world.new_arn, until="move")
    refreshed = len(world.trigger.started)
    _, overlap = world.fetch(world.names[0])
    # When the move runs
    state = rotation.rotate(world.new_arn, until="prune")
    machine.rotations.wait(60)
    # Then one execution rotated every set once, onto the new CA, and clients holding the overlap accept them
    assert state["stage"] == "prune"
    assert len(machine.started) == 1 and state["executions"] == machine.started
    assert Counter(machine.rotations.finished) == dict.fromkeys(world.names, 1)
    assert len(world.trigger.started) == refreshed  # the paced loop started nothing
    assert any(f"through the re-key state machine {machine.arn}" in line for line in lines)
    assert any(line.startswith("move: succeeded: 2 of 2 sets (2 started") for line in lines)
    for name in world.names:
        assert world.current(name).ca == world.new_arn
        assert state["sets"][name]["move_done"] is True
        world.handshake(name, overlap)
    with pytest.raises(Exception, match="handshake failed"):
        world.handshake(world.names[0], before)
    # And the rotation finishes on the new CA
    assert rotation.rotate(world.new_arn)["stage"] == "done"
    _, after = world.fetch(world.names[0])
    for name in world.names:
        world.handshake(name, after)


def test_a_pause_stops_the_execution_and_rotate_resumes_without_moving_a_set_twice(world: World) -> None:
    # (one set at a time, a few seconds apart: the execution runs for at least two seconds)
    machine = Machine(world, Pacing(concurrency=1, wait_seconds=3))
    rotation = through(world, machine, [])
    rotation.rotate(world.new_arn, until="move")
    _, overlap = world.fetch(world.names[0])
    # Given another shell pauses while the execution is seen running
    machine.while_running.append(lambda: world.rotation().pause())
    with pytest.raises(Paused, match="stopped"):
        rotation.rotate(world.new_arn, until="prune")
    machine.rotations.wait(60)
    paused = world.rotation().status()
    assert paused is not None and paused["paused"] is True and paused["stage"] == "move"
    for name in world.names:
        world.handshake(name, overlap)
    # When rotate runs again
    state = rotation.rotate(world.new_arn, until="prune")
    machine.rotations.wait(60)
    # Then every set is on the new CA, none was moved twice
    assert state["stage"] == "prune"
    assert all(count == 1 for count in Counter(machine.rotations.finished).values())
    for name in world.names:
        assert world.current(name).ca == world.new_arn
        world.handshake(name, overlap)


def test_a_rollback_goes_through_the_state_machine_too(world: World) -> None:
    machine = Machine(world)
    lines: list[str] = []
    rotation = through(world, machine, lines)
    rotation.rotate(world.new_arn, until="prune")
    _, overlap = world.fetch(world.names[0])
    state = rotation.rollback()
    machine.rotations.wait(60)
    assert state["stage"] == "rolled_back"
    assert len(machine.started) == 2  # the move, then the way back
    for name in world.names:
        assert world.current(name).ca == world.env.ca_arn
        world.handshake(name, overlap)


def test_the_state_machine_is_found_by_the_rotators_name_or_not_at_all(world: World) -> None:
    sfn = world.env.emulator.client("stepfunctions")
    Machine(world)
    assert find_state_machine(sfn, "certrotor") is not None  # the emulator's is certrotor-rekey
    assert find_state_machine(sfn, "no-such-rotator") is None


@pytest.mark.parametrize("machine_flag", ["--state-machine", "--no-state-machine"])
def test_the_command_says_which_way_it_moves_the_sets(world: World, capsys: Any, machine_flag: str) -> None:
    from certrotor.cli import main

    machine = Machine(world)
    flags = [machine_flag, machine.arn] if machine_flag == "--state-machine" else [machine_flag]
    rotator = world.env.config.rotator_id
    with world.env.emulator.activated({}):
        code = main(["ca", "rotate", "--to", world.new_arn, "--rotator", rotator, "--until", "prune", *flags])
    machine.rotations.wait(60)
    out = capsys.readouterr().out
    assert code == 0, out
    if machine_flag == "--state-machine":
        assert f"move: through the re-key state machine {machine.arn}" in out
    else:
        assert "move: no re-key state machine; rotating set by set" in out
    for name in world.names:
        assert world.current(name).ca == world.new_arn

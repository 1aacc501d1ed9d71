"""A CA rotation asked for by the deploy (ca.rotation / the construct's
ca_rotation prop), advanced by the monitor's scheduled runs on the emulator:
each run starts rotations or records deliveries without waiting, stage by
stage, with a TLS handshake after every run for clients holding the trust
bundle of the run before."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from certrotor.config import CaRotationTarget
from certrotor.handlers.monitor import lambda_handler
from certrotor.local.ca import LocalCA
from certrotor.local.driver import LambdaContext
from certrotor.local.emulator import Emulator
from certrotor.local.provision import LocalEnvironment, trust_store
from certrotor.local.rekey import BackgroundRotations
from certrotor.services.trust import CaStatus

from .test_ca_rotation import build_world


@pytest.fixture
def world(emulator: Emulator, root_ca: LocalCA) -> Any:
    world = build_world(emulator, root_ca, "cm")
    env = world.env
    # RotateSecret (the monitor's trigger) runs the rotation function's steps in the background
    rotations = BackgroundRotations(env)
    env.emulator.on_rotate_secret(rotations)
    yield world, rotations
    env.emulator.on_rotate_secret(None)


def deployed(env: LocalEnvironment, target: CaRotationTarget) -> LocalEnvironment:
    ca = replace(env.config.ca, next_arn=target.to_arn, rotation=target)
    return replace(env, config=replace(env.config, ca=ca))


def run_monitor(env: LocalEnvironment) -> dict[str, Any]:
    with env.emulator.activated(env.lambda_env()):
        return dict(lambda_handler({}, LambdaContext(function_name="certrotor-monitor")))


def test_the_monitor_runs_a_deploy_driven_ca_rotation_stage_by_stage_without_a_failed_handshake(world: Any) -> None:
    world, rotations = world
    old_arn = world.env.ca_arn
    env = deployed(world.env, CaRotationTarget(world.new_arn, until="prune"))
    _, held = world.fetch(world.names[0])
    seen = []
    # When the monitor runs on its schedule (each run returns at once; rotations go on in the background)
    for _ in range(10):
        result = run_monitor(env)["ca_rotation"]
        rotations.wait(60)
        seen.append(result["stage"])
        for name in world.names:
            world.handshake(name, held)  # clients still holding the bundle of the run before
        _, held = world.fetch(world.names[0])
        if result["stage"] == "prune":
            break
    # Then it went through trust and move and stopped before prune, every set on the new CA
    assert seen[0] == "trust" and seen[-1] == "prune" and "move" in seen
    assert seen == sorted(seen, key=["trust", "move", "prune"].index)
    assert held == world.env.root.pem + world.new_root.pem
    assert sorted(rotations.finished) == sorted(world.names * 2)  # one refresh and one move each
    for name in world.names:
        assert world.current(name).ca == world.new_arn
    # When the next deploy lets it finish
    finished = run_monitor(deployed(world.env, CaRotationTarget(world.new_arn)))["ca_rotation"]
    again = run_monitor(deployed(world.env, CaRotationTarget(world.new_arn)))["ca_rotation"]
    # Then the old CA left the bundle; later runs change nothing
    assert finished["stage"] == again["stage"] == "done"
    document = trust_store(world.env.emulator, world.env.config).load()
    assert document.ca(old_arn).status == CaStatus.RETIRED  # type: ignore[union-attr]
    _, after = world.fetch(world.names[0])
    assert after == world.new_root.pem
    for name in world.names:
        world.handshake(name, after)
        world.handshake(name, held)
    assert sorted(rotations.finished) == sorted(world.names * 2)


def test_a_paused_deploy_driven_rotation_is_left_alone(world: Any) -> None:
    world, rotations = world
    env = deployed(world.env, CaRotationTarget(world.new_arn))
    assert run_monitor(env)["ca_rotation"]["stage"] == "trust"
    rotations.wait(60)
    world.rotation().pause()
    started = len(rotations.finished)
    result = run_monitor(env)["ca_rotation"]
    rotations.wait(60)
    assert result["paused"] is True and result["stage"] == "trust"
    assert any("paused" in line for line in result["lines"])
    assert len(rotations.finished) == started

"""The re-key state machine's definition, run by the emulator's Step
Functions (moto's ASL interpreter), starting rotations through RotateSecret
and the real rotation handler; and `certrotor status` over the same sets."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from certrotor.aws.secrets import SecretStore
from certrotor.config import load_config
from certrotor.fleet import rekey
from certrotor.fleet.commands import run_status
from certrotor.fleet.quotas import Pacing
from certrotor.local.ca import LocalCA
from certrotor.local.emulator import Emulator
from certrotor.local.provision import DEFAULT_CONFIG, LocalEnvironment, provision
from certrotor.local.rekey import BackgroundRotations, deploy_state_machine
from certrotor.services.reader import SetReader

FAST = Pacing(concurrency=3, wait_seconds=1)


@pytest.fixture
def fleet(emulator: Emulator, root_ca: LocalCA) -> Callable[[int], LocalEnvironment]:
    """A rotator of its own (unique id) with `count` sets, each rotated once."""

    def build(count: int) -> LocalEnvironment:
        data = copy.deepcopy(DEFAULT_CONFIG)
        prefix = uuid.uuid4().hex[:8]
        data["service_name"] = f"r{prefix}"
        data["sets"] = [
            {**data["sets"][0], "name": f"f{prefix}/s{i}", "services": [{"cluster": f"c{prefix}", "service": f"s{i}"}]}
            for i in range(count)
        ]
        return provision(emulator, load_config(data), root_ca)

    return build


def serial(env: LocalEnvironment, name: str) -> str:
    return SetReader(SecretStore(env.emulator.client("secretsmanager"))).read(name).manifest.serial


def run(env: LocalEnvironment, rotations: BackgroundRotations, machine: str, **selection: Any) -> rekey.Progress:
    selection.setdefault("since", rekey.since_now())
    document = rekey.build_input(
        env.emulator.client("secretsmanager"), env.config.service_name, FAST, reason="test", **selection
    )
    sfn = env.emulator.client("stepfunctions")
    execution = rekey.start(sfn, machine, document, now=dt.datetime.now(dt.UTC))
    progress = rekey.follow(sfn, execution, say=lambda _: None, interval=0.2, timeout=120)
    rotations.wait(120)
    return progress


def first_rotation(env: LocalEnvironment) -> None:
    from certrotor.local.driver import RotationDriver

    driver = RotationDriver(env)
    for cert_set in env.config.sets:
        driver.rotate(cert_set.name)


def test_rekey_of_every_set_rotates_each_once_and_a_second_run_skips_them(fleet: Any) -> None:
    # Given a rotator with three issued sets
    env = fleet(3)
    first_rotation(env)
    before = {s.name: serial(env, s.name) for s in env.config.sets}
    rotations = BackgroundRotations(env)
    machine = deploy_state_machine(env, rotations)
    since = rekey.since_now()
    # When every set is re-keyed through the state machine
    progress = run(env, rotations, machine, every_set=True, since=since)
    # Then each set got a new certificate through the rotation function
    assert progress.status == "SUCCEEDED"
    assert progress.outcomes == {"started": 3}
    assert all(serial(env, name) != old for name, old in before.items())
    assert sorted(rotations.finished) == sorted(before)
    # And a second run with the same start time skips them all (resumable)
    again = run(env, rotations, machine, every_set=True, since=since)
    assert again.outcomes == {"skipped": 3}
    assert sorted(rotations.finished) == sorted(before)


def test_a_set_that_cannot_rotate_is_listed_and_does_not_stop_the_others(fleet: Any) -> None:
    # Given three sets, one of them with a rotation already pending
    env = fleet(3)
    first_rotation(env)
    blocked = env.config.sets[1].name
    env.emulator.stage_pending(blocked, str(uuid.uuid4()))
    rotations = BackgroundRotations(env)
    machine = deploy_state_machine(env, rotations)
    # When the sets are re-keyed by a name pattern
    progress = run(env, rotations, machine, pattern=f"{blocked.split('/')[0]}/*")
    # Then the others were started and the blocked one is reported with its reason
    assert progress.outcomes == {"started": 2, "in-progress": 1}
    assert list(progress.failed) == [blocked]
    assert "InvalidRequestException" in progress.failed[blocked]
    assert rekey.report(progress, say=lambda _: None) == 1


def test_selection_by_ca_takes_only_sets_issued_by_it(fleet: Any) -> None:
    env = fleet(2)
    first_rotation(env)
    document = rekey.build_input(
        env.emulator.client("secretsmanager"), env.config.service_name, FAST, "now", "drill", ca=env.ca_arn
    )
    assert sorted(document["sets"]) == sorted(s.name for s in env.config.sets)
    with pytest.raises(rekey.SelectionError):
        rekey.build_input(
            env.emulator.client("secretsmanager"), env.config.service_name, FAST, "now", "drill", ca=env.ca_arn + "0"
        )


def test_status_lists_every_set_and_fails_on_a_stuck_or_unissued_one(fleet: Any, capsys: Any) -> None:
    import argparse

    env = fleet(2)
    args = argparse.Namespace(
        rotator=env.config.service_name, set=None, json=True, alarm_days=7, reads_per_second=1000.0
    )
    # Before the first rotation: nothing issued, still healthy enough (no alarm)
    first_rotation(env)
    assert run_status(args, secrets=env.emulator.client("secretsmanager")) == 0
    report = __import__("json").loads(capsys.readouterr().out)
    assert [s["state"] for s in report["sets"]] == ["ok", "ok"]
    assert all(s["serial"] and s["issuer_ca"] == env.ca_arn and s["days_left"] > 29 for s in report["sets"])
    # When one set has AWSPENDING left on another version for hours
    stuck = env.config.sets[0].name
    env.emulator.stage_pending(stuck, str(uuid.uuid4()))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    code = run_status(args, secrets=env.emulator.client("secretsmanager"), now=later)
    report = __import__("json").loads(capsys.readouterr().out)
    # Then status exits non-zero and names it, and the other set is still listed
    assert code == 1
    states = {s["name"]: s["state"] for s in report["sets"]}
    assert states == {stuck: "stuck", env.config.sets[1].name: "ok"}

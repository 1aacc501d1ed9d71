"""certrotor plan: created and removed sets, the budget, schedule windows."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from certrotor.cli import main
from certrotor.config import load_config
from certrotor.fleet.plan import DeployedSet, plan
from certrotor.fleet.quotas import PerRotation
from certrotor.fleet.spread import deployed_schedule

CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def fleet(count: int, expression: Any = "rate(30 days)") -> dict[str, Any]:
    return {
        "ca": {"arn": CA},
        "sets": [
            {"name": f"tls/s{i}", "dns_names": [f"s{i}.internal"], "validity_days": 45, "schedule": expression}
            for i in range(count)
        ],
    }


def as_deployed(config: Any, **rules: Any) -> dict[str, DeployedSet]:
    """The sets of `config` as a deploy of it leaves them."""
    return {
        s.name: DeployedSet(
            s.name,
            s,
            rotation_rules=rules or deployed_schedule(s, config.expiry_alarm_days).rotation_rules(),
            issuer_ca=CA,
        )
        for s in config.sets
    }


def test_created_and_removed_sets_and_the_budget_of_the_first_rotations() -> None:
    before = load_config({**fleet(1), "sets": [*fleet(1)["sets"], {"name": "tls/old", "dns_names": ["old.internal"]}]})
    config = load_config(fleet(3))
    result = plan(config, deployed=as_deployed(before), per_rotation=PerRotation(writes=8, issues=1))
    assert result.created == ["tls/s1", "tls/s2"]
    assert result.removed == ["tls/old"]
    assert result.kept == ["tls/s0"]
    assert result.changed == []
    assert result.rotations_on_deploy == 2
    assert (result.writes, result.issuances) == (16, 2)
    assert result.seconds_at_bound == pytest.approx(2 / 6.25)


def changed(**fields: Any) -> dict[str, Any]:
    data = fleet(2)
    data["sets"][0].update(fields)
    return data


@pytest.mark.parametrize(
    ("fields", "new_certificate"),
    [
        ({"dns_names": ["s0.internal", "alt.internal"]}, ["dns_names"]),
        ({"key_algorithm": "RSA_2048"}, ["key_algorithm"]),
        ({"validity_days": 60}, ["validity_days"]),
        ({"usage": "both"}, ["usage"]),
        ({"chain_parts": 3}, ["chain_parts"]),
        ({"services": [{"cluster": "main", "service": "web"}]}, []),
        ({"delivery": "reload"}, []),
    ],
)
def test_a_changed_spec_names_its_fields_and_whether_a_new_certificate_is_needed(
    fields: dict[str, Any], new_certificate: list[str]
) -> None:
    before = load_config(fleet(2))
    result = plan(load_config(changed(**fields)), deployed=as_deployed(before), per_rotation=PerRotation(writes=8))
    [change] = result.changed
    assert change.name == "tls/s0"
    assert list(change.fields) == list(fields)
    (key,) = fields
    assert change.fields[key][1] == json.loads(json.dumps(fields[key]))
    assert change.new_certificate == new_certificate
    # The deploy rotates nothing: the schedule is the same.
    assert change.schedule is None and not change.rotates_on_deploy
    assert result.rotations_on_deploy == 0
    assert result.rotations_to_apply == len(new_certificate)
    assert result.writes_to_apply == 8 * len(new_certificate)
    assert result.kept == ["tls/s1"]


def test_a_changed_schedule_rotates_on_deploy_unless_rotate_immediately_is_false() -> None:
    before = as_deployed(load_config(fleet(2)))
    now = plan(load_config(changed(schedule="rate(14 days)")), deployed=before)
    later = plan(load_config(changed(schedule={"expression": "rate(14 days)", "rotate_immediately": False})), before)

    [change] = now.changed
    assert change.schedule is not None and change.rotates_on_deploy
    assert now.rotations_on_deploy == 1
    [change] = later.changed
    assert change.schedule is not None and not change.rotates_on_deploy
    assert later.rotations_on_deploy == 0


def test_sets_deployed_with_unspread_rates_rotate_on_the_deploy_that_spreads_them() -> None:
    config = load_config(fleet(3))
    result = plan(config, deployed=as_deployed(config, ScheduleExpression="rate(30 days)"))
    assert [c.fields for c in result.changed] == [{}, {}, {}]
    assert result.rotations_on_deploy == 3


def test_a_set_issued_by_another_ca_needs_a_new_certificate() -> None:
    config = load_config(fleet(1))
    before = {n: dataclasses.replace(d, issuer_ca=CA.replace("1111", "9999")) for n, d in as_deployed(config).items()}
    [change] = plan(config, deployed=before).changed
    assert change.new_certificate == ["ca"]


def test_an_unreadable_deployed_spec_is_reported_not_guessed() -> None:
    config = load_config(fleet(1))
    result = plan(config, deployed={"tls/s0": DeployedSet("tls/s0", None, problem="tls/s0: no certrotor spec")})
    assert result.unreadable == ["tls/s0: no certrotor spec"]
    assert (result.created, result.changed, result.kept) == ([], [], [])


def test_ten_thousand_sets_on_one_interval_are_spread_below_the_quotas() -> None:
    config = load_config(fleet(10_000))
    result = plan(config, deployed={})
    [load] = result.windows
    # 28 days x 6 four-hour windows a day
    assert load.deployed_schedules == 168
    assert load.peak_rotations_per_second <= 1.4 * 10_000 / 168 / (4 * 3600)
    assert load.unspread_rotations_per_second == pytest.approx(10_000 / 86_400)
    assert load.fits
    assert result.peak_rotations_per_second == load.peak_rotations_per_second
    assert result.fits


def test_the_plan_shows_each_set_with_the_schedule_it_is_deployed_with() -> None:
    config = load_config(fleet(20))
    result = plan(config, deployed={})
    assert result.schedules == {s.name: deployed_schedule(s, config.expiry_alarm_days) for s in config.sets}
    assert len({s.expression for s in result.schedules.values()}) > 1


def test_a_fleet_too_crowded_for_the_quotas_does_not_fit() -> None:
    # 100 sets not spread, all in one one-hour window, against a bound of
    # 0.01 rotations/s (5,000 writes a rotation): 0.028/s in that hour.
    config = load_config(fleet(100, {"expression": "rate(1 day)", "window": "1h", "spread": False}))
    result = plan(config, deployed={}, per_rotation=PerRotation(writes=5_000))
    assert result.peak_rotations_per_second == pytest.approx(100 / 3600)
    assert not result.fits
    assert not result.windows[0].fits


def test_plan_command_prints_the_changes_offline(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(fleet(2)))
    assert main(["plan", "--config", str(path), "--offline", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["created"] == ["tls/s0", "tls/s1"]


def test_plan_refuses_an_invalid_config_in_one_line(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"ca": {"arn": CA}, "sets": []}))
    assert main(["plan", "--config", str(path), "--offline"]) == 64
    assert capsys.readouterr().err.count("\n") == 1

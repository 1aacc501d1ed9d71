"""certrotor plan: created and removed sets, the budget, schedule windows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from certrotor.cli import main
from certrotor.config import load_config
from certrotor.fleet.plan import plan
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


def test_created_and_removed_sets_and_the_budget_of_the_first_rotations() -> None:
    config = load_config(fleet(3))
    result = plan(config, deployed={"tls/s0", "tls/old"}, per_rotation=PerRotation(writes=8, issues=1))
    assert result.created == ["tls/s1", "tls/s2"]
    assert result.removed == ["tls/old"]
    assert result.kept == ["tls/s0"]
    assert (result.writes, result.issuances) == (16, 2)
    assert result.seconds_at_bound == pytest.approx(2 / 6.25)


def test_ten_thousand_sets_on_one_interval_are_spread_below_the_quotas() -> None:
    config = load_config(fleet(10_000))
    result = plan(config, deployed=set())
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
    result = plan(config, deployed=set())
    assert result.schedules == {s.name: deployed_schedule(s, config.expiry_alarm_days) for s in config.sets}
    assert len({s.expression for s in result.schedules.values()}) > 1


def test_a_fleet_too_crowded_for_the_quotas_does_not_fit() -> None:
    # 100 sets not spread, all in one one-hour window, against a bound of
    # 0.01 rotations/s (5,000 writes a rotation): 0.028/s in that hour.
    config = load_config(fleet(100, {"expression": "rate(1 day)", "window": "1h", "spread": False}))
    result = plan(config, deployed=set(), per_rotation=PerRotation(writes=5_000))
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

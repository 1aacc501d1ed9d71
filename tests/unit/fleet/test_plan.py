"""certrotor plan: created and removed sets, the budget, schedule windows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from certrotor.cli import main
from certrotor.config import load_config
from certrotor.fleet.plan import plan, spread_offset
from certrotor.fleet.quotas import PerRotation

CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def fleet(count: int, expression: str = "rate(30 days)") -> dict[str, Any]:
    return {
        "ca": {"arn": CA},
        "sets": [
            {"name": f"tls/s{i}", "dns_names": [f"s{i}.internal"], "validity_days": 45, "schedule": expression}
            for i in range(count)
        ],
    }


def test_the_spread_offset_is_stable_and_uses_every_slot() -> None:
    assert spread_offset("tls/orders", 30) == spread_offset("tls/orders", 30)
    assert len({spread_offset(f"tls/s{i}", 30) for i in range(1000)}) == 30


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
    [load] = plan(config, deployed=set()).windows
    assert load.windows_per_interval == 30
    # Spread by name: about 10,000 / 30 per day-long window, far under the bound
    assert 300 <= load.peak_sets_per_window <= 400
    assert load.peak_rotations_per_second < 0.01
    assert load.unspread_rotations_per_second == pytest.approx(10_000 / 86_400)
    assert load.fits


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

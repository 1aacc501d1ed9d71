"""bench/fleet_synth.py on a small fleet: one rotator, service stacks, and
cfn-lint and cdk-nag clean on every template, reported on its last line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_small_fleet_synthesizes_clean_and_reports_its_line() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "fleet_synth.py"), "--sets", "7", "--per-stack", "3"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    last = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # One rotator stack and three service stacks (3 + 3 + 1 sets).
    assert re.fullmatch(r"fleet synth: 7 sets in 4 stacks, cfn-lint 0, nag 0, \d+ s", last), last


def test_bad_arguments_are_one_line() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "fleet_synth.py"), "--sets", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--sets and --per-stack must be at least 1" in result.stderr

"""Mutation testing of the core with mutmut: `make mutation`.

mutmut imports the mutated package from `mutants/src`, so the run happens in a
staging copy under build/mutation/ where the package sits at src/certrotor and
the tests beside it; the repository itself is never changed. The modules
mutated and the fast tests that cover them are listed below. The last line
printed is the score:

    mutation: K killed, S survived of N (P%)

Timeouts count as killed (the mutant hung the code under test); mutants no
test reaches count as survived. Usage:

    python tools/mutation.py [--max-children N] [--keep]

`--keep` reuses build/mutation/ from the last run, so only mutants whose
code or tests changed are run again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "mutation"

# What is mutated (relative to the package) and the tests that cover it.
MUTATED = ["layout/*", "services/*", "pki/*", "client/files.py", "aws/*"]
TESTS = [
    "tests/unit",
    "tests/integration/aws",
    "tests/integration/contract",
    # services/expiry.py (the monitor) and the issuer's ledger revocations and
    # rotation trigger are reached only through the emulator.
    "tests/integration/rotation/test_monitor.py",
    "tests/integration/issuer",
]
# Modules left out of the score, each with its reason (see docs/TESTING.md).
NOT_MUTATED = [
    # Package markers and docstrings only.
    "*/__init__.py",
]

PYPROJECT = """\
[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-q -p no:cacheprovider --import-mode=importlib"
filterwarnings = ["ignore::DeprecationWarning", "ignore:No application metrics to publish:UserWarning"]

[tool.mutmut]
source_paths = ["src"]
only_mutate = {only}
do_not_mutate = {skip}
pytest_add_cli_args = ["-p", "no:randomly", "-p", "no:xdist"]
pytest_add_cli_args_test_selection = {tests}
also_copy = {copied}
timeout_multiplier = 10.0
"""


def stage(keep: bool) -> None:
    """Copy the repository into build/mutation/, the package at src/certrotor
    (tests read files such as examples/ relative to the repository root)."""
    if STAGE.exists() and not keep:
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True, exist_ok=True)
    skip = {".venv", ".git", "build", "cdk.out", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    copied = []
    for entry in ROOT.iterdir():
        if entry.name in skip or entry.name == "lambdas" or entry.name == "pyproject.toml":
            continue
        copied.append(entry.name)
        target = STAGE / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        if entry.is_dir():
            shutil.copytree(entry, target, ignore=ignore)
        else:
            shutil.copy2(entry, target)
    package = STAGE / "src" / "certrotor"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(ROOT / "lambdas" / "certrotor", package, ignore=ignore)
    only = [f"src/certrotor/{pattern}" for pattern in MUTATED]
    skip_patterns = [f"src/certrotor/{pattern}" for pattern in NOT_MUTATED]
    tests = [t for t in TESTS if (ROOT / t).exists()]
    (STAGE / "pyproject.toml").write_text(
        PYPROJECT.format(
            only=json.dumps(only), skip=json.dumps(skip_patterns), tests=json.dumps(tests), copied=json.dumps(copied)
        ),
        encoding="utf-8",
    )


def score() -> tuple[int, int, int]:
    """(killed, survived, total) from mutmut's CI/CD stats."""
    mutmut = [sys.executable, "-m", "mutmut"]
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=STAGE, check=True, stdout=subprocess.DEVNULL)
    stats = json.loads((STAGE / "mutants" / "mutmut-cicd-stats.json").read_text(encoding="utf-8"))
    killed = int(stats.get("killed", 0)) + int(stats.get("timeout", 0)) + int(stats.get("caught_by_type_check", 0))
    skipped = int(stats.get("skipped", 0))
    total = int(stats.get("total", 0)) - skipped
    return killed, total - killed, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", action="store_true", help="reuse the last run's results where nothing changed")
    parser.add_argument(
        "--only", nargs="+", metavar="PATTERN", help="mutate only these (e.g. layout/* client/files.py); not the score"
    )
    args = parser.parse_args(argv)
    if args.only:
        MUTATED[:] = args.only
    stage(args.keep)
    env = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true"}
    run = subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)], cwd=STAGE, env=env
    )
    killed, survived, total = score()
    if run.returncode != 0 or killed == 0:
        # mutmut stops before testing any mutant when the tests fail unmutated.
        print(f"mutation: mutmut run failed (exit code {run.returncode}); no score", file=sys.stderr)
        return run.returncode or 1
    subprocess.run([sys.executable, "-m", "mutmut", "results"], cwd=STAGE, env=env)
    percent = 100.0 * killed / total if total else 0.0
    scope = f" (only {', '.join(args.only)})" if args.only else ""
    print(f"mutation{scope}: {killed} killed, {survived} survived of {total} ({percent:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

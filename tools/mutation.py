"""Mutation testing of the core with mutmut: `make mutation`.

mutmut imports the mutated package from `mutants/src`, so the run happens in a
staging copy under build/mutation/ where the package sits at src/certrotor and
the tests beside it; the repository itself is never changed. The modules
mutated and the fast tests that cover them are listed below. The last line
printed is the score:

    mutation: K killed, S survived of N (P%)

Timeouts count as killed (the mutant hung the code under test); mutants no
test reaches count as survived. Usage:

    python tools/mutation.py [--max-children N] [--keep] [--rerun-survivors] [--score]

`--keep` reuses build/mutation/ from the last run: mutmut keeps each mutant's
result and runs again only the mutants of functions whose code changed (and
those never checked). A result stays until its function changes, so after new
tests are added `--rerun-survivors` (implies `--keep`) also runs every mutant
not yet killed again (survivors, mutants no test reached, unchecked ones), and
only those: the score is then complete and current without a full run.
`--score` runs nothing: it prints the line for the results kept, every
mutant without a result (never checked, or its function changed since)
counted as survived.
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
# Fixture setup (the emulator, a provisioned environment) is not in the test
# durations mutmut measures; without this a slow setup on a busy machine
# would pass for a hang (a timeout counts as killed).
timeout_constant = 5.0
"""


# Written into the staging copy only: each mutant's tests run fastest first
# (unit tests, then the rest; a file's tests stay together so that module
# fixtures are made once), so a mutant is killed by the cheapest test that
# notices it. Durations are those mutmut measured; the tests do not depend on
# their order (the clean run at the start of every run checks this order).
ORDER_PLUGIN = """\
import json
from pathlib import Path


def pytest_collection_modifyitems(session, config, items):
    try:
        durations = json.loads(Path("mutmut-stats.json").read_text(encoding="utf-8"))["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    by_file = {}
    for item in items:
        path = item.nodeid.split("::")[0]
        by_file[path] = by_file.get(path, 0.0) + durations.get(item.nodeid, 1.0)
    position = {id(item): index for index, item in enumerate(items)}

    def key(item):
        path = item.nodeid.split("::")[0]
        return ("/unit/" not in path, by_file[path], path, position[id(item)])

    items.sort(key=key)
"""


def stage(keep: bool) -> None:
    """Copy the repository into build/mutation/, the package at src/certrotor
    (tests read files such as examples/ relative to the repository root)."""
    if STAGE.exists() and not keep:
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True, exist_ok=True)
    skip = {
        ".venv",
        ".git",
        "build",
        "cdk.out",
        "node_modules",
        ".cdk-cli",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
    }
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
    (STAGE / "conftest.py").write_text(ORDER_PLUGIN, encoding="utf-8")
    copied.append("conftest.py")
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


GENERATE = """\
import sys
from os import makedirs
import mutmut.__main__ as m
makedirs("mutants", exist_ok=True)
m.copy_src_dir()
m.copy_also_copy_files()
m.setup_source_paths()
m.create_mutants(int(sys.argv[1]))
"""

# mutmut's exit codes that are a kill (killed, pytest internal error, timeouts,
# caught by the type check); see mutmut.stats.status_by_exit_code.
KILLED_CODES = {1, 3, 36, 37, -24, 24, 152, 255}


def results() -> dict[str, int | None]:
    """Every mutant's recorded exit code (None: not checked yet), from mutants/**/*.meta."""
    codes: dict[str, int | None] = {}
    for meta in sorted((STAGE / "mutants").rglob("*.py.meta")):
        codes.update(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])
    return codes


def not_killed(env: dict[str, str], max_children: int) -> list[str]:
    """Generate the mutants of the current code (mutmut resets the results of
    changed functions), then name every mutant without a kill."""
    subprocess.run([sys.executable, "-c", GENERATE, str(max_children)], cwd=STAGE, env=env, check=True)
    return sorted(name for name, code in results().items() if code not in KILLED_CODES)


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
        "--rerun-survivors",
        action="store_true",
        help="with --keep: run again only the mutants not killed yet (after adding tests)",
    )
    parser.add_argument(
        "--score",
        action="store_true",
        help="run nothing: generate the mutants of the current code and print the score of the results kept",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="PATTERN", help="mutate only these (e.g. layout/* client/files.py); not the score"
    )
    args = parser.parse_args(argv)
    if args.only:
        MUTATED[:] = args.only
    stage(args.keep or args.rerun_survivors or args.score)
    env = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true"}
    names: list[str] = []
    if args.score:
        # Mutants of functions changed since their result are reset (counted
        # as survived until checked): the score is of the current code.
        not_killed(env, args.max_children)
        return report(args.only, env, 0)
    if args.rerun_survivors and (STAGE / "mutants").exists():
        names = not_killed(env, args.max_children)
        print(f"mutation: running again the {len(names)} mutants not killed", flush=True)
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children), *names]
    run: subprocess.CompletedProcess[bytes]
    if args.rerun_survivors and not names and (STAGE / "mutants").exists():
        run = subprocess.CompletedProcess(command, 0)
    else:
        run = subprocess.run(command, cwd=STAGE, env=env)
    return report(args.only, env, run.returncode)


def report(only: list[str] | None, env: dict[str, str], returncode: int) -> int:
    """List the survivors and print the score line."""
    killed, survived, total = score()
    unchecked = sum(1 for code in results().values() if code is None)
    if unchecked:
        print(f"mutation: {unchecked} mutants not checked yet (counted as survived)", file=sys.stderr)
    if returncode != 0 or killed == 0:
        # mutmut stops before testing any mutant when the tests fail unmutated.
        print(f"mutation: mutmut run failed (exit code {returncode}); no score", file=sys.stderr)
        return returncode or 1
    subprocess.run([sys.executable, "-m", "mutmut", "results"], cwd=STAGE, env=env)
    percent = 100.0 * killed / total if total else 0.0
    scope = f" (only {', '.join(only)})" if only else ""
    print(f"mutation{scope}: {killed} killed, {survived} survived of {total} ({percent:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

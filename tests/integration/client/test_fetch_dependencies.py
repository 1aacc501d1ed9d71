"""The container client runs with boto3 and cryptography only: a whole fetch
succeeds in an interpreter where importing Powertools or moto fails."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Runs in a fresh interpreter: refuse the Lambda-only and test-only packages,
# then run the arguments given (certrotor-fetch's main, or a bare import).
BLOCKED_RUN = textwrap.dedent(
    """
    import importlib, sys

    class Refuse:
        blocked = ("aws_lambda_powertools", "moto")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"blocked import of {name}")
            return None

    sys.meta_path.insert(0, Refuse())
    if sys.argv[1] == "import":
        importlib.import_module(sys.argv[2])
        sys.exit(0)
    from certrotor.client.entrypoint import main
    code = main(sys.argv[1:])
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in Refuse.blocked)
    print("loaded:", loaded)
    sys.exit(code)
    """
)


def run_blocked(args: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, *args], env=environ, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_whole_fetch_runs_without_powertools_or_moto(shared_set, tmp_path):
    # Given an interpreter that cannot import Powertools or moto
    args = ["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "--combined", "--pkcs12"]
    # When certrotor-fetch fetches, verifies and writes a set in it
    result = run_blocked(args, shared_set.env_vars())
    # Then it succeeds, and neither package was loaded
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded: []"
    assert (tmp_path / "tls" / "cert.p12").is_file()


def test_the_import_blocker_does_refuse_powertools(shared_set):
    # Given the same interpreter set-up
    # When a module that needs Powertools (the rotation handler) is imported
    result = run_blocked(["import", "certrotor.handlers.rotate"], shared_set.env_vars())
    # Then the import fails: the test above would have caught such an import
    assert result.returncode != 0
    assert "blocked import of aws_lambda_powertools" in result.stderr

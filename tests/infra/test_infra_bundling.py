"""The Lambda asset is built with pip for the Lambda platform, without Docker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from certrotor_cdk import bundling
from certrotor_cdk.bundling import BundleTarget, PipBundler
from certrotor_cdk.constants import LAMBDA_PACKAGE_DIR


class RecordingPip:
    """Stands in for subprocess.run: remembers the pip command, installs nothing."""

    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.commands: list[list[str]] = []
        self.returncode = returncode
        self.stderr = stderr

    def __call__(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        target = Path(command[command.index("--target") + 1])
        (target / "bin").mkdir(parents=True, exist_ok=True)
        (target / "some_dependency.py").write_text("")
        return subprocess.CompletedProcess(command, self.returncode, "", self.stderr)


def option_values(command: list[str], option: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == option]


def test_lambda_target_defaults_to_arm64_python_3_13_on_amazon_linux_2023() -> None:
    target = BundleTarget.for_lambda()

    assert target.machine == "aarch64"
    assert target.python_version == "3.13"
    assert target.lambda_architecture.name == "arm64"
    assert target.platforms == (
        "manylinux_2_17_aarch64",
        "manylinux_2_28_aarch64",
        "manylinux_2_34_aarch64",
        "manylinux2014_aarch64",
    )


def test_lambda_target_may_be_x86_64() -> None:
    target = BundleTarget.for_lambda("x86_64")

    assert target.lambda_architecture.name == "x86_64"
    assert "manylinux2014_x86_64" in target.platforms


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of arm64, x86_64"):
        BundleTarget.for_lambda("riscv64")


def test_target_accepts_no_wheel_newer_than_its_glibc() -> None:
    target = BundleTarget(machine="x86_64", python_version="3.11", glibc=(2, 31))

    assert "manylinux_2_34_x86_64" not in target.platforms
    assert "manylinux_2_28_x86_64" in target.platforms


def test_pip_installs_binary_wheels_for_the_target_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pip = RecordingPip()
    monkeypatch.setattr(bundling.subprocess, "run", pip)

    PipBundler(BundleTarget.for_lambda(), cache_dir=tmp_path / "cache", compiler=None).build(tmp_path / "out")

    [command] = pip.commands
    assert command[1:4] == ["-m", "pip", "install"]
    assert "--only-binary=:all:" in command
    assert "--no-compile" in command
    assert option_values(command, "--implementation") == ["cp"]
    assert option_values(command, "--python-version") == ["3.13"]
    assert "manylinux2014_aarch64" in option_values(command, "--platform")
    assert option_values(command, "-r")[0].endswith("requirements.txt")


def test_bundle_holds_the_requirements_and_the_package_source_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundling.subprocess, "run", RecordingPip())
    out = tmp_path / "out"

    PipBundler(BundleTarget.for_lambda(), cache_dir=tmp_path / "cache", compiler=None).build(out)

    assert (out / "some_dependency.py").exists()
    assert (out / "certrotor" / "config.py").exists()
    assert not (out / "bin").exists()
    assert not list(out.rglob("__pycache__"))
    assert not list(out.rglob("*.egg-info"))


def test_installed_requirements_are_reused_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pip = RecordingPip()
    monkeypatch.setattr(bundling.subprocess, "run", pip)
    bundler = PipBundler(BundleTarget.for_lambda(), cache_dir=tmp_path / "cache", compiler=None)

    bundler.build(tmp_path / "first")
    bundler.build(tmp_path / "second")

    assert len(pip.commands) == 1
    assert (tmp_path / "second" / "some_dependency.py").exists()


def test_pip_failure_stops_the_synth_with_pip_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundling.subprocess, "run", RecordingPip(1, "No matching distribution"))

    with pytest.raises(RuntimeError, match="No matching distribution"):
        PipBundler(BundleTarget.for_lambda(), cache_dir=tmp_path / "cache", compiler=None).build(tmp_path / "out")


def test_asset_hash_changes_with_the_requirements(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("boto3==1.0\n")
    bundler = PipBundler(BundleTarget.for_lambda(), requirements_file=requirements)
    before = bundler.asset_hash()

    requirements.write_text("boto3==2.0\n")

    assert bundler.asset_hash() != before


def test_asset_hash_changes_with_the_target() -> None:
    arm = PipBundler(BundleTarget.for_lambda("arm64")).asset_hash()
    x86 = PipBundler(BundleTarget.for_lambda("x86_64")).asset_hash()

    assert arm != x86


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.mark.bundle
def test_bundle_for_this_machine_imports_the_handlers_with_only_the_bundle_on_the_path(
    tmp_path: Path,
) -> None:
    # Wheels for the host, so compiled extensions (cryptography) load here;
    # production bundles use the same code for arm64 and Python 3.13.
    target = BundleTarget.for_host()
    asset = tmp_path / "asset"
    started = time.monotonic()

    PipBundler(target).build(asset)

    elapsed = time.monotonic() - started
    print(
        f"\nbundle {target.key}: {directory_size(asset) / 1e6:.1f} MB "
        f"({sum(1 for _ in asset.rglob('*'))} files) built in {elapsed:.1f}s"
    )
    handlers = ["certrotor.handlers.rotate"]
    if (LAMBDA_PACKAGE_DIR / "handlers" / "monitor.py").exists():
        handlers.append("certrotor.handlers.monitor")
    probe = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(asset)!r}]\n"
        f"for name in {handlers!r}:\n"
        "    importlib.import_module(name)\n"
        "import aws_lambda_powertools, boto3, certrotor, cryptography.x509\n"
        "from cryptography.hazmat.bindings._rust import x509  # the compiled extension\n"
        "for module in (aws_lambda_powertools, boto3, certrotor, cryptography):\n"
        f"    assert module.__file__.startswith({str(asset)!r}), module.__file__\n"
        "print('imported', len(sys.modules), 'modules')\n"
    )
    # -I: no PYTHONPATH, user site or cwd; -S: no site-packages. Only the
    # standard library and the bundle are importable.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"},
    )

    assert result.returncode == 0, result.stderr
    print(result.stdout.strip())

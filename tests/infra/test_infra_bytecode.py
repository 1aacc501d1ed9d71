"""The Lambda asset ships bytecode compiled by an interpreter of the runtime's
version, in unchecked-hash mode; without one it ships source and says so."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from certrotor_cdk import bytecode
from certrotor_cdk.bundling import BundleTarget, PipBundler
from certrotor_cdk.bytecode import BytecodeError, compile_tree, find_runtime_python, runtime_compiler

HOST_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked


def fake_pip(self: PipBundler, target_dir: Path) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    (target_dir / "some_dependency.py").write_text("VALUE = 1\n")


def pyc_flags(pyc: Path) -> int:
    return int.from_bytes(pyc.read_bytes()[4:8], "little")


def test_the_asset_holds_unchecked_hash_bytecode_for_every_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bundler that compiles with this interpreter (the runtime's, for a host target)
    monkeypatch.setattr(PipBundler, "_pip_install", fake_pip)
    bundler = PipBundler(BundleTarget.for_host(), cache_dir=tmp_path / "cache", compiler=sys.executable)

    # When the asset is built
    out = tmp_path / "out"
    bundler.build(out)

    # Then every module, the package's and the requirements', has bytecode
    # for this interpreter that is used without checking the source
    sources = [p for p in out.rglob("*.py")]
    assert any(p.name == "some_dependency.py" for p in sources)
    assert any(p.parts[-2:] == ("handlers", "rotate.py") for p in sources)
    for source in sources:
        pyc = Path(importlib.util.cache_from_source(str(source)))
        assert pyc.exists(), source
        assert pyc_flags(pyc) == UNCHECKED_HASH, pyc


def test_the_asset_hash_says_whether_the_asset_holds_bytecode() -> None:
    target = BundleTarget.for_lambda()

    with_bytecode = PipBundler(target, compiler=sys.executable).asset_hash()
    source_only = PipBundler(target, compiler=None).asset_hash()

    assert with_bytecode != source_only


def test_an_interpreter_named_in_the_environment_is_used_when_it_has_the_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(bytecode.RUNTIME_PYTHON_ENV, sys.executable)

    assert find_runtime_python(HOST_VERSION) == sys.executable


def test_an_interpreter_named_in_the_environment_with_another_version_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(bytecode.RUNTIME_PYTHON_ENV, sys.executable)

    with pytest.raises(BytecodeError, match=r"is not a Python 2\.7"):
        find_runtime_python("2.7")


def test_a_pyenv_install_of_the_version_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no interpreter of the version on PATH, one in a pyenv tree
    monkeypatch.delenv(bytecode.RUNTIME_PYTHON_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    version = "9.8"
    bin_dir = tmp_path / "pyenv" / "versions" / f"{version}.1" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / f"python{version}"
    python.write_text(f"#!/bin/sh\necho {version}\n")
    python.chmod(0o755)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))

    # Then it is the one found
    assert find_runtime_python(version) == str(python)


def test_without_an_interpreter_the_asset_ships_source_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bytecode, "find_runtime_python", lambda version: None)
    monkeypatch.delenv(bytecode.REQUIRE_BYTECODE_ENV, raising=False)

    assert runtime_compiler("3.13") is None
    assert "no Python 3.13 found" in capsys.readouterr().err


def test_without_an_interpreter_a_required_bytecode_build_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bytecode, "find_runtime_python", lambda version: None)
    monkeypatch.setenv(bytecode.REQUIRE_BYTECODE_ENV, "1")

    with pytest.raises(BytecodeError, match=r"no Python 3\.13 found"):
        runtime_compiler("3.13")


def test_a_module_that_does_not_compile_fails_the_build_with_the_compiler_output(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def broken(:\n")

    with pytest.raises(BytecodeError, match=r"broken\.py"):
        compile_tree(tmp_path, sys.executable)

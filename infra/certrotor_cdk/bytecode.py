"""Bytecode for the Lambda asset, compiled by the runtime's own Python.

Lambda's code directory is read-only, so a function whose asset ships no
``.pyc`` compiles every module it imports on every cold start. The asset is
therefore compiled with an interpreter of the runtime's version (bytecode is
specific to a minor version), with ``--invalidation-mode unchecked-hash``: the
runtime uses the ``.pyc`` without checking it against the source (an asset
never changes after it is built, and timestamps do not survive zipping).

The interpreter is found as: ``$CERTROTOR_RUNTIME_PYTHON``, ``pythonX.Y`` on
``PATH``, a pyenv install (``$PYENV_ROOT`` or ``~/.pyenv``), then the usual
system prefixes; each candidate is run to confirm its version. Without one the
asset ships source only, with a warning (set ``CERTROTOR_REQUIRE_BYTECODE=1``
to make that an error instead).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

RUNTIME_PYTHON_ENV = "CERTROTOR_RUNTIME_PYTHON"
REQUIRE_BYTECODE_ENV = "CERTROTOR_REQUIRE_BYTECODE"


class BytecodeError(RuntimeError):
    """No interpreter of the runtime's version, or compiling failed."""


def _candidates(version: str) -> Iterator[str]:
    explicit = os.environ.get(RUNTIME_PYTHON_ENV)
    if explicit:
        yield explicit
        return  # an explicit choice is not second-guessed
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        yield sys.executable
    on_path = shutil.which(f"python{version}")
    if on_path:
        yield on_path
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for install in sorted((pyenv_root / "versions").glob(f"{version}.*"), reverse=True):
        yield str(install / "bin" / f"python{version}")
    for prefix in ("/usr/local/bin", "/usr/bin", "/opt/homebrew/bin"):
        yield f"{prefix}/python{version}"


def _version_of(python: str) -> str | None:
    try:
        result = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_runtime_python(version: str) -> str | None:
    """An interpreter of Python `version` ("3.13") on this machine, or None."""
    seen: set[str] = set()
    for candidate in _candidates(version):
        if candidate in seen:
            continue
        seen.add(candidate)
        if _version_of(candidate) == version:
            return candidate
    if os.environ.get(RUNTIME_PYTHON_ENV):
        raise BytecodeError(f"{RUNTIME_PYTHON_ENV}={os.environ[RUNTIME_PYTHON_ENV]} is not a Python {version}")
    return None


def compile_tree(directory: Path, python: str) -> None:
    """Compile every module under `directory` in place (``__pycache__``)."""
    command = [
        python,
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        str(directory),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BytecodeError(
            f"compiling {directory} to bytecode failed (exit {result.returncode}):\n"
            f"{' '.join(command)}\n{(result.stdout + result.stderr)[-4000:]}"
        )


def runtime_compiler(version: str) -> str | None:
    """The interpreter to compile the asset with, or None to ship source only
    (after a warning); raises when bytecode is required and none is found."""
    python = find_runtime_python(version)
    if python is None:
        message = (
            f"no Python {version} found (set {RUNTIME_PYTHON_ENV}): the Lambda asset ships source only, "
            "and every cold start compiles it"
        )
        if os.environ.get(REQUIRE_BYTECODE_ENV, "").lower() in {"1", "true", "yes"}:
            raise BytecodeError(message)
        print(f"warning: {message}", file=sys.stderr)
    return python

"""Build the Lambda asset with pip on this machine, without Docker.

The asset is the pinned runtime requirements (``lambda-requirements.txt``,
package data of certrotor_cdk) installed as wheels for the Lambda platform,
plus the installed certrotor package itself.
``pip install --platform ... --only-binary=:all:`` picks wheels built for the
target (arm64 by default) whatever machine runs the synth, so a laptop, a CI
runner and a build host produce the same asset.

Installed requirements are cached in the user cache directory
(``$CERTROTOR_CACHE_DIR``, ``$XDG_CACHE_HOME/certrotor`` or
``~/.cache/certrotor``), keyed on the
requirements file and the target, so a repeat synth copies a directory
instead of running pip. Everything is compiled to bytecode by an interpreter
of the runtime's version when one is found (see ``bytecode``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from certrotor_cdk.bytecode import compile_tree, runtime_compiler
from certrotor_cdk.constants import (
    BUNDLE_CACHE_DIR,
    LAMBDA_PACKAGE_DIR,
    LAMBDA_REQUIREMENTS_FILE,
)

# Lambda's Python 3.13 runtime is Amazon Linux 2023, glibc 2.34.
LAMBDA_PYTHON_VERSION = "3.13"
LAMBDA_GLIBC = (2, 34)
# manylinux tags wheels are commonly published for (PEP 600); a target
# accepts every tag up to its own glibc.
_MANYLINUX_GLIBC_TAGS = ((2, 17), (2, 28), (2, 34))
_MACHINE_OF_ARCHITECTURE = {"arm64": "aarch64", "x86_64": "x86_64"}
_SOURCE_EXCLUDES = ["*.egg-info", "__pycache__", "*.pyc"]
_COMPLETE_MARKER = ".complete"
FIND_COMPILER = object()  # PipBundler(compiler=...): look for the target's Python


@dataclass(frozen=True)
class BundleTarget:
    """The platform the bundled wheels must run on."""

    machine: str
    """``aarch64`` or ``x86_64`` (uname spelling, as in wheel tags)."""
    python_version: str = LAMBDA_PYTHON_VERSION
    glibc: tuple[int, int] = LAMBDA_GLIBC

    @classmethod
    def for_lambda(cls, architecture: str = "arm64") -> BundleTarget:
        """The Lambda runtime on ``arm64`` (default) or ``x86_64``."""
        try:
            return cls(machine=_MACHINE_OF_ARCHITECTURE[architecture])
        except KeyError:
            raise ValueError(
                f"architecture {architecture!r}: expected one of {', '.join(sorted(_MACHINE_OF_ARCHITECTURE))}"
            ) from None

    @classmethod
    def for_host(cls) -> BundleTarget:
        """This machine and interpreter: a bundle that imports here, for tests."""
        libc, version = platform.libc_ver()
        if libc != "glibc":
            raise RuntimeError("bundling for the host needs a glibc Linux host")
        major, minor = (int(part) for part in version.split(".")[:2])
        return cls(
            machine=platform.machine(),
            python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
            glibc=(major, minor),
        )

    @property
    def platforms(self) -> tuple[str, ...]:
        """pip ``--platform`` values: every manylinux tag this target runs."""
        tags = [
            f"manylinux_{major}_{minor}_{self.machine}"
            for major, minor in _MANYLINUX_GLIBC_TAGS
            if (major, minor) <= self.glibc
        ]
        # pip expands the legacy alias to manylinux2010/1 wheels too.
        return (*tags, f"manylinux2014_{self.machine}")

    @property
    def lambda_architecture(self) -> lambda_.Architecture:
        return lambda_.Architecture.ARM_64 if self.machine == "aarch64" else lambda_.Architecture.X86_64

    @property
    def key(self) -> str:
        """Names the target in cache directories, e.g. ``cp313-aarch64-glibc2.34``."""
        python = "cp" + self.python_version.replace(".", "")
        return f"{python}-{self.machine}-glibc{self.glibc[0]}.{self.glibc[1]}"


@jsii.implements(ILocalBundling)
class PipBundler:
    """Local bundling for ``Code.from_asset``: pip wheels plus the package.

    ``build(output_dir)`` does the work and can be called without CDK.
    Failures raise with pip's output, so a synth never falls back to Docker.
    """

    def __init__(
        self,
        target: BundleTarget,
        *,
        requirements_file: Path = LAMBDA_REQUIREMENTS_FILE,
        package_dir: Path = LAMBDA_PACKAGE_DIR,
        cache_dir: Path = BUNDLE_CACHE_DIR,
        python: str = sys.executable,
        compiler: str | object | None = FIND_COMPILER,
    ) -> None:
        self.target = target
        self.requirements_file = requirements_file
        self.package_dir = package_dir
        self.cache_dir = cache_dir
        self.python = python
        if compiler is not FIND_COMPILER:
            self.compiler = compiler  # type: ignore[assignment]

    @functools.cached_property
    def compiler(self) -> str | None:
        """The interpreter that compiles the asset's bytecode (None: source only);
        by default one of the target's Python version found on this machine."""
        return runtime_compiler(self.target.python_version)

    def try_bundle(self, output_dir: str, options: Any = None, **_: Any) -> bool:
        """ILocalBundling: build into ``output_dir`` and report success."""
        self.build(Path(output_dir))
        return True

    def build(self, output_dir: Path) -> None:
        """Fill ``output_dir`` with the requirements and the certrotor package."""
        output_dir.mkdir(parents=True, exist_ok=True)
        site = self._installed_requirements()
        shutil.copytree(
            site,
            output_dir,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(_COMPLETE_MARKER),
        )
        shutil.copytree(
            self.package_dir,
            output_dir / self.package_dir.name,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(*_SOURCE_EXCLUDES),
        )
        if self.compiler is not None:
            compile_tree(output_dir / self.package_dir.name, self.compiler)

    def asset_hash(self) -> str:
        """Changes when the package source, the requirements or the target change."""
        digest = hashlib.sha256()
        digest.update(self.target.key.encode())
        digest.update(b"bytecode" if self.compiler is not None else b"source")
        digest.update(self.requirements_file.read_bytes())
        for path in sorted(self.package_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(self.package_dir)).encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()

    def _installed_requirements(self) -> Path:
        requirements = self.requirements_file.read_bytes()
        key = hashlib.sha256(requirements + self.target.key.encode()).hexdigest()[:16]
        site = self.cache_dir / f"site-{self.target.key}-{key}{'-pyc' if self.compiler is not None else ''}"
        if (site / _COMPLETE_MARKER).exists():
            return site
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="site-", dir=self.cache_dir))
        try:
            self._pip_install(staging)
            # Console scripts carry this host's interpreter path; useless in Lambda.
            shutil.rmtree(staging / "bin", ignore_errors=True)
            if self.compiler is not None:
                compile_tree(staging, self.compiler)
            (staging / _COMPLETE_MARKER).write_text(self.target.key)
            # A directory without the marker is an interrupted install.
            shutil.rmtree(site, ignore_errors=True)
            try:
                os.replace(staging, site)
            except OSError:
                # Another synth finished the same install first; keep theirs.
                if not (site / _COMPLETE_MARKER).exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return site

    def _pip_install(self, target_dir: Path) -> None:
        command = [
            self.python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            # .pyc files would be compiled by this interpreter, not the runtime's.
            "--no-compile",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            self.target.python_version,
            *(arg for tag in self.target.platforms for arg in ("--platform", tag)),
            "--target",
            str(target_dir),
            "--cache-dir",
            str(self.cache_dir / "pip"),
            "-r",
            str(self.requirements_file),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"bundling the Lambda asset failed (pip exit {result.returncode}):\n"
                f"{' '.join(command)}\n{result.stderr[-4000:]}"
            )


def lambda_code(target: BundleTarget, *, skip_bundling: bool = False) -> lambda_.Code:
    """The Lambda code asset: bundled with pip, or the bare source for fast synths.

    With ``skip_bundling`` the asset is the installed ``certrotor`` package
    alone: handlers resolve but third-party imports do not, which is fine for
    template tests. Both read the installed package, never a checkout.
    """
    if skip_bundling:
        return lambda_.Code.from_asset(str(_source_only(LAMBDA_PACKAGE_DIR, BUNDLE_CACHE_DIR)))
    bundler = PipBundler(target)
    return lambda_.Code.from_asset(
        str(LAMBDA_PACKAGE_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=bundler.asset_hash(),
        bundling=BundlingOptions(
            # Required by the API; never pulled, local bundling always succeeds or raises.
            image=lambda_.Runtime.PYTHON_3_13.bundling_image,
            local=bundler,
        ),
    )


def _source_only(package_dir: Path, cache_dir: Path) -> Path:
    """A directory holding only a copy of the package (the unbundled asset),
    in the cache, keyed on the package's content."""
    digest = hashlib.sha256()
    files = sorted(p for p in package_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        if path.suffix != ".pyc":
            digest.update(str(path.relative_to(package_dir)).encode())
            digest.update(path.read_bytes())
    root = cache_dir / f"source-{digest.hexdigest()[:16]}"
    if not (root / _COMPLETE_MARKER).exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="source-", dir=cache_dir))
        try:
            shutil.copytree(package_dir, staging / package_dir.name, ignore=shutil.ignore_patterns(*_SOURCE_EXCLUDES))
            (staging / _COMPLETE_MARKER).write_text(package_dir.name)
            shutil.rmtree(root, ignore_errors=True)
            try:
                os.replace(staging, root)
            except OSError:
                if not (root / _COMPLETE_MARKER).exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return root

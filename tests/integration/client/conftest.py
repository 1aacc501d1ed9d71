"""Fixtures for the container client against the emulator: a rotated set,
and certrotor-fetch run as a real subprocess with the emulator's environment."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from certrotor.client.entrypoint import main
from certrotor.config import load_config
from certrotor.local.ca import LocalCA
from certrotor.local.driver import RotationDriver
from certrotor.local.emulator import Emulator
from certrotor.local.provision import DEFAULT_CONFIG, LocalEnvironment, provision

FETCH = str(Path(sys.executable).with_name("certrotor-fetch"))


@dataclass(frozen=True)
class RotatedSet:
    """A provisioned set with one completed rotation."""

    env: LocalEnvironment
    name: str

    @property
    def secrets(self) -> Any:
        return self.env.emulator.client("secretsmanager")

    def current(self, secret: str) -> dict[str, Any]:
        return dict(self.secrets.get_secret_value(SecretId=secret))

    def put_current(self, values: Mapping[str, str], version: str) -> None:
        """Write values under one VersionId and make it AWSCURRENT, as a writer would."""
        for secret, value in values.items():
            self.secrets.put_secret_value(
                SecretId=secret, SecretString=value, ClientRequestToken=version, VersionStages=["AWSCURRENT"]
            )

    def put_tampered_chain(self) -> str:
        """Make current a new version whose chain-0 differs from its manifest's digest; its VersionId."""
        version = str(uuid.uuid4())
        manifest = json.loads(self.current(self.name)["SecretString"])
        manifest["version"] = version
        values = {
            part: self.current(part)["SecretString"] for part in self.env.config.set_named(self.name).part_secret_names
        }
        values[f"{self.name}/chain-0"] += "\n"
        self.put_current({**values, self.name: json.dumps(manifest)}, version)
        return version

    def env_vars(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """This process's environment pointed at the emulator, plus `extra`."""
        return {**os.environ, **self.env.emulator.env(), **(extra or {})}

    def aws_vars(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Only the variables that point boto3 at the emulator, plus `extra`."""
        return {**self.env.emulator.env(), **(extra or {})}


def rotated_set(emulator: Emulator, root: LocalCA, usage: str = "server") -> RotatedSet:
    """A uniquely named demo set, provisioned and rotated once."""
    data = copy.deepcopy(DEFAULT_CONFIG)
    prefix = uuid.uuid4().hex[:8]
    data["service_name"] = f"c{prefix}"
    data["sets"][0]["name"] = f"c{prefix}/web"
    data["sets"][0]["usage"] = usage
    data["sets"][0]["services"] = [{"cluster": f"c{prefix}", "service": "web"}]
    env = provision(emulator, load_config(data), root)
    name = env.config.sets[0].name
    RotationDriver(env).rotate(name)
    return RotatedSet(env, name)


@pytest.fixture
def rotated(emulator: Emulator, root_ca: LocalCA) -> RotatedSet:
    """A set of this test's own, free to tamper with."""
    return rotated_set(emulator, root_ca)


@pytest.fixture(scope="module")
def shared_set(emulator: Emulator, root_ca: LocalCA) -> RotatedSet:
    """One set for the tests of a module that only read it."""
    return rotated_set(emulator, root_ca)


@pytest.fixture
def fetch_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """Call certrotor-fetch's main() here, with an environment; returns (exit code, stderr).

    For runs that end before exec: the same code path as the console script,
    without paying an interpreter start per test."""

    def run(args: list[str], environ: Mapping[str, str]) -> tuple[int, str]:
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(args)
        return code, capsys.readouterr().err

    return run


@pytest.fixture
def run_fetch() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run certrotor-fetch with arguments and an environment; never raises on exit code."""

    def run(args: list[str], environ: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FETCH, *args], env=dict(environ), capture_output=True, text=True, timeout=60, check=False
        )

    return run


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

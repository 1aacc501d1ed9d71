"""Fixtures shared by every test layer.

`emulator` is one moto server on 127.0.0.1 for the whole session (real HTTP);
`make_env` provisions a fresh, uniquely named environment in it per test, so
tests never see each other's secrets.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from certrotor.config import load_config
from certrotor.local.ca import LocalCA
from certrotor.local.emulator import Emulator
from certrotor.local.provision import DEFAULT_CONFIG, LocalEnvironment, provision

# Quiet Powertools in tests: no EMF lines on stdout, no X-Ray.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture(scope="session")
def root_ca() -> LocalCA:
    return LocalCA.create_root()


@pytest.fixture
def make_env(emulator: Emulator, root_ca: LocalCA) -> Callable[..., LocalEnvironment]:
    """Provision an environment; set names and the rotator id get a unique
    prefix, and `sets` entries override fields of the default demo set."""

    def build(**set_overrides: Any) -> LocalEnvironment:
        data = copy.deepcopy(DEFAULT_CONFIG)
        prefix = uuid.uuid4().hex[:8]
        # Each environment is its own rotator: its own trust bundle.
        data["service_name"] = f"t{prefix}"
        data["sets"][0]["name"] = f"t{prefix}/web"
        data["sets"][0]["services"] = [{"cluster": f"c{prefix}", "service": "web"}]
        data["sets"][0].update(set_overrides)
        # One rotator per environment: its monitor lists only its own sets.
        data["service_name"] = f"t{prefix}"
        return provision(emulator, load_config(data), root_ca)

    return build

"""check_expiry over the fake secret store: each set's state from its
current manifest, one set's problem never hiding the others."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from certrotor.config import load_config
from certrotor.errors import RetryableError
from certrotor.layout import Manifest
from certrotor.layout.manifest import INITIAL_VALUE, PartRef
from certrotor.ports import CURRENT, SecretValue
from certrotor.services.expiry import SetExpiry, check_expiry
from tests.unit.rotation.fakes import CA_ARN, FakeSecrets

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def manifest(name: str, days: float) -> str:
    parts = (PartRef(f"{name}/key", "key", "0" * 64), PartRef(f"{name}/chain-0", "chain", "0" * 64))
    not_after = (NOW + dt.timedelta(days=days)).isoformat()
    return Manifest(name, "v", f"serial-{name}", NOW.isoformat(), not_after, "f" * 64, "EC_prime256v1", parts).to_json()


def config(*names: str) -> Any:
    return load_config({"ca": {"arn": CA_ARN}, "sets": [{"name": n, "dns_names": ["x.internal"]} for n in names]})


def test_every_set_gets_its_state_and_one_problem_hides_nothing() -> None:
    secrets = FakeSecrets()
    secrets.create_secret("tls/a", manifest("tls/a", 45))
    secrets.create_secret("tls/b", INITIAL_VALUE)
    secrets.create_secret("tls/c", '{"format": 9}')
    secrets.create_secret("tls/d", manifest("tls/d", -1.5))
    # A newer version not yet current does not count.
    secrets.put("tls/a", manifest("tls/a", 90), str(uuid.uuid4()))
    found = check_expiry(config("tls/a", "tls/b", "tls/c", "tls/d", "tls/e"), secrets, lambda: NOW)
    assert found == [
        SetExpiry("tls/a", 45.0, "serial-tls/a"),
        SetExpiry("tls/b", None, None, "not issued yet"),
        SetExpiry("tls/c", None, None, "manifest format 9 is not 1"),
        SetExpiry("tls/d", -1.5, "serial-tls/d"),
        SetExpiry("tls/e", None, None, "secret tls/e not found (ResourceNotFoundException)"),
    ]
    assert found[0].problem is None


def test_throttling_ends_the_run() -> None:
    class Throttled(FakeSecrets):
        def get(self, secret_id: str, version: str | None = None, stage: str | None = None) -> SecretValue:
            assert stage == CURRENT
            raise RetryableError("GetSecretValue: throttled")

    with pytest.raises(RetryableError):
        check_expiry(config("tls/a", "tls/b"), Throttled(), lambda: NOW)

"""The bad-input matrix's harness: one deployment per module (two sets, one
rotated, issuer policies, the loopback Function URL), a snapshot of
everything the emulator holds, and the checks every refused case must pass.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from certrotor.config import load_config
from certrotor.local.ca import LocalCA
from certrotor.local.driver import RotationDriver
from certrotor.local.emulator import ACCOUNT, Emulator
from certrotor.local.gateway import Identity, IssuerGateway
from certrotor.local.provision import DEFAULT_CONFIG, LocalEnvironment, provision

ORDERS_ROLE = "orders-task"
ORDERS_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ORDERS_ROLE}/task-1"
BILLING_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/billing-task/task-2"
STRANGER_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/stranger-task/task-9"
IDENTITIES = {
    "AKIAORDERS": Identity("orders-secret", ORDERS_ARN),
    "AKIABILLING": Identity("billing-secret", BILLING_ARN),
    "AKIASTRANGER": Identity("stranger-secret", STRANGER_ARN),
}


@dataclass(frozen=True)
class Deployment:
    """What the matrix runs against."""

    env: LocalEnvironment
    gateway: IssuerGateway
    good: str
    """A rotated set that is never changed."""
    spare: str
    """A rotated set whose current manifest cases replace."""
    key_lines: tuple[str, ...]
    """The base64 lines of both sets' private keys: never in any output."""

    @property
    def emulator(self) -> Emulator:
        return self.env.emulator


def _key_lines(emulator: Emulator, set_name: str) -> tuple[str, ...]:
    value = emulator.client("secretsmanager").get_secret_value(SecretId=f"{set_name}/key")["SecretString"]
    return tuple(line for line in value.splitlines() if line and not line.startswith("-----"))


@pytest.fixture(scope="module")
def deployment(emulator: Emulator, root_ca: LocalCA) -> Iterator[Deployment]:
    data = copy.deepcopy(DEFAULT_CONFIG)
    prefix = uuid.uuid4().hex[:8]
    base = data["sets"][0]
    good = {**base, "name": f"m{prefix}/good", "services": [{"cluster": f"m{prefix}", "service": "good"}]}
    spare = {**base, "name": f"m{prefix}/spare", "services": [{"cluster": f"m{prefix}", "service": "spare"}]}
    data["sets"] = [good, spare]
    data["issuer_policies"] = [
        {
            "principal": ORDERS_ROLE,
            "allowed_dns": ["orders.internal", "*.svc.internal"],
            "max_validity_days": 30,
            "rate_per_minute": 100_000,
            "sets": [good["name"], spare["name"]],
        },
        {
            "principal": "billing-task",
            "allowed_dns": ["billing.internal"],
            "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"],
            "max_validity_days": 7,
            "rate_per_minute": 100_000,
        },
    ]
    env = provision(emulator, load_config(data), root_ca)
    driver = RotationDriver(env)
    for name in (good["name"], spare["name"]):
        driver.rotate(name)
    lines = _key_lines(emulator, good["name"]) + _key_lines(emulator, spare["name"])
    with IssuerGateway(env, identities=IDENTITIES) as gateway:
        yield Deployment(env, gateway, good["name"], spare["name"], lines)


# --------------------------------------------------------------------------
# What the emulator holds


def aws_state(emulator: Emulator) -> dict[str, Any]:
    """Every secret version (stages, value digest), tag and rotation flag,
    every certificate the Private CAs issued or revoked, every DynamoDB item."""
    from moto.backends import get_backend

    secrets_backend = get_backend("secretsmanager")[ACCOUNT][emulator.region]
    secrets = {}
    for name, secret in list(secrets_backend.secrets.items()):
        versions = {
            version_id: (
                tuple(sorted(version.get("version_stages", []))),
                hashlib.sha256(str(version.get("secret_string")).encode()).hexdigest(),
            )
            for version_id, version in list(secret.versions.items())
        }
        tags = sorted((t["Key"], t["Value"]) for t in (secret.tags or []))
        secrets[name] = (versions, tags, bool(getattr(secret, "rotation_enabled", False)))
    pca_backend = get_backend("acm-pca")[ACCOUNT][emulator.region]
    authorities = {
        arn: (len(ca.issued_certificates), sorted(ca.revoked_certificates))
        for arn, ca in list(pca_backend.certificate_authorities.items())
    }
    dynamodb = emulator.client("dynamodb")
    tables = {}
    for table in dynamodb.list_tables()["TableNames"]:
        items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
        tables[table] = sorted(json.dumps(item, sort_keys=True) for item in items)
    return {"secrets": secrets, "authorities": authorities, "tables": tables}


def tree(path: Path) -> dict[str, int]:
    """Every file and directory under `path` (with its mode), or {} if absent."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.lstat().st_mode for p in sorted(path.rglob("*"))}


def assert_one_clear_line(output: str, expected: str, prefix: str = "") -> None:
    """Exactly one non-empty line, starting with `prefix`, matching `expected`."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {lines!r}"
    assert lines[0].startswith(prefix), lines[0]
    assert re.search(expected, lines[0]), f"{expected!r} not in {lines[0]!r}"
    assert "Traceback" not in output


def assert_no_key_bytes(deployment: Deployment, *outputs: str) -> None:
    for output in outputs:
        assert "PRIVATE KEY" not in output
        assert not any(line in output for line in deployment.key_lines)

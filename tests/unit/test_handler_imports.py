"""What a Lambda cold start imports: only what the handler uses.

Each module a handler's import pulls in is paid at every cold start
(README, "Benchmarks": `bench/cold_start.py`). No handler loads
cryptography's serialization package (its SSH key support; certrotor takes
Encoding and PublicFormat from where that package does), the local
emulator, the container client, the CLI or the CDK; the rotation and monitor
functions use botocore clients only, not boto3 (the issuer's idempotency
store, from Powertools, imports boto3)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization

from certrotor.pki import csr, policy
from certrotor.services import issuance

NO_HANDLER_IMPORTS = (
    "cryptography.hazmat.primitives.serialization",
    "bcrypt",
    "certrotor.local",
    "moto",
    "certrotor.client",
    "certrotor.cli",
    "aws_cdk",
)
BOTOCORE_ONLY = ("rotate", "monitor")

PROBE = """
import json, sys
import certrotor.handlers.{handler}
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(handler: str) -> set[str]:
    environ = {"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(handler=handler)],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("handler", ["rotate", "issuer", "monitor"])
def test_a_cold_start_imports_none_of_what_no_handler_uses(handler: str) -> None:
    modules = imported_by(handler)
    assert sorted(set(NO_HANDLER_IMPORTS) & modules) == []
    # (the probe can see: the handler's own modules are there)
    assert f"certrotor.handlers.{handler}" in modules
    assert "cryptography.x509" in modules
    if handler in BOTOCORE_ONLY:
        assert "botocore" in modules
        assert "boto3" not in modules


@pytest.mark.parametrize(
    ("ours", "public"),
    [
        (csr.Encoding, serialization.Encoding),
        (policy.Encoding, serialization.Encoding),
        (issuance.Encoding, serialization.Encoding),
        (issuance.PublicFormat, serialization.PublicFormat),
    ],
)
def test_the_encodings_are_the_serialization_packages_own(ours: object, public: object) -> None:
    assert ours is public

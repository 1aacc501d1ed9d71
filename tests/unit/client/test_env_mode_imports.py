"""What certrotor-fetch --from-env imports to start: only what it uses.

A container pays for every module at each start; env mode reads no AWS API,
prints no help and writes no PKCS#12 unless asked, so the SDKs, the
serialization package's SSH support (and bcrypt), tempfile, shutil and its
compression modules, the trust secret's parser, the secret reader and its
ports, the watch options' signal and shlex, dataclasses (with inspect:
the start's value types are certrotor.record records) and email.utils (with
socket and calendar: cryptography.x509 is imported through
certrotor.lazy_x509) stay unimported
(docs/CONTAINERS.md, "How it reaches AWS, and what a start costs")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from certrotor.pki import bundle, keys

from .conftest import SET_NAME, Material

V1 = "11111111-1111-4111-8111-111111111111"

# Not imported by an env-mode start (what importing each would add: see the module docstring).
NOT_IMPORTED = (
    "boto3",
    "botocore",
    "awscrt",
    "urllib3",
    "http.client",
    "ssl",
    "logging",
    "cryptography.hazmat.primitives.serialization",
    "cryptography.hazmat.primitives.serialization.ssh",
    "bcrypt",
    "tempfile",
    "shutil",
    "bz2",
    "lzma",
    "certrotor.config",
    "certrotor.services.trust",
    "certrotor.services.reader",
    "certrotor.ports",
    "certrotor.pki.handshake",
    "shlex",
    "signal",
    "dataclasses",
    "inspect",
    "email.utils",
    "socket",
    "calendar",
)

PROBE = """
import json, sys
from certrotor.client.start import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def injected(material: Material) -> dict[str, str]:
    layout = material.layout(V1)
    return {
        "CERTROTOR_MANIFEST": layout.manifest_value,
        "CERTROTOR_KEY": layout.parts[f"{SET_NAME}/key"],
        "CERTROTOR_CHAIN_0": layout.parts[f"{SET_NAME}/chain-0"],
        "CERTROTOR_CHAIN_1": layout.parts[f"{SET_NAME}/chain-1"],
    }


def start(arguments: list[str], material: Material) -> tuple[int, set[str]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CERTROTOR_"))} | injected(material)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *arguments], env=environ, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.stdout, result.stderr
    probe = json.loads(result.stdout.splitlines()[-1])
    return probe["code"], set(probe["modules"])


def test_an_env_mode_start_imports_only_what_it_uses(tmp_path: Path, material: Material) -> None:
    # When a container starts in env mode and writes its files
    code, modules = start(["--from-env", "--set", SET_NAME, "--dir", str(tmp_path / "tls")], material)
    # Then the set was verified and written, and none of those modules was imported
    assert code == 0
    assert (tmp_path / "tls" / "key.pem").read_text() == material.key_pem
    assert sorted(set(NOT_IMPORTED) & modules) == []
    # (the probe can see: the verification's own modules are there)
    assert {"cryptography.x509", "certrotor.services.verify", "certrotor.client.injected"} <= modules


def test_pkcs12_still_loads_the_serialization_package_when_asked(tmp_path: Path, material: Material) -> None:
    # When env mode is asked for cert.p12
    code, modules = start(["--from-env", "--set", SET_NAME, "--dir", str(tmp_path / "tls"), "--pkcs12"], material)
    # Then the package is imported for it, and the file is written
    assert code == 0
    assert "cryptography.hazmat.primitives.serialization.pkcs12" in modules
    assert (tmp_path / "tls" / "cert.p12").is_file()


@pytest.mark.parametrize(
    ("ours", "public"),
    [
        (keys.load_pem_private_key, serialization.load_pem_private_key),
        (keys.Encoding, serialization.Encoding),
        (keys.PrivateFormat, serialization.PrivateFormat),
        (keys.PublicFormat, serialization.PublicFormat),
        (keys.NoEncryption, serialization.NoEncryption),
        (bundle.Encoding, serialization.Encoding),
    ],
)
def test_the_key_and_certificate_functions_are_the_serialization_packages_own(ours: object, public: object) -> None:
    # pki imports them from where the package does, to skip the package's SSH import;
    # they must stay the very same objects, whatever a cryptography upgrade moves
    assert ours is public

"""What the boundaries promise beyond refusing: the deadline bounds the
wait, key material stays out of logs at DEBUG, one bad set never hides the
others, revocations keep the CA and the ledger in step, and files are
written all or nothing."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certrotor.aws.ledger import Ledger
from certrotor.client.entrypoint import main as fetch_main
from certrotor.client.files import write_material
from certrotor.errors import AwsError, CertrotorError
from certrotor.local.driver import LambdaContext, RotationDriver
from certrotor.operator import RevocationRefused, revoke
from certrotor.pki.bundle import parse_bundle

from .conftest import Deployment, assert_no_key_bytes


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_the_deadline_bounds_a_fetch_from_an_endpoint_that_never_answers(
    deployment: Deployment, silent_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given an endpoint that accepts and never answers (each call could wait 10 s)
    for name, value in {**deployment.emulator.env(), "AWS_ENDPOINT_URL": silent_endpoint}.items():
        monkeypatch.setenv(name, value)
    # When certrotor-fetch runs with a 2-second deadline
    started = time.monotonic()
    code = fetch_main(["--set", deployment.good, "--dir", str(tmp_path / "out"), "--deadline", "2"])
    elapsed = time.monotonic() - started
    # Then it gives up with exit 3 once the deadline passes, not a read timeout later
    assert code == 3
    assert elapsed < 2 + 1.5, elapsed
    assert not (tmp_path / "out").exists()


@pytest.fixture
def debug_logs() -> Iterator[list[str]]:
    """Every record any logger emits, with the root logger at DEBUG."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(f"{record.name} {record.getMessage()}")

    root = logging.getLogger()
    handler, level = Keep(level=logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(level)


def test_no_key_material_reaches_the_logs_of_a_rotation_and_a_fetch_at_debug(
    deployment: Deployment,
    debug_logs: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # Given the root logger at DEBUG (a Lambda application log level of DEBUG)
    # When a real rotation runs through the handler, and a container fetches
    # the result, with awscrt's signer and again with botocore (which a shared
    # config file selects)
    RotationDriver(deployment.env).rotate(deployment.spare)
    for name, value in deployment.emulator.env().items():
        monkeypatch.setenv(name, value)
    assert fetch_main(["--set", deployment.spare, "--dir", str(tmp_path / "out")]) == 0
    (tmp_path / "aws-config").write_text("[default]\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    assert fetch_main(["--set", deployment.spare, "--dir", str(tmp_path / "botocore")]) == 0
    key = (tmp_path / "out" / "key.pem").read_text()
    assert (tmp_path / "botocore" / "key.pem").read_text() == key
    # Then the logs (botocore's among them) and the output hold neither the new key nor any other
    captured = capsys.readouterr()
    text = "\n".join([*debug_logs, captured.out, captured.err])
    assert any(record.startswith("botocore") for record in debug_logs)
    key_lines = [line for line in key.splitlines() if line and not line.startswith("-----")]
    assert not any(line in text for line in key_lines)
    assert_no_key_bytes(deployment, text)


def test_the_monitor_reports_every_set_when_one_manifest_is_poison(deployment: Deployment) -> None:
    from certrotor.handlers.monitor import lambda_handler

    # Given one set whose current manifest is 64,000 characters of nesting
    secrets = deployment.emulator.client("secretsmanager")
    original = secrets.get_secret_value(SecretId=deployment.spare)["VersionId"]
    secrets.put_secret_value(
        SecretId=deployment.spare, SecretString="[" * 32_000 + "]" * 32_000, VersionStages=["AWSCURRENT"]
    )
    try:
        # When the monitor runs
        with deployment.emulator.activated(deployment.env.lambda_env()):
            result = lambda_handler({}, LambdaContext(function_name="certrotor-monitor"))
    finally:
        poison = secrets.get_secret_value(SecretId=deployment.spare)["VersionId"]
        secrets.update_secret_version_stage(
            SecretId=deployment.spare, VersionStage="AWSCURRENT", MoveToVersionId=original, RemoveFromVersionId=poison
        )
    # Then the healthy set still gets its figure, and the poisoned one is reported without one
    states = {s["name"]: s for s in result["sets"]}
    assert states[deployment.good]["days_to_expiry"] > 0
    assert states[deployment.spare]["days_to_expiry"] is None


# -- revocation ---------------------------------------------------------------


class FailingCA:
    """A CA whose RevokeCertificate fails."""

    ca_arn: str

    def __init__(self, ca_arn: str) -> None:
        self.ca_arn = ca_arn

    def revoke(self, serial: str, reason: str) -> bool:
        raise AwsError("RevokeCertificate: InvalidStateException")


class RecordingCA(FailingCA):
    def __init__(self, ca_arn: str) -> None:
        super().__init__(ca_arn)
        self.revoked: list[str] = []

    def revoke(self, serial: str, reason: str) -> bool:
        self.revoked.append(serial)
        return True


class LedgerThatCannotConfirm(Ledger):
    def mark_revoked(self, ca_arn: str, serial: str, reason: str, at: dt.datetime) -> None:
        raise AwsError("UpdateItem ledger revoke: ProvisionedThroughputExceededException")


def _item(deployment: Deployment, serial: str) -> dict[str, Any] | None:
    found = deployment.emulator.client("dynamodb").get_item(
        TableName=deployment.gateway.tables.ledger,
        Key={"pk": {"S": f"CA#{deployment.env.ca_arn}"}, "sk": {"S": f"REVOKED#{serial}"}},
        ConsistentRead=True,
    )
    return found.get("Item")


def _ledger(deployment: Deployment, kind: type[Ledger] = Ledger) -> Ledger:
    return kind(deployment.gateway.tables.ledger, deployment.emulator.client("dynamodb"))


NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_a_serial_the_ledger_does_not_list_is_not_revoked_without_force(deployment: Deployment) -> None:
    ca = RecordingCA(deployment.env.ca_arn)
    with pytest.raises(RevocationRefused, match="not in the ledger"):
        revoke(ca, _ledger(deployment), "deadbeef", "KEY_COMPROMISE", NOW)
    assert ca.revoked == [] and _item(deployment, "deadbeef") is None


def test_a_forced_revocation_of_a_rotation_certificate_is_recorded(deployment: Deployment) -> None:
    # Given the serial of a certificate a rotation issued (not in the ledger)
    secrets = deployment.emulator.client("secretsmanager")
    serial = json.loads(secrets.get_secret_value(SecretId=deployment.good)["SecretString"])["serial"]
    ca = RecordingCA(deployment.env.ca_arn)
    # When it is revoked with force
    done = revoke(ca, _ledger(deployment), serial, "SUPERSEDED", NOW, force=True)
    # Then the CA was asked and the ledger says revoked
    assert done.newly and not done.in_ledger and len(ca.revoked) == 1
    item = _item(deployment, serial)
    assert item is not None and item["revocation_state"]["S"] == "revoked"


def test_a_revocation_the_ca_refuses_leaves_no_record(deployment: Deployment) -> None:
    with pytest.raises(AwsError):
        revoke(FailingCA(deployment.env.ca_arn), _ledger(deployment), "abc123", "UNSPECIFIED", NOW, force=True)
    assert _item(deployment, "abc123") is None


def test_a_revocation_the_ledger_cannot_confirm_stays_on_record_and_a_rerun_confirms_it(
    deployment: Deployment,
) -> None:
    # Given a revocation the CA makes but the ledger cannot confirm
    ca = RecordingCA(deployment.env.ca_arn)
    with pytest.raises(CertrotorError, match="run the same command again"):
        revoke(ca, _ledger(deployment, LedgerThatCannotConfirm), "abc124", "KEY_COMPROMISE", NOW, force=True)
    # Then the intent is on record: the CA and the ledger do not disagree about what was asked
    item = _item(deployment, "abc124")
    assert ca.revoked and item is not None and item["revocation_state"]["S"] == "requested"
    # When the same command runs again
    revoke(ca, _ledger(deployment), "abc124", "KEY_COMPROMISE", NOW, force=True)
    # Then it is confirmed
    item = _item(deployment, "abc124")
    assert item is not None and item["revocation_state"]["S"] == "revoked"


# -- files ----------------------------------------------------------------------


def test_a_failed_write_puts_the_previous_files_back(deployment: Deployment, tmp_path: Path) -> None:
    # Given a directory holding a complete earlier set of files
    secrets = deployment.emulator.client("secretsmanager")
    key = secrets.get_secret_value(SecretId=f"{deployment.good}/key")["SecretString"]
    chain = "".join(secrets.get_secret_value(SecretId=f"{deployment.good}/chain-{i}")["SecretString"] for i in range(2))
    manifest = json.loads(secrets.get_secret_value(SecretId=deployment.good)["SecretString"])
    bundle = parse_bundle(manifest["certificate"] + chain)
    folder = tmp_path / "tls"
    write_material(folder, key, bundle, combined=True)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    # When the next write fails at the last rename (key.pem cannot be replaced)
    os.chmod(folder, 0o700)
    original_replace = os.replace

    def fail_on_key(source: Any, target: Any) -> None:
        if str(target).endswith("/key.pem") and ".staging-" in str(source):
            raise PermissionError(13, "Permission denied")
        original_replace(source, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", fail_on_key)
        with pytest.raises(Exception, match="cannot write"):
            write_material(folder, key, bundle, combined=True, pkcs12=True)
    # Then every file holds what it held before, and nothing new is there
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before

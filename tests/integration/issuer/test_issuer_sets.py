"""Issue-now and status of managed sets, the ledger and revocation, and the
command-line tools (request, issue-now) against the loopback Function URL."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from certrotor import cli
from certrotor.aws.ledger import Ledger
from certrotor.aws.secrets import SecretStore
from certrotor.client.request import FunctionUrlClient, IssuerHttpError, request_certificate, set_path
from certrotor.local.driver import RotationDriver
from certrotor.local.gateway import IssuerGateway
from certrotor.local.provision import LocalEnvironment
from certrotor.local.trigger import LocalRotationTrigger
from certrotor.ports import pending_version
from certrotor.services.rotation import TAG_REDEPLOYED

from .conftest import IDENTITIES

CERTROTOR = str(Path(sys.executable).with_name("certrotor"))


def set_name(env: LocalEnvironment) -> str:
    return env.config.sets[0].name


def issued(gateway: IssuerGateway) -> int:
    return gateway.emulator.issued_certificates(gateway.environment.ca_arn)


# -- issue now ----------------------------------------------------------------------


def test_issue_now_makes_a_new_version_current_through_the_rotation_path(
    gateway: IssuerGateway, orders: FunctionUrlClient
) -> None:
    # Given a managed set with no certificate yet
    name = set_name(gateway.environment)
    # When the orders task asks to issue it now, and the rotation finishes
    started = orders.call("POST", f"/sets/{set_path(name)}/issue")
    gateway.trigger.wait(60)
    status = orders.call("GET", f"/sets/{set_path(name)}").body
    # Then 202 named the version, which is now current with a certificate,
    # written by the rotation function's four steps (it tagged its redeploy)
    token = started.body["version"]
    assert started.status == 202
    assert status["version"] == token and status["serial"] and not status["rotation_in_progress"]
    info = SecretStore(gateway.emulator.client("secretsmanager")).describe(name)
    assert info.tags.get(TAG_REDEPLOYED) == token
    assert issued(gateway) == 1


def test_issue_now_while_rotating_names_the_running_version_and_issues_once(
    issuer_env: LocalEnvironment,
) -> None:
    # Given a rotation that is held in its first step
    release = threading.Event()
    driver = RotationDriver(issuer_env)
    real = driver.invoke

    def held(name: str, step: str, token: str) -> Any:
        release.wait(30)
        return real(name, step, token)

    driver.invoke = held  # type: ignore[method-assign]
    trigger = LocalRotationTrigger(issuer_env, driver)
    with IssuerGateway(issuer_env, identities=IDENTITIES, trigger=trigger) as gateway:
        client = FunctionUrlClient(gateway.url, _credentials("AKIAORDERS"), region="us-east-1")
        name = set_name(issuer_env)
        first = client.call("POST", f"/sets/{set_path(name)}/issue").body["version"]
        # When issue-now is retried while it runs
        with pytest.raises(IssuerHttpError) as caught:
            client.call("POST", f"/sets/{set_path(name)}/issue")
        during = client.call("GET", f"/sets/{set_path(name)}").body
        release.set()
        trigger.wait(60)
        # Then the retry was told 409 with the same version, and one certificate was issued
        assert (caught.value.status, caught.value.error) == (409, "rotation_in_progress")
        assert during["rotation_in_progress"] and during["pending_version"] == first
        assert trigger.started == [first]
        assert issued(gateway) == 1


def test_a_set_outside_the_policy_is_forbidden(
    client_as: Callable[..., FunctionUrlClient], gateway: IssuerGateway
) -> None:
    # Given billing's policy names no sets
    billing = client_as("AKIABILLING")
    # When billing asks to issue the orders set now
    with pytest.raises(IssuerHttpError) as caught:
        billing.call("POST", f"/sets/{set_path(set_name(gateway.environment))}/issue")
    # Then 403 set_not_allowed and no rotation started
    assert (caught.value.status, caught.value.error) == (403, "set_not_allowed")
    assert gateway.trigger.started == []


def test_an_unknown_set_is_not_found(make_issuer_env: Callable[..., LocalEnvironment]) -> None:
    # Given a policy allowing every set name
    from .conftest import orders_policy

    env = make_issuer_env(policies=[orders_policy("*")])
    with IssuerGateway(env, identities=IDENTITIES) as gateway:
        client = FunctionUrlClient(gateway.url, _credentials("AKIAORDERS"), region="us-east-1")
        # When a set that is not managed is asked for
        with pytest.raises(IssuerHttpError) as caught:
            client.call("GET", f"/sets/{set_path('nope/web')}")
        # Then 404 unknown_set
        assert (caught.value.status, caught.value.error) == (404, "unknown_set")


# -- ledger and revocation ----------------------------------------------------------


def test_the_ledger_counts_exactly_what_was_issued(gateway: IssuerGateway, orders: FunctionUrlClient) -> None:
    # Given three certificates requested
    results = [request_certificate(orders, [f"l{i}.svc.internal"]) for i in range(3)]
    # When the ledger is read
    book = Ledger(gateway.tables.ledger, gateway.emulator.client("dynamodb"))
    entries = book.entries(gateway.environment.ca_arn)
    # Then its count, its rows and Private CA agree, with who and which names
    assert book.count(gateway.environment.ca_arn) == len(entries) == issued(gateway) == 3
    assert {e.serial for e in entries} == {r.serial for r in results}
    assert {e.names for e in entries} == {(f"l{i}.svc.internal",) for i in range(3)}
    assert all(e.principal.endswith(":role/orders-task") and e.request_id for e in entries)


def test_revoke_calls_private_ca_and_records_it(gateway: IssuerGateway, orders: FunctionUrlClient) -> None:
    # Given an issued certificate
    serial = request_certificate(orders, ["orders.internal"]).serial
    # When the operator revokes it by serial
    code = cli.main(
        [
            "revoke",
            "--serial",
            serial.upper(),
            "--reason",
            "KEY_COMPROMISE",
            "--table",
            gateway.tables.ledger,
            "--ca-arn",
            gateway.environment.ca_arn,
        ]
    )
    # Then Private CA has it revoked and the ledger says when and why
    from moto.backends import get_backend

    authority = get_backend("acm-pca")["123456789012"]["us-east-1"].certificate_authorities[gateway.environment.ca_arn]
    book = Ledger(gateway.tables.ledger, gateway.emulator.client("dynamodb"))
    entry = book.get(gateway.environment.ca_arn, serial)
    assert code == 0
    assert any(s.replace(":", "").lstrip("0") == serial for s in authority.revoked_certificates)
    assert entry is not None and entry.revocation_reason == "KEY_COMPROMISE" and entry.revoked_at


def test_a_rate_slot_is_refused_once_the_minute_is_full(gateway: IssuerGateway) -> None:
    # Given a principal allowed two requests a minute
    book = Ledger(gateway.tables.ledger, gateway.emulator.client("dynamodb"))
    now = dt.datetime(2030, 1, 1, 12, 0, 30, tzinfo=dt.UTC)
    # When it takes three slots in one minute, and one in the next
    taken = [book.take_rate_slot("role/x", 2, now) for _ in range(3)]
    next_minute = book.take_rate_slot("role/x", 2, now + dt.timedelta(minutes=1))
    # Then the third is refused and the next minute starts afresh
    assert taken == [True, True, False]
    assert next_minute is True


# -- command line ----------------------------------------------------------------------


def _cli_env(gateway: IssuerGateway, access_key: str = "AKIAORDERS") -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": IDENTITIES[access_key].secret_key,
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# A healthy issuer answers within seconds; a broken one should fail the test
# soon rather than after the client's default minute of retries.
DEADLINE = ["--deadline", "15"]


def test_certrotor_request_writes_the_files_then_execs_the_command(gateway: IssuerGateway, tmp_path: Path) -> None:
    # Given a container's output directory and a command to become
    out = tmp_path / "tls"
    command = [
        sys.executable,
        "-c",
        "import sys, os; print('exec', os.path.exists(sys.argv[1]))",
        str(out / "cert.pem"),
    ]
    # When `certrotor request` runs
    result = subprocess.run(
        [
            CERTROTOR,
            "request",
            "--url",
            gateway.url,
            "--name",
            "api.svc.internal",
            "--out",
            str(out),
            *DEADLINE,
            "--",
            *command,
        ],
        env=_cli_env(gateway),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then the files are there (key 0400 in a 0700 directory) and the command ran in its place
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exec True"
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o400
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert issued(gateway) == 1


def test_certrotor_request_reports_a_refusal_and_runs_nothing(gateway: IssuerGateway, tmp_path: Path) -> None:
    # Given a name the policy does not allow
    out = tmp_path / "tls"
    # When `certrotor request` runs
    result = subprocess.run(
        [
            CERTROTOR,
            "request",
            "--url",
            gateway.url,
            "--name",
            "evil.example",
            "--out",
            str(out),
            *DEADLINE,
            "--",
            "echo",
            "ran",
        ],
        env=_cli_env(gateway),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it exits 2 naming the rule, writes nothing, runs nothing
    assert result.returncode == 2
    assert "name_not_allowed" in result.stderr
    assert "ran" not in result.stdout
    assert not out.exists()


def test_certrotor_issue_now_shows_progress_until_the_version_is_current(gateway: IssuerGateway) -> None:
    # Given the managed set
    name = set_name(gateway.environment)
    # When the operator runs `certrotor issue-now`
    result = subprocess.run(
        [CERTROTOR, "issue-now", name, "--url", gateway.url, "--timeout", "30"],
        env=_cli_env(gateway),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it printed the start, and ended once the new version was current
    info = SecretStore(gateway.emulator.client("secretsmanager")).describe(name)
    current = info.version_with("AWSCURRENT")
    assert result.returncode == 0, result.stderr
    assert f"rotation started, version {current}" in result.stdout
    assert f"version {current} is current" in result.stdout.splitlines()[-1]
    assert pending_version(dict(info.versions)) is None


def _credentials(access_key: str) -> Any:
    from botocore.credentials import Credentials

    return Credentials(access_key, IDENTITIES[access_key].secret_key)

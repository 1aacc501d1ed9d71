"""Superseded certificates are revoked once, after delivery and the grace,
never the current one: the real adapters over the emulator, a moved clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from certrotor.aws.pca import PrivateCA
from certrotor.aws.secrets import SecretStore
from certrotor.handlers.monitor import lambda_handler
from certrotor.layout import Manifest
from certrotor.local.driver import LambdaContext, RotationDriver
from certrotor.local.provision import LocalEnvironment
from certrotor.pki.bundle import colon_serial
from certrotor.services.rotation import TAG_REDEPLOYED
from certrotor.services.supersede import TAG_SUPERSEDED, SupersededRecord, SupersededRevoker

GRACE = dt.timedelta(hours=24)


class CountingCA:
    """The real Private CA adapter, counting revocations (serial, reason)."""

    def __init__(self, real: PrivateCA) -> None:
        self.real = real
        self.ca_arn = real.ca_arn
        self.revoked: list[tuple[str, str]] = []

    def publishes_revocation(self) -> bool:
        return self.real.publishes_revocation()

    def revoke(self, certificate_serial: str, reason: str = "UNSPECIFIED") -> bool:
        newly = self.real.revoke(certificate_serial, reason)
        self.revoked.append((certificate_serial, reason))
        return newly


class Clock:
    def __init__(self) -> None:
        self.at = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.at


def serial_of(env: LocalEnvironment, name: str, stage: str = "AWSCURRENT") -> str:
    value = env.emulator.client("secretsmanager").get_secret_value(SecretId=name, VersionStage=stage)
    return Manifest.from_json(value["SecretString"]).serial


@pytest.fixture
def rotated_twice(make_env: Callable[..., LocalEnvironment]) -> tuple[LocalEnvironment, str, str]:
    env = make_env()
    name = env.config.sets[0].name
    driver = RotationDriver(env)
    driver.rotate(name)
    first = serial_of(env, name)
    driver.rotate(name)
    return env, name, first


def revoker(env: LocalEnvironment, clock: Clock, ca: CountingCA) -> SupersededRevoker:
    return SupersededRevoker(
        env.config, SecretStore(env.emulator.client("secretsmanager")), lambda arn: ca, now=clock, sleep=lambda s: None
    )


def tag(env: LocalEnvironment, name: str, key: str) -> str | None:
    tags = env.emulator.client("secretsmanager").describe_secret(SecretId=name).get("Tags", [])
    return next((t["Value"] for t in tags if t["Key"] == key), None)


def test_the_superseded_certificate_is_revoked_exactly_once_after_its_grace(rotated_twice):
    env, name, first = rotated_twice
    clock, ca = Clock(), CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    # When the revoker runs: at delivery, just before the grace ends, after it, and again
    started = revoker(env, clock, ca).check(env.config.sets[0])
    clock.at += GRACE - dt.timedelta(minutes=1)
    early = revoker(env, clock, ca).check(env.config.sets[0])
    clock.at += dt.timedelta(minutes=2)
    due = revoker(env, clock, ca).check(env.config.sets[0])
    again = revoker(env, clock, ca).check(env.config.sets[0])
    # Then only the run after the grace revoked, once, the first certificate, as superseded
    assert (started.action, started.serial) == ("grace started", first)
    assert early.action.startswith("in grace")
    assert (due.action, due.serial) == ("revoked", first)
    assert again.action == "already revoked"
    assert ca.revoked == [(colon_serial(first), "SUPERSEDED")]
    record = SupersededRecord.parse(tag(env, name, TAG_SUPERSEDED))
    assert record is not None and (record.serial, record.state, record.ca_arn) == (first, "revoked", env.ca_arn)


def test_nothing_is_revoked_before_the_current_version_is_delivered(rotated_twice):
    env, name, _ = rotated_twice
    # Given the current version's redeploy is not recorded (finishSecret stopped before it)
    env.emulator.client("secretsmanager").tag_resource(SecretId=name, Tags=[{"Key": TAG_REDEPLOYED, "Value": "0" * 36}])
    clock, ca = Clock(), CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    # When the revoker runs now and long after any grace
    now = revoker(env, clock, ca).check(env.config.sets[0])
    clock.at += 10 * GRACE
    later = revoker(env, clock, ca).check(env.config.sets[0])
    # Then it waits, records nothing and revokes nothing
    assert now.action.startswith("waiting") and later.action.startswith("waiting")
    assert tag(env, name, TAG_SUPERSEDED) is None
    assert ca.revoked == []


def test_the_current_certificate_is_never_revoked(rotated_twice):
    env, name, _ = rotated_twice
    current = serial_of(env, name)
    # Given a record that names the current serial as superseded
    record = SupersededRecord(current, "delivered", dt.datetime.now(dt.UTC) - 10 * GRACE, env.ca_arn)
    env.emulator.client("secretsmanager").tag_resource(
        SecretId=name, Tags=[{"Key": TAG_SUPERSEDED, "Value": record.tag_value()}]
    )
    clock, ca = Clock(), CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    # When the revoker runs over every set
    outcomes = revoker(env, clock, ca).run()
    # Then it refuses, and revokes nothing
    assert outcomes[0].action.startswith("failed") and "current serial" in outcomes[0].action
    assert ca.revoked == []


def test_a_set_rotated_once_has_nothing_superseded(make_env: Callable[..., LocalEnvironment]):
    env = make_env()
    RotationDriver(env).rotate(env.config.sets[0].name)
    ca = CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    outcome = revoker(env, Clock(), ca).check(env.config.sets[0])
    assert outcome.action == "nothing superseded yet"
    assert ca.revoked == []


def run_monitor(env: LocalEnvironment) -> dict[str, Any]:
    with env.emulator.activated(env.lambda_env()):
        return dict(lambda_handler({}, LambdaContext(function_name="certrotor-monitor")))


def test_the_monitor_does_not_revoke_for_a_ca_without_crl_or_ocsp_and_says_why(rotated_twice):
    env, name, _ = rotated_twice
    result = run_monitor(env)
    assert result["superseded"]["enabled"] is False
    assert "publishes no CRL and no OCSP" in result["superseded"]["reason"]
    assert tag(env, name, TAG_SUPERSEDED) is None


def test_the_monitor_starts_the_grace_when_the_ca_publishes_a_crl(rotated_twice):
    env, name, first = rotated_twice
    env.emulator.client("s3").create_bucket(Bucket=f"crl-{name.split('/')[0]}")
    env.emulator.client("acm-pca").update_certificate_authority(
        CertificateAuthorityArn=env.ca_arn,
        RevocationConfiguration={
            "CrlConfiguration": {"Enabled": True, "ExpirationInDays": 7, "S3BucketName": f"crl-{name.split('/')[0]}"}
        },
    )
    result = run_monitor(env)
    assert result["superseded"]["enabled"] is True
    assert result["superseded"]["sets"] == [{"name": name, "action": "grace started", "serial": first}]


def test_revoke_superseded_on_revokes_even_without_crl(rotated_twice):
    env, _, _ = rotated_twice
    config = replace(env.config, ca=replace(env.config.ca, revoke_superseded="on"))
    env = replace(env, config=config)
    result = run_monitor(env)
    assert result["superseded"]["enabled"] is True
    assert result["superseded"]["sets"][0]["action"] == "grace started"


def test_certrotor_status_shows_the_superseded_certificate_and_its_state(rotated_twice):
    from certrotor.fleet.inventory import read_status

    env, name, first = rotated_twice
    ca = CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    clock = Clock()
    revoker(env, clock, ca).check(env.config.sets[0])
    client = env.emulator.client("secretsmanager")
    waiting = read_status(client, name, clock.at, 7)
    clock.at += GRACE + dt.timedelta(minutes=1)
    revoker(env, clock, ca).check(env.config.sets[0])
    done = read_status(client, name, clock.at, 7)
    assert waiting.superseded == f"{first} delivered"
    assert done.superseded == f"{first} revoked"
    assert done.issuer_ca == env.ca_arn

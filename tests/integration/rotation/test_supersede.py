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
from certrotor.layout.manifest import MAX_SUPERSEDED, SupersededRef
from certrotor.local.ca import LocalCA
from certrotor.local.driver import LambdaContext, RotationDriver
from certrotor.local.provision import LocalEnvironment, create_private_ca
from certrotor.pki.bundle import colon_serial
from certrotor.record import replace as replace_record
from certrotor.services.rotation import TAG_CA, TAG_REDEPLOYED
from certrotor.services.supersede import SupersededRecord, SupersededRevoker, slot_tag, superseded_records

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


def records(env: LocalEnvironment, name: str) -> list[SupersededRecord]:
    tags = env.emulator.client("secretsmanager").describe_secret(SecretId=name).get("Tags", [])
    return superseded_records({t["Key"]: t["Value"] for t in tags})


def test_the_superseded_certificate_is_revoked_exactly_once_after_its_grace(rotated_twice):
    env, name, first = rotated_twice
    clock, ca = Clock(), CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    # When the revoker runs: at delivery, just before the grace ends, after it, and again
    (started,) = revoker(env, clock, ca).check(env.config.sets[0])
    clock.at += GRACE - dt.timedelta(minutes=1)
    (early,) = revoker(env, clock, ca).check(env.config.sets[0])
    clock.at += dt.timedelta(minutes=2)
    (due,) = revoker(env, clock, ca).check(env.config.sets[0])
    (again,) = revoker(env, clock, ca).check(env.config.sets[0])
    # Then only the run after the grace revoked, once, the first certificate, as superseded
    assert (started.action, started.serial) == ("grace started", first)
    assert early.action.startswith("in grace")
    assert (due.action, due.serial) == ("revoked", first)
    assert again.action == "already revoked"
    assert ca.revoked == [(colon_serial(first), "SUPERSEDED")]
    (record,) = records(env, name)
    assert (record.serial, record.state, record.ca_arn) == (first, "revoked", env.ca_arn)


def test_nothing_is_revoked_before_the_current_version_is_delivered(rotated_twice):
    env, name, _ = rotated_twice
    # Given the current version's redeploy is not recorded (finishSecret stopped before it)
    env.emulator.client("secretsmanager").tag_resource(SecretId=name, Tags=[{"Key": TAG_REDEPLOYED, "Value": "0" * 36}])
    clock, ca = Clock(), CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    # When the revoker runs now and long after any grace
    (now,) = revoker(env, clock, ca).check(env.config.sets[0])
    clock.at += 10 * GRACE
    (later,) = revoker(env, clock, ca).check(env.config.sets[0])
    # Then it waits, records nothing and revokes nothing
    assert now.action.startswith("waiting") and later.action.startswith("waiting")
    assert records(env, name) == []
    assert ca.revoked == []


def test_the_current_certificate_is_never_revoked(rotated_twice):
    env, name, _ = rotated_twice
    current = serial_of(env, name)
    client = env.emulator.client("secretsmanager")
    # Given a current manifest whose superseded list names its own serial
    value = client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    manifest = Manifest.from_json(value["SecretString"])
    bad = replace_record(manifest, superseded=(*manifest.superseded, SupersededRef(current, env.ca_arn, 0)))
    client.put_secret_value(SecretId=name, SecretString=bad.to_json(), VersionStages=["AWSCURRENT"])
    clock, ca = Clock(), CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    # When the revoker runs over every set, long after any grace
    clock.at += 10 * GRACE
    outcomes = revoker(env, clock, ca).run()
    # Then it refuses, and revokes nothing
    assert outcomes[0].action.startswith("failed") and "current serial" in outcomes[0].action
    assert ca.revoked == []


def test_a_record_naming_the_current_serial_in_a_slot_is_refused(rotated_twice):
    env, name, _ = rotated_twice
    current = serial_of(env, name)
    manifest = Manifest.from_json(env.emulator.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
    # Given the slot of the superseded certificate holds a stale record naming the current serial
    stale = SupersededRecord(current, "delivered", dt.datetime.now(dt.UTC) - 10 * GRACE, env.ca_arn)
    key = slot_tag(manifest.superseded[0].generation)
    env.emulator.client("secretsmanager").tag_resource(SecretId=name, Tags=[{"Key": key, "Value": stale.tag_value()}])
    ca = CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    outcomes = revoker(env, Clock(), ca).run()
    assert outcomes[0].action.startswith("failed") and "current serial" in outcomes[0].action
    assert ca.revoked == []


def test_a_set_rotated_once_has_nothing_superseded(make_env: Callable[..., LocalEnvironment]):
    env = make_env()
    RotationDriver(env).rotate(env.config.sets[0].name)
    ca = CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    (outcome,) = revoker(env, Clock(), ca).check(env.config.sets[0])
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
    assert records(env, name) == []


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


def test_every_certificate_superseded_between_two_runs_is_revoked_exactly_once_after_its_grace(
    make_env: Callable[..., LocalEnvironment],
):
    env = make_env()
    name = env.config.sets[0].name
    driver = RotationDriver(env)
    # Given three rotations and no run in between: the first and the middle certificates are superseded
    driver.rotate(name)
    first = serial_of(env, name)
    driver.rotate(name)
    middle = serial_of(env, name)
    driver.rotate(name)
    current = serial_of(env, name)
    clock, ca = Clock(), CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    # When the revoker runs at delivery, just before the grace ends, after it, and again
    started = revoker(env, clock, ca).check(env.config.sets[0])
    clock.at += GRACE - dt.timedelta(minutes=1)
    early = revoker(env, clock, ca).check(env.config.sets[0])
    clock.at += dt.timedelta(minutes=2)
    due = revoker(env, clock, ca).check(env.config.sets[0])
    again = revoker(env, clock, ca).check(env.config.sets[0])
    # Then both got their grace at the first run and were revoked once after it, oldest first; never the current
    assert [(o.action, o.serial) for o in started] == [("grace started", first), ("grace started", middle)]
    assert all(o.action.startswith("in grace") for o in early)
    assert [(o.action, o.serial) for o in due] == [("revoked", first), ("revoked", middle)]
    assert [o.action for o in again] == ["already revoked", "already revoked"]
    assert ca.revoked == [(colon_serial(first), "SUPERSEDED"), (colon_serial(middle), "SUPERSEDED")]
    assert colon_serial(current) not in {serial for serial, _ in ca.revoked}
    assert {(r.serial, r.state) for r in records(env, name)} == {(first, "revoked"), (middle, "revoked")}


def test_a_rotation_during_the_grace_keeps_the_earlier_record_and_starts_its_own(
    make_env: Callable[..., LocalEnvironment],
):
    env = make_env()
    name = env.config.sets[0].name
    driver = RotationDriver(env)
    driver.rotate(name)
    first = serial_of(env, name)
    driver.rotate(name)
    middle = serial_of(env, name)
    clock, ca = Clock(), CountingCA(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")))
    # Given the first certificate's grace started, then the set rotated again halfway through it
    revoker(env, clock, ca).check(env.config.sets[0])
    clock.at += GRACE / 2
    driver.rotate(name)
    second = revoker(env, clock, ca).check(env.config.sets[0])
    # When the first grace ends, and later the middle one's
    clock.at += GRACE / 2 + dt.timedelta(minutes=1)
    at_first = revoker(env, clock, ca).check(env.config.sets[0])
    clock.at += GRACE / 2
    at_middle = revoker(env, clock, ca).check(env.config.sets[0])
    # Then each was revoked once, at the end of its own grace
    assert [(o.action[:8], o.serial) for o in second] == [("in grace", first), ("grace st", middle)]
    assert [(o.action[:8], o.serial) for o in at_first] == [("revoked", first), ("in grace", middle)]
    assert [(o.action, o.serial) for o in at_middle] == [("already revoked", first), ("revoked", middle)]
    assert ca.revoked == [(colon_serial(first), "SUPERSEDED"), (colon_serial(middle), "SUPERSEDED")]


def test_the_superseded_list_is_bounded_and_newest_first(make_env: Callable[..., LocalEnvironment]):
    env = make_env()
    name = env.config.sets[0].name
    driver = RotationDriver(env)
    serials = []
    for _ in range(MAX_SUPERSEDED + 2):
        driver.rotate(name)
        serials.append(serial_of(env, name))
    value = env.emulator.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    manifest = Manifest.from_json(value)
    assert manifest.generation == MAX_SUPERSEDED + 2
    assert [r.serial for r in manifest.superseded] == serials[-2::-1][:MAX_SUPERSEDED]
    assert [r.generation for r in manifest.superseded] == list(range(MAX_SUPERSEDED + 1, 1, -1))
    assert {r.ca for r in manifest.superseded} == {env.ca_arn}


class TwoCas:
    """The set's first CA and a CA rotation's new one, each counting."""

    def __init__(self, env: LocalEnvironment, root_ca: LocalCA) -> None:
        pca = env.emulator.client("acm-pca")
        self.old_arn = env.ca_arn
        self.new_arn = create_private_ca(env.emulator, LocalCA.create_root("certrotor G2 supersede"), "certrotor G2")
        self.by_arn = {arn: CountingCA(PrivateCA(arn, pca)) for arn in (self.old_arn, self.new_arn)}

    def __call__(self, arn: str) -> CountingCA:
        return self.by_arn[arn]


def move_to(env: LocalEnvironment, name: str, arn: str) -> None:
    """What a CA rotation's move stage does to one set: tag, rotate."""
    env.emulator.client("secretsmanager").tag_resource(SecretId=name, Tags=[{"Key": TAG_CA, "Value": arn}])
    RotationDriver(env).rotate(name)


def test_an_old_ca_certificate_in_its_grace_is_revoked_by_the_ca_that_issued_it(
    make_env: Callable[..., LocalEnvironment], root_ca: LocalCA
):
    env = make_env()
    name = env.config.sets[0].name
    RotationDriver(env).rotate(name)
    old_serial = serial_of(env, name)
    cas = TwoCas(env, root_ca)
    # Given the set moved to the new CA, and the config switched to it (the old one kept as previous)
    move_to(env, name, cas.new_arn)
    switched = replace(env.config, ca=replace(env.config.ca, arn=cas.new_arn, previous_arns=(cas.old_arn,)))
    clock = Clock()
    run = SupersededRevoker(switched, SecretStore(env.emulator.client("secretsmanager")), cas, now=clock)
    # When its grace passes
    (started,) = run.check(switched.sets[0])
    clock.at += GRACE + dt.timedelta(minutes=1)
    (due,) = run.check(switched.sets[0])
    # Then the old CA revoked it, the new CA revoked nothing
    assert (started.action, due.action, due.serial) == ("grace started", "revoked", old_serial)
    assert cas.by_arn[cas.old_arn].revoked == [(colon_serial(old_serial), "SUPERSEDED")]
    assert cas.by_arn[cas.new_arn].revoked == []
    (record,) = records(env, name)
    assert record.ca_arn == cas.old_arn


def backdate(env: LocalEnvironment, name: str, by: dt.timedelta) -> None:
    client = env.emulator.client("secretsmanager")
    tags = {t["Key"]: t["Value"] for t in client.describe_secret(SecretId=name).get("Tags", [])}
    for key, value in tags.items():
        record = SupersededRecord.parse(value) if key.startswith("certrotor:superseded:") else None
        if record is not None:
            earlier = replace(record, at=record.at - by).tag_value()
            client.tag_resource(SecretId=name, Tags=[{"Key": key, "Value": earlier}])


def revoked_by(arn: str) -> set[str]:
    """The serials the emulated Private CA has revoked for this CA."""
    from moto.backends import get_backend

    authority = get_backend("acm-pca")["123456789012"]["us-east-1"].certificate_authorities[arn]
    # Whole bytes there: a leading zero the manifest's hex may not have.
    return {s.replace(":", "").lstrip("0") for s in authority.revoked_certificates}


def test_the_monitor_revokes_an_old_ca_certificate_at_the_old_ca_once_it_is_a_previous_ca(
    make_env: Callable[..., LocalEnvironment], root_ca: LocalCA
):
    env = make_env()
    name = env.config.sets[0].name
    RotationDriver(env).rotate(name)
    old_serial = serial_of(env, name)
    cas = TwoCas(env, root_ca)
    move_to(env, name, cas.new_arn)
    on_new = replace(env.config.ca, arn=cas.new_arn, revoke_superseded="on")
    # Given the monitor runs on the new CA without the old one listed, and the grace is over
    forgot = replace(env, config=replace(env.config, ca=on_new), ca_arn=cas.new_arn)
    assert run_monitor(forgot)["superseded"]["sets"][0]["action"] == "grace started"
    backdate(env, name, GRACE + dt.timedelta(minutes=1))
    refused = run_monitor(forgot)["superseded"]["sets"][0]["action"]
    # Then it says what to do, revokes nothing and leaves the record waiting
    assert refused.startswith("failed") and "ca.previous_arns" in refused
    assert old_serial not in revoked_by(cas.old_arn) | revoked_by(cas.new_arn)
    assert [r.state for r in records(env, name)] == ["delivered"]
    # When the old CA is listed as a previous CA (and deployed)
    listed = replace(forgot, config=replace(forgot.config, ca=replace(on_new, previous_arns=(cas.old_arn,))))
    result = run_monitor(listed)["superseded"]["sets"]
    again = run_monitor(listed)["superseded"]["sets"]
    # Then the old CA revokes it, once; the new CA does not
    assert result == [{"name": name, "action": "revoked", "serial": old_serial}]
    assert again == [{"name": name, "action": "already revoked", "serial": old_serial}]
    assert old_serial in revoked_by(cas.old_arn)
    assert old_serial not in revoked_by(cas.new_arn)

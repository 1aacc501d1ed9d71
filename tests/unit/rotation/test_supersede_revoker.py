"""SupersededRevoker over the in-memory fakes: sets rotated by the real
RotationService, a moved clock, a CA that records what it is asked. What each
run records on the manifest secret, when the revocation happens, and what is
never revoked."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from certrotor.config import CertrotorConfig, load_config
from certrotor.errors import IntegrityError, RetryableError
from certrotor.layout import Manifest
from certrotor.layout.manifest import INITIAL_VALUE, MAX_SUPERSEDED, SupersededRef
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import colon_serial
from certrotor.ports import CURRENT
from certrotor.record import replace
from certrotor.services.rotation import TAG_REDEPLOYED, RotationRequest, RotationService
from certrotor.services.supersede import (
    MAX_REVOCATIONS_PER_RUN,
    PREVIOUS,
    REASON,
    REVOKE_INTERVAL_SECONDS,
    TAG_SUPERSEDED,
    SupersededRecord,
    SupersededRevoker,
    slot_tag,
    superseded_records,
)
from tests.unit.rotation.fakes import BASE_SET, FakeCA, FakeSecrets, FakeServices, stage

START = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(hours=24)


@dataclass
class RevokingCA:
    """Records each revocation with the tag the manifest secret held when it
    was asked (the intent must be recorded first)."""

    secrets: FakeSecrets
    ca_arn: str
    revoked: list[tuple[str, str, str | None]] = field(default_factory=list)

    def publishes_revocation(self) -> bool:
        return True

    def revoke(self, certificate_serial: str, reason: str = "UNSPECIFIED") -> bool:
        # Private CA's form has whole bytes: a leading zero the manifest's hex may not have.
        serial = certificate_serial.replace(":", "").lstrip("0")
        tags = [v for s in self.secrets._secrets.values() for v in s.tags.values() if v.split(" ")[0] == serial]
        self.revoked.append((certificate_serial, reason, tags[-1] if tags else None))
        return True


class Clock:
    def __init__(self) -> None:
        self.at = START
        self.mono = 0.0

    def __call__(self) -> dt.datetime:
        return self.at

    def monotonic(self) -> float:
        return self.mono


@dataclass
class World:
    config: CertrotorConfig
    secrets: FakeSecrets
    rotation: RotationService
    clock: Clock
    cas: dict[str, RevokingCA]
    sleeps: list[float]
    ca_arn: str

    def rotate(self, name: str) -> str:
        token = str(uuid.uuid4())
        stage(self.secrets, name, token)
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            event = {"Step": step, "SecretId": self.secrets.arn_of(name), "ClientRequestToken": token}
            self.rotation.run(RotationRequest.parse(event), remaining_seconds=lambda: 60)
        return token

    def serial(self, name: str, stage_name: str = CURRENT) -> str:
        return Manifest.from_json(self.secrets.get(name, stage=stage_name).value).serial

    def ca_for(self, arn: str) -> RevokingCA:
        return self.cas.setdefault(arn, RevokingCA(self.secrets, arn))

    def revoker(self, **kwargs: Any) -> SupersededRevoker:
        return SupersededRevoker(
            self.config,
            self.secrets,
            self.ca_for,
            now=self.clock,
            sleep=self.sleeps.append,
            clock=self.clock.monotonic,
            **kwargs,
        )

    def record(self, name: str) -> SupersededRecord | None:
        """The record changed last (one per superseded certificate)."""
        records = superseded_records(self.secrets.describe(name).tags)
        return records[-1] if records else None

    def rewrite_current(self, name: str, **changes: Any) -> None:
        """Edit the current manifest in place (a manifest from an older writer)."""
        secret = self.secrets._secret(name)
        token = self.secrets.describe(name).version_with(CURRENT)
        assert token is not None
        manifest = Manifest.from_json(secret.versions[token].value or "")
        secret.versions[token].value = replace(manifest, **changes).to_json()


@pytest.fixture(scope="module")
def authority(root_ca: LocalCA) -> LocalCA:
    return root_ca.create_subordinate("certrotor supersede test CA")


@pytest.fixture
def make_world(root_ca: LocalCA, authority: LocalCA) -> Callable[..., World]:
    def build(sets: list[dict[str, Any]] | None = None, **ca: Any) -> World:
        secrets = FakeSecrets()
        fake_ca = FakeCA(root_ca, authority)
        data = {"ca": {"arn": fake_ca.ca_arn, **ca}, "sets": sets or [dict(BASE_SET)]}
        config = load_config(data)
        for cert_set in config.sets:
            secrets.create_secret(cert_set.name, INITIAL_VALUE, rotation_enabled=True)
            for part in cert_set.part_secret_names:
                secrets.create_secret(part, INITIAL_VALUE)
        rotation = RotationService(config, secrets, fake_ca, FakeServices())
        return World(config, secrets, rotation, Clock(), {}, [], fake_ca.ca_arn)

    return build


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


NAME = BASE_SET["name"]


def test_a_set_never_rotated_or_rotated_once_has_nothing_superseded(world: World) -> None:
    revoker = world.revoker()
    # Only AWSCURRENT (the initial value): no previous version.
    assert [(o.name, o.action, o.serial) for o in revoker.run()] == [(NAME, "nothing superseded yet", None)]
    world.rotate(NAME)
    # The previous version is the initial value: no certificate was superseded.
    assert [(o.action, o.serial) for o in revoker.run()] == [("nothing superseded yet", None)]
    assert world.record(NAME) is None
    assert not world.cas


def test_the_grace_starts_when_a_run_first_sees_the_delivered_replacement(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    assert world.serial(NAME, PREVIOUS) == first
    (outcome,) = world.revoker().check(world.config.sets[0])
    assert (outcome.name, outcome.action, outcome.serial) == (NAME, "grace started", first)
    # The tag of its generation's slot names the serial, the state, when, and its CA.
    tag = world.secrets.describe(NAME).tags[slot_tag(1)]
    assert tag == f"{first} delivered {START.isoformat(timespec='seconds')} {world.ca_arn}"
    assert not world.cas


def test_a_redeploying_set_waits_until_the_current_version_was_redeployed(world: World) -> None:
    world.rotate(NAME)
    world.rotate(NAME)
    world.secrets.tag(NAME, TAG_REDEPLOYED, "another-version")
    (outcome,) = world.revoker().check(world.config.sets[0])
    assert (outcome.action, outcome.serial) == ("waiting: the current version is not delivered yet", None)
    assert world.record(NAME) is None


def test_a_reloading_set_needs_no_redeploy_record(make_world: Callable[..., World]) -> None:
    world = make_world(sets=[{**BASE_SET, "delivery": "reload", "services": []}])
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    assert TAG_REDEPLOYED not in world.secrets.describe(NAME).tags
    assert [o.action for o in world.revoker().check(world.config.sets[0])] == ["grace started"]
    record = world.record(NAME)
    assert record is not None and record.serial == first


def test_the_superseded_certificate_is_revoked_once_exactly_when_its_grace_ends(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    revoker = world.revoker()
    revoker.run()
    world.clock.at = START + dt.timedelta(hours=6)
    assert [(o.action, o.serial) for o in revoker.run()] == [("in grace, 18.0 h left", first)]
    world.clock.at = START + GRACE - dt.timedelta(seconds=1)
    assert revoker.run()[0].action == "in grace, 0.0 h left"
    assert not world.cas
    world.clock.at = START + GRACE
    assert [(o.action, o.serial) for o in revoker.run()] == [("revoked", first)]
    ca = world.cas[world.ca_arn]
    # The intent was on the secret before the CA was asked, then the result.
    intent = f"{first} revoking {(START + GRACE).isoformat(timespec='seconds')} {world.ca_arn}"
    assert ca.revoked == [(colon_serial(first), REASON, intent)]
    assert REASON == "SUPERSEDED"
    assert world.record(NAME) == SupersededRecord(first, "revoked", START + GRACE, world.ca_arn)
    assert revoker.revocations == 1
    # Later runs: nothing more.
    world.clock.at = START + 3 * GRACE
    assert [(o.action, o.serial) for o in world.revoker().run()] == [("already revoked", first)]
    assert len(ca.revoked) == 1


def test_a_run_that_crashed_after_recording_the_intent_revokes_on_the_next_run(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    intent = SupersededRecord(first, "revoking", START, world.ca_arn)
    world.secrets.tag(NAME, slot_tag(1), intent.tag_value())
    # No grace for a revocation already under way.
    assert [o.action for o in world.revoker().check(world.config.sets[0])] == ["revoked"]
    assert [r[0] for r in world.cas[world.ca_arn].revoked] == [colon_serial(first)]


def test_the_grace_is_set_by_the_config(make_world: Callable[..., World]) -> None:
    world = make_world(revoke_grace_hours=2)
    world.rotate(NAME)
    world.rotate(NAME)
    revoker = world.revoker()
    revoker.run()
    world.clock.at = START + dt.timedelta(hours=1)
    assert revoker.run()[0].action == "in grace, 1.0 h left"
    world.clock.at = START + dt.timedelta(hours=2)
    assert revoker.run()[0].action == "revoked"


def test_a_rotation_during_a_grace_keeps_the_earlier_record_and_starts_its_own(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    revoker = world.revoker()
    revoker.run()
    second = world.serial(NAME)
    world.rotate(NAME)  # second is superseded too, first still in grace
    world.clock.at = START + dt.timedelta(hours=1)
    assert [(o.action, o.serial) for o in revoker.run()] == [
        ("in grace, 23.0 h left", first),
        ("grace started", second),
    ]
    world.clock.at = START + GRACE
    assert [(o.action, o.serial) for o in revoker.run()] == [("revoked", first), ("in grace, 1.0 h left", second)]
    world.clock.at = START + GRACE + dt.timedelta(hours=1)
    assert [(o.action, o.serial) for o in revoker.run()] == [("already revoked", first), ("revoked", second)]
    assert [r[0] for r in world.cas[world.ca_arn].revoked] == [colon_serial(first), colon_serial(second)]


def test_a_slot_holding_an_earlier_record_not_yet_revoked_is_finished_first_never_dropped(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    # Given the slot of first's generation still holds a certificate of a
    # generation MAX_SUPERSEDED earlier, in its grace (more rotations than
    # the list holds between two runs)
    older = SupersededRecord("ab" * 20, "delivered", START, world.ca_arn)
    world.secrets.tag(NAME, slot_tag(1), older.tag_value())
    assert slot_tag(1) == slot_tag(1 + MAX_SUPERSEDED)
    revoker = world.revoker()
    # When runs come before and after that grace
    world.clock.at = START + dt.timedelta(hours=1)
    during = [(o.action, o.serial) for o in revoker.run()]
    world.clock.at = START + GRACE
    after = [(o.action, o.serial) for o in revoker.run()]
    # Then the earlier one is revoked at its end, and only then does first's grace start
    assert during == [("in grace, 23.0 h left", older.serial)]
    assert after == [("grace started", first)]
    assert [r[0] for r in world.cas[world.ca_arn].revoked] == [colon_serial(older.serial)]
    assert world.record(NAME) == SupersededRecord(first, "delivered", START + GRACE, world.ca_arn)


def test_a_list_naming_the_current_serial_is_refused(world: World) -> None:
    world.rotate(NAME)
    world.rotate(NAME)
    current = world.serial(NAME)
    world.rewrite_current(NAME, superseded=(SupersededRef(current, world.ca_arn, 1),))
    world.clock.at = START + 3 * GRACE
    with pytest.raises(IntegrityError, match=f"superseded list names the current serial {current}"):
        world.revoker().check(world.config.sets[0])
    assert world.record(NAME) is None
    assert not world.cas


def test_a_record_naming_the_current_serial_is_refused_and_reported(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.rotate(NAME)
    world.rotate(NAME)
    current = world.serial(NAME)
    bad = SupersededRecord(current, "delivered", START - 2 * GRACE, world.ca_arn)
    world.secrets.tag(NAME, slot_tag(1), bad.tag_value())
    with pytest.raises(IntegrityError, match=f"record names the current serial {current}"):
        world.revoker().check(world.config.sets[0])
    with caplog.at_level(logging.ERROR, logger="certrotor.supersede"):
        outcomes = world.revoker().run()
    assert len(outcomes) == 1 and outcomes[0].name == NAME
    assert outcomes[0].action.startswith("failed: ") and current in outcomes[0].action
    assert [r.getMessage() for r in caplog.records] == ["superseded certificate not handled"]
    assert getattr(caplog.records[0], "set", None) == NAME
    assert getattr(caplog.records[0], "error", None) == outcomes[0].action.removeprefix("failed: ")
    assert not world.cas


def test_a_previous_version_holding_the_current_certificate_is_never_revoked(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    current = world.secrets.get(NAME, stage=CURRENT)
    # The same manifest again under a new version, made current.
    world.secrets.put(NAME, current.value, str(uuid.uuid4()), stages=[CURRENT])
    world.secrets.tag(NAME, TAG_REDEPLOYED, world.secrets.describe(NAME).version_with(CURRENT) or "")
    outcomes = world.revoker().check(world.config.sets[0])
    assert [(o.action, o.serial) for o in outcomes] == [("grace started", first)]
    # A manifest without the list (an older writer): AWSPREVIOUS holds the current certificate.
    world.rewrite_current(NAME, superseded=())
    (outcome,) = world.revoker().check(world.config.sets[0])
    assert outcome.action == "the previous version holds the current certificate"
    assert not world.cas


def test_a_manifest_without_the_list_supersedes_its_previous_version(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    world.rewrite_current(NAME, superseded=(), generation=None)
    (outcome,) = world.revoker().check(world.config.sets[0])
    assert (outcome.action, outcome.serial) == ("grace started", first)
    assert SupersededRecord.parse(world.secrets.describe(NAME).tags[slot_tag(-1)]) is not None


def test_one_failing_set_does_not_hide_the_others_but_throttling_ends_the_run(
    make_world: Callable[..., World],
) -> None:
    other = {**BASE_SET, "name": "tls/api", "common_name": "api.svc.internal", "dns_names": ["api.svc.internal"]}
    world = make_world(sets=[dict(BASE_SET), other])
    for name in (NAME, "tls/api"):
        world.rotate(name)
        world.rotate(name)
    world.secrets.tag(NAME, slot_tag(1), SupersededRecord(world.serial(NAME), "delivered", START, "x").tag_value())
    outcomes = world.revoker().run()
    assert [o.name for o in outcomes] == [NAME, "tls/api"]
    assert outcomes[0].action.startswith("failed: ")
    assert outcomes[1].action == "grace started"

    class Throttled(FakeSecrets):
        def describe(self, secret_id: str) -> Any:
            raise RetryableError("DescribeSecret: ThrottlingException")

    revoker = SupersededRevoker(world.config, Throttled(), world.ca_for, now=world.clock)
    with pytest.raises(RetryableError):
        revoker.run()


def test_revocations_are_paced_and_bounded_per_run(make_world: Callable[..., World]) -> None:
    names = [NAME, "tls/api", "tls/db"]
    sets = [{**BASE_SET, "name": n, "common_name": "x.svc.internal", "dns_names": ["x.svc.internal"]} for n in names]
    world = make_world(sets=sets)
    for name in names:
        world.rotate(name)
        world.rotate(name)
    revoker = world.revoker()
    assert [o.action for o in revoker.run()] == ["grace started"] * 3
    world.clock.at = START + GRACE
    revoker = world.revoker()

    def tick(wait: float) -> None:
        world.sleeps.append(wait)

    revoker._sleep = tick
    # Each revocation is 0.03 s after the last one: the run waits the rest.
    original = world.ca_for

    def ca_for(arn: str) -> RevokingCA:
        world.clock.mono += 0.03
        return original(arn)

    revoker._ca_for = ca_for
    assert [o.action for o in revoker.run()] == ["revoked"] * 3
    assert world.sleeps == pytest.approx([REVOKE_INTERVAL_SECONDS - 0.03] * 2)
    assert revoker.revocations == 3

    # At the per-run limit the rest waits for the next run.
    for name in names:
        world.rotate(name)
    revoker = world.revoker()
    revoker.run()
    world.clock.at = START + 3 * GRACE
    revoker = world.revoker()
    revoker.revocations = MAX_REVOCATIONS_PER_RUN - 1
    actions = [o.action for o in revoker.run()]
    assert actions == [
        "already revoked",
        "revoked",
        "already revoked",
        "deferred to the next run (per-run limit)",
        "already revoked",
        "deferred to the next run (per-run limit)",
    ]
    assert MAX_REVOCATIONS_PER_RUN == 200


def test_no_wait_when_the_last_revocation_is_long_past(make_world: Callable[..., World]) -> None:
    names = [NAME, "tls/api"]
    sets = [{**BASE_SET, "name": n, "common_name": "x.svc.internal", "dns_names": ["x.svc.internal"]} for n in names]
    world = make_world(sets=sets)
    for name in names:
        world.rotate(name)
        world.rotate(name)
    world.revoker().run()
    world.clock.at = START + GRACE
    revoker = world.revoker()
    original = world.ca_for

    def ca_for(arn: str) -> RevokingCA:
        world.clock.mono += REVOKE_INTERVAL_SECONDS
        return original(arn)

    revoker._ca_for = ca_for
    assert [o.action for o in revoker.run()] == ["revoked", "revoked"]
    assert world.sleeps == []


def test_a_manifest_without_its_ca_is_revoked_at_the_configured_ca(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    # The superseded certificate's manifest named no CA (written before manifests did).
    world.rewrite_current(NAME, superseded=(SupersededRef(first, None, 1),))
    world.revoker().run()
    record = world.record(NAME)
    assert record is not None and (record.serial, record.ca_arn) == (first, world.ca_arn)


def test_an_old_ca_certificate_is_revoked_at_its_own_ca(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    old_ca = world.ca_arn.replace(world.ca_arn[-12:], "0" * 12)
    world.rewrite_current(NAME, superseded=(SupersededRef(first, old_ca, 1),))
    revoker = world.revoker()
    revoker.run()
    world.clock.at = START + GRACE
    assert [(o.action, o.serial) for o in revoker.run()] == [("revoked", first)]
    assert [r[0] for r in world.cas[old_ca].revoked] == [colon_serial(first)]
    assert world.ca_arn not in world.cas


def test_a_manifest_without_its_ca_and_a_config_without_one_is_refused(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    world.rewrite_current(NAME, superseded=(SupersededRef(first, None, 1),))
    config = load_config({"ca": {"arn": world.ca_arn}, "sets": [dict(BASE_SET)]})
    no_arn = type(config.ca)(**{**config.ca.__dict__, "arn": None})
    revoker = SupersededRevoker(
        type(config)(**{**config.__dict__, "ca": no_arn}), world.secrets, world.ca_for, now=world.clock
    )
    with pytest.raises(IntegrityError, match="the config names no CA ARN"):
        revoker.check(config.sets[0])


def test_each_step_is_logged_with_the_set_the_serial_and_the_ca(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    revoker = world.revoker()
    with caplog.at_level(logging.INFO, logger="certrotor.supersede"):
        revoker.run()
        world.clock.at = START + GRACE
        revoker.run()
    logged = [(r.getMessage(), getattr(r, "set", None), getattr(r, "serial", None)) for r in caplog.records]
    assert logged == [
        ("superseded certificate's grace started", NAME, first),
        ("superseded certificate revoked", NAME, first),
    ]
    assert getattr(caplog.records[1], "ca", None) == world.ca_arn


def test_every_outcome_names_its_set_and_serial(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    revoker = world.revoker()
    revoker.run()
    # 180 s left: a tenth of an hour, rounded.
    world.clock.at = START + GRACE - dt.timedelta(seconds=180)
    assert [(o.name, o.action, o.serial) for o in revoker.run()] == [(NAME, "in grace, 0.1 h left", first)]
    revoker.revocations = MAX_REVOCATIONS_PER_RUN
    world.clock.at = START + GRACE
    deferred = "deferred to the next run (per-run limit)"
    assert [(o.name, o.action, o.serial) for o in revoker.run()] == [(NAME, deferred, first)]
    assert [(o.name, o.action, o.serial) for o in world.revoker().run()] == [(NAME, "revoked", first)]
    assert [(o.name, o.action, o.serial) for o in world.revoker().run()] == [(NAME, "already revoked", first)]


def test_records_are_read_from_every_slot_oldest_first() -> None:
    early = SupersededRecord("01", "revoked", START, "arn:a")
    late = SupersededRecord("02", "delivered", START + GRACE, "arn:b")
    tags = {
        TAG_SUPERSEDED: late.tag_value(),
        slot_tag(2): early.tag_value(),
        "certrotor:supersededX": early.tag_value(),
        "other": late.tag_value(),
        slot_tag(3): "not a record",
    }
    assert superseded_records(tags) == [early, late]

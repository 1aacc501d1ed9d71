"""What the superseded-certificate revoker tells operators, per set: the
exact reason revocation is on or off, one outcome per certificate (each
naming its set), and the version it judged (the one it described, even when
a rotation finishes while it reads)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from certrotor.config import load_config
from certrotor.errors import IntegrityError
from certrotor.layout import Manifest
from certrotor.layout.manifest import SupersededRef
from certrotor.ports import CURRENT, SecretInfo
from certrotor.record import replace
from certrotor.services.rotation import TAG_REDEPLOYED
from certrotor.services.supersede import (
    LEGACY_GENERATION,
    PREVIOUS,
    SupersededRecord,
    SupersededRevoker,
    revocation_enabled,
    slot_tag,
)
from tests.unit.rotation import test_supersede_revoker as base
from tests.unit.rotation.fakes import BASE_SET, FakeSecrets
from tests.unit.rotation.test_supersede_revoker import NAME, START, World

# The worlds of the revoker's own tests: sets rotated by the real RotationService.
authority = base.authority
make_world = base.make_world
world = base.world

ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "a" * 36
OFF = "revoking superseded certificates is off (ca.revoke_superseded)"
ON = "revoking superseded certificates (ca.revoke_superseded: on)"
PUBLISHED = "revoking superseded certificates: the CA publishes a CRL or OCSP"
UNPUBLISHED = (
    f"not revoking superseded certificates: CA {ARN} publishes no CRL and no OCSP, so no relying party could see"
    " a revocation; enable either on the CA, or set ca.revoke_superseded to on"
)


class PublishingCA:
    def __init__(self, published: bool) -> None:
        self.published = published
        self.ca_arn = ARN

    def publishes_revocation(self) -> bool:
        return self.published

    def revoke(self, certificate_serial: str, reason: str = "UNSPECIFIED") -> bool:  # pragma: no cover
        raise AssertionError("not called")


@pytest.mark.parametrize(
    ("mode", "published", "expected"),
    [
        ("off", True, (False, OFF)),
        ("on", False, (True, ON)),
        ("auto", True, (True, PUBLISHED)),
        ("auto", False, (False, UNPUBLISHED)),
    ],
)
def test_the_reason_operators_read_for_each_mode(mode: str, published: bool, expected: tuple[bool, str]) -> None:
    config = load_config({"ca": {"arn": ARN, "revoke_superseded": mode}, "sets": [copy.deepcopy(dict(BASE_SET))]})
    assert revocation_enabled(config, PublishingCA(published)) == expected


@pytest.mark.parametrize(
    "value",
    [
        "ab  delivered 2026-01-02T03:04:05+00:00 arn:x",  # two spaces
        "ab\tdelivered 2026-01-02T03:04:05+00:00 arn:x",  # not the written separator
        "ab delivered 2026-01-02T03:04:05+00:00 arn:x ",  # a trailing space
    ],
)
def test_a_record_not_in_the_written_form_is_no_record(value: str) -> None:
    assert SupersededRecord.parse(value) is None


def test_a_secret_without_a_current_version_has_nothing_superseded(world: World) -> None:
    # A secret created without a value (CreateSecret without SecretString) has no version at all.
    world.secrets._secret(NAME).versions.clear()
    assert [(o.name, o.action, o.serial) for o in world.revoker().run()] == [(NAME, "nothing superseded yet", None)]


def test_every_early_answer_names_its_set(world: World) -> None:
    revoker = world.revoker()
    world.rotate(NAME)
    # Rotated once: the previous version is the initial value.
    assert [(o.name, o.action) for o in revoker.run()] == [(NAME, "nothing superseded yet")]
    world.rotate(NAME)
    world.secrets.tag(NAME, TAG_REDEPLOYED, "another-version")
    assert [(o.name, o.action) for o in revoker.run()] == [(NAME, "waiting: the current version is not delivered yet")]
    # A manifest without the list whose previous version holds the current certificate.
    current = world.secrets.get(NAME, stage=CURRENT)
    world.secrets.put(NAME, current.value, "1" * 32, stages=[CURRENT])
    world.secrets.tag(NAME, TAG_REDEPLOYED, "1" * 32)
    world.rewrite_current(NAME, superseded=())
    assert [(o.name, o.action) for o in revoker.run()] == [(NAME, "the previous version holds the current certificate")]


def test_an_undelivered_version_waits_once_for_each_certificate_it_superseded(world: World) -> None:
    world.rotate(NAME)
    world.rotate(NAME)
    world.rotate(NAME)
    world.secrets.tag(NAME, TAG_REDEPLOYED, "another-version")
    outcomes = world.revoker().check(world.config.sets[0])
    assert [(o.name, o.action) for o in outcomes] == [(NAME, "waiting: the current version is not delivered yet")] * 2


def test_a_blocked_slot_does_not_hold_back_the_next_certificate(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    second = world.serial(NAME)
    world.rotate(NAME)
    # first's slot (generation 1) still holds an older certificate in its grace.
    older = SupersededRecord("ab" * 20, "delivered", START, world.ca_arn)
    world.secrets.tag(NAME, slot_tag(1), older.tag_value())
    world.clock.at = START + dt.timedelta(hours=1)
    outcomes = world.revoker().check(world.config.sets[0])
    assert [(o.name, o.action, o.serial) for o in outcomes] == [
        (NAME, "in grace, 23.0 h left", older.serial),
        (NAME, "grace started", second),
    ]
    assert first not in world.secrets.describe(NAME).tags[slot_tag(1)]


def test_a_legacy_previous_certificate_is_revoked_at_the_ca_its_manifest_names(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    # The previous manifest was issued by an older CA; the current one has no list.
    old_ca = world.ca_arn.replace(world.ca_arn[-12:], "0" * 12)
    secret = world.secrets._secret(NAME)
    previous_token = world.secrets.describe(NAME).version_with(PREVIOUS)
    assert previous_token is not None
    previous = Manifest.from_json(secret.versions[previous_token].value or "")
    secret.versions[previous_token].value = replace(previous, ca=old_ca).to_json()
    world.rewrite_current(NAME, superseded=(), generation=None)
    (outcome,) = world.revoker().check(world.config.sets[0])
    assert (outcome.action, outcome.serial) == ("grace started", first)
    record = SupersededRecord.parse(world.secrets.describe(NAME).tags[slot_tag(LEGACY_GENERATION)])
    assert record is not None and (record.serial, record.ca_arn) == (first, old_ca)


def test_the_missing_ca_arn_error_is_exact(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    world.rewrite_current(NAME, superseded=(SupersededRef(first, None, 1),))
    config = world.config
    no_arn = type(config.ca)(**{**config.ca.__dict__, "arn": None})
    revoker = SupersededRevoker(
        type(config)(**{**config.__dict__, "ca": no_arn}), world.secrets, world.ca_for, now=world.clock
    )
    with pytest.raises(IntegrityError) as refused:
        revoker.check(config.sets[0])
    assert str(refused.value) == "the config names no CA ARN"


class RotatingWhileRead(FakeSecrets):
    """Right after the revoker describes the set, a rotation finishes."""

    def __init__(self) -> None:
        super().__init__()
        self.after_describe: Callable[[], Any] | None = None

    def describe(self, secret_id: str) -> SecretInfo:
        info = super().describe(secret_id)
        hook, self.after_describe = self.after_describe, None
        if hook is not None:
            hook()
        return info


def test_the_revoker_judges_the_version_it_described(make_world: Callable[..., World]) -> None:
    world = make_world()
    secrets = RotatingWhileRead()
    secrets._secrets = world.secrets._secrets
    world.rotation._secrets = secrets  # type: ignore[attr-defined]
    world.secrets = secrets
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    second = world.serial(NAME)
    # The described version was delivered; the one that becomes current while it reads was not.
    world.secrets.tag(NAME, TAG_REDEPLOYED, world.secrets.describe(NAME).version_with(CURRENT) or "")
    secrets.after_describe = lambda: world.rotate(NAME)
    outcomes = world.revoker().check(world.config.sets[0])
    assert [(o.action, o.serial) for o in outcomes] == [("grace started", first)]
    assert second != first


def test_a_slot_whose_earlier_certificate_was_revoked_is_reused_at_once(world: World) -> None:
    world.rotate(NAME)
    first = world.serial(NAME)
    world.rotate(NAME)
    # The slot of first's generation holds a certificate MAX_SUPERSEDED generations older, revoked.
    older = SupersededRecord("ab" * 20, "revoked", START, world.ca_arn)
    world.secrets.tag(NAME, slot_tag(1), older.tag_value())
    outcomes = world.revoker().check(world.config.sets[0])
    assert [(o.name, o.action, o.serial) for o in outcomes] == [(NAME, "grace started", first)]
    assert not world.cas

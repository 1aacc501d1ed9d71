"""TrustDocument's state changes and the monitor's days-to-expiry figure."""

from __future__ import annotations

import datetime as dt

import pytest

from certrotor.errors import NotFoundError
from certrotor.layout import Manifest
from certrotor.layout.manifest import PartRef
from certrotor.services.expiry import days_to_expiry
from certrotor.services.trust import TrustDocument

ARN = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/" + "0" * 36


def test_a_status_for_an_unknown_ca_names_it_and_the_rotator() -> None:
    with pytest.raises(NotFoundError) as refused:
        TrustDocument(rotator="rot").with_status(ARN, "retired", dt.datetime.now(dt.UTC))
    assert str(refused.value) == f"{ARN} is not a CA of rotator rot"


def test_the_rotation_state_is_copied_in_and_can_be_cleared() -> None:
    state = {"stage": "move", "sets": {}}
    document = TrustDocument(rotator="rot").with_rotation(state)
    assert document.ca_rotation == state
    state["stage"] = "changed later"
    assert document.ca_rotation is not None and document.ca_rotation["stage"] == "move"
    assert document.with_rotation(None).ca_rotation is None
    assert TrustDocument.from_json(document.to_json(), "rot").ca_rotation == {"stage": "move", "sets": {}}


def test_days_to_expiry_are_exact_days_and_negative_once_expired() -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    parts = (PartRef("s/key", "key", "0" * 64), PartRef("s/chain-0", "chain", "0" * 64))

    def manifest(not_after: dt.datetime) -> Manifest:
        return Manifest("s", "v", "01", now.isoformat(), not_after.isoformat(), "f" * 64, "EC_prime256v1", parts)

    assert days_to_expiry(manifest(now + dt.timedelta(days=30)), now) == 30.0
    assert days_to_expiry(manifest(now + dt.timedelta(hours=36)), now) == 1.5
    assert days_to_expiry(manifest(now - dt.timedelta(days=2)), now) == -2.0

"""The superseded-certificate record and when revocation is on."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from certrotor.config import load_config
from certrotor.services.supersede import SupersededRecord, revocation_enabled

ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "a" * 36
CONFIG: dict[str, Any] = {"ca": {"arn": ARN}, "sets": [{"name": "tls/x", "dns_names": ["x.internal"]}]}


@dataclass
class FakeCA:
    published: bool
    ca_arn: str = ARN

    def publishes_revocation(self) -> bool:
        return self.published

    def revoke(self, certificate_serial: str, reason: str = "UNSPECIFIED") -> bool:  # pragma: no cover
        raise AssertionError("not called")


def config(mode: str) -> Any:
    data = copy.deepcopy(CONFIG)
    data["ca"]["revoke_superseded"] = mode
    return load_config(data)


def test_the_record_round_trips_through_its_tag_value_within_the_tag_limit() -> None:
    record = SupersededRecord("ab" * 20, "revoking", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), ARN)
    value = record.tag_value()
    assert SupersededRecord.parse(value) == record
    assert len(value) <= 256


@pytest.mark.parametrize("value", [None, "", "serial only", "a b not-a-time c"])
def test_an_unreadable_record_is_no_record(value: str | None) -> None:
    assert SupersededRecord.parse(value) is None


@pytest.mark.parametrize(
    ("mode", "published", "enabled"),
    [("auto", True, True), ("auto", False, False), ("on", False, True), ("off", True, False)],
)
def test_revocation_is_on_when_the_mode_and_the_ca_say_so(mode: str, published: bool, enabled: bool) -> None:
    on, reason = revocation_enabled(config(mode), FakeCA(published))
    assert on is enabled
    assert reason


def test_auto_without_crl_or_ocsp_says_why_and_what_to_do() -> None:
    _, reason = revocation_enabled(config("auto"), FakeCA(False))
    assert "publishes no CRL and no OCSP" in reason and "revoke_superseded" in reason

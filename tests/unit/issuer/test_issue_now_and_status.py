"""Issue-now's rate refusal as the caller reads it, a set's status body,
and serials as RevokeCertificate takes them."""

from __future__ import annotations

import datetime as dt

import pytest

from certrotor.config import load_config
from certrotor.local.provision import DEFAULT_CONFIG
from certrotor.pki.bundle import colon_serial
from certrotor.pki.policy import RequestRefused
from certrotor.services.issuance import ManagedSets, SetStatus
from tests.unit.issuer.test_issuer_service import ORDERS, CountingTrigger, FakeLedger

AT = dt.datetime(2030, 1, 1, 12, 0, 42, tzinfo=dt.UTC)


def test_the_rate_refusal_names_the_role_and_its_rate_and_when_to_retry() -> None:
    config = load_config(
        {**DEFAULT_CONFIG, "issuer_policies": [{"principal": "orders-task", "sets": ["demo/*"], "rate_per_minute": 1}]}
    )
    ledger = FakeLedger()
    sets = ManagedSets(config, secrets=None, trigger=CountingTrigger(), ledger=ledger, now=lambda: AT)  # type: ignore[arg-type]
    sets.issue_now(ORDERS, "demo/web")
    with pytest.raises(RequestRefused) as refused:
        sets.issue_now(ORDERS, "demo/web")
    role = "arn:aws:iam::123456789012:role/orders-task"
    assert str(refused.value).endswith(f"{role} may make 1 requests a minute")
    assert refused.value.retry_after == 18
    # The slot was taken for the caller's role.
    assert list(ledger.slots) == [(role, int(AT.timestamp()) // 60)]


def test_a_status_body_lists_every_field_and_a_problem_only_when_there_is_one() -> None:
    fine = SetStatus("demo/web", "v2", "0a", "2030-02-01T00:00:00+00:00", True, "v3")
    assert fine.response() == {
        "name": "demo/web",
        "version": "v2",
        "serial": "0a",
        "not_after": "2030-02-01T00:00:00+00:00",
        "rotation_in_progress": True,
        "pending_version": "v3",
    }
    broken = SetStatus("demo/web", "v2", None, None, False, None, "manifest is malformed")
    assert broken.response()["problem"] == "manifest is malformed"


@pytest.mark.parametrize(
    ("serial", "colons"),
    [("0a1b2c", "0a:1b:2c"), ("a1b2c", "0a:1b:2c"), ("1", "01"), ("abcd", "ab:cd"), ("abc", "0a:bc")],
)
def test_serials_are_colon_separated_byte_pairs(serial: str, colons: str) -> None:
    assert colon_serial(serial) == colons

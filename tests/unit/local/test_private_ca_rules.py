"""The emulated Private CA's rules at their exact limits, without a server:
IdempotencyToken's 5-minute window and Validity's arithmetic."""

from __future__ import annotations

import datetime as dt

import pytest

from certrotor.local.private_ca import IDEMPOTENCY_WINDOW_SECONDS, IdempotencyLedger, ValidationError, not_after

CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x"
START = dt.datetime(2026, 1, 31, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("elapsed", "same"),
    [(0.0, True), (IDEMPOTENCY_WINDOW_SECONDS - 0.001, True), (IDEMPOTENCY_WINDOW_SECONDS, False), (301.0, False)],
)
def test_a_token_answers_with_its_certificate_for_exactly_five_minutes(elapsed: float, same: bool) -> None:
    ledger = IdempotencyLedger()
    ledger.record(CA, "token", "arn:cert-1", now=1000.0)
    assert (ledger.find(CA, "token", now=1000.0 + elapsed) == "arn:cert-1") is same


def test_a_token_belongs_to_its_ca_and_aging_moves_every_use_into_the_past() -> None:
    ledger = IdempotencyLedger()
    ledger.record(CA, "token", "arn:cert-1", now=1000.0)
    assert ledger.find(CA + "-other", "token", now=1000.0) is None
    assert ledger.find(CA, "other-token", now=1000.0) is None
    ledger.age(IDEMPOTENCY_WINDOW_SECONDS - 1)
    assert ledger.find(CA, "token", now=1000.0) == "arn:cert-1"
    ledger.age(1)
    assert ledger.find(CA, "token", now=1000.0) is None


@pytest.mark.parametrize(
    ("validity", "expected"),
    [
        ({"Type": "DAYS", "Value": 1}, START + dt.timedelta(days=1)),
        ({"Type": "DAYS", "Value": 398}, START + dt.timedelta(days=398)),
        ({"Type": "HOURS", "Value": 5}, START + dt.timedelta(hours=5)),
        ({"Type": "MONTHS", "Value": 1}, dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC)),
        ({"Type": "MONTHS", "Value": 13}, dt.datetime(2027, 2, 28, 12, tzinfo=dt.UTC)),
        ({"Type": "YEARS", "Value": 2}, dt.datetime(2028, 1, 31, 12, tzinfo=dt.UTC)),
        ({"Type": "ABSOLUTE", "Value": 1_900_000_000}, dt.datetime.fromtimestamp(1_900_000_000, dt.UTC)),
        ({"Type": "END_DATE", "Value": 20270101000000}, dt.datetime(2027, 1, 1, tzinfo=dt.UTC)),
    ],
)
def test_validity_sets_not_after_as_private_ca_computes_it(validity: dict[str, object], expected: dt.datetime) -> None:
    assert not_after(validity, START) == expected


@pytest.mark.parametrize(
    "validity",
    [{"Type": "DAYS", "Value": 0}, {"Type": "DAYS", "Value": -1}, {"Type": "WEEKS", "Value": 1}, {"Type": "DAYS"}, {}],
)
def test_a_validity_private_ca_would_refuse_is_refused(validity: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        not_after(validity, START)

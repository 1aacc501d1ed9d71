"""Ledger.record's retries (botocore Stubber: fault injection): how many
attempts, the waits between them, and which cancellations are retried at all."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

import certrotor.aws.ledger as ledger_module
from certrotor.aws.ledger import RECORD_ATTEMPTS, Ledger, LedgerEntry
from certrotor.errors import AwsError, RetryableError

CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
ENTRY = LedgerEntry(
    ca_arn=CA,
    serial="0a",
    principal="arn:aws:iam::123456789012:role/orders-task",
    names=("orders.internal",),
    not_after="2030-01-08T00:00:00+00:00",
    request_id="r-1",
    certificate_arn=CA + "/certificate/0a",
    issued_at="2030-01-01T00:00:00+00:00",
    source="csr",
)


def cancelled(stub: Stubber, *codes: str) -> None:
    stub.add_client_error(
        "transact_write_items",
        "TransactionCanceledException",
        response_meta={},
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]},
    )


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(ledger_module.time, "sleep", waited.append)
    # The jitter's random factor in [0.5, 1.5), fixed at 0.75 here.
    monkeypatch.setattr(ledger_module.random, "random", lambda: 0.25)
    return waited


@pytest.fixture
def stubbed() -> tuple[Ledger, Stubber]:
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    return Ledger("ledger", client), Stubber(client)


def test_the_last_attempt_still_records_and_the_waits_double(
    stubbed: tuple[Ledger, Stubber], sleeps: list[float]
) -> None:
    ledger, stub = stubbed
    for reason in ("TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict"):
        cancelled(stub, "None", reason)
    stub.add_response("transact_write_items", {})
    with stub:
        assert ledger.record(ENTRY) is True
    stub.assert_no_pending_responses()
    assert RECORD_ATTEMPTS == 5
    assert sleeps == pytest.approx([0.0375, 0.075, 0.15, 0.3])


def test_conflicts_on_every_attempt_ask_the_caller_to_retry(
    stubbed: tuple[Ledger, Stubber], sleeps: list[float]
) -> None:
    ledger, stub = stubbed
    for _ in range(RECORD_ATTEMPTS):
        cancelled(stub, "TransactionConflict", "None")
    with stub, pytest.raises(RetryableError) as retry:
        ledger.record(ENTRY)
    stub.assert_no_pending_responses()
    assert str(retry.value) == "TransactWriteItems ledger: transaction conflicts persisted"
    assert len(sleeps) == RECORD_ATTEMPTS - 1


def test_an_already_recorded_certificate_is_not_recorded_again(
    stubbed: tuple[Ledger, Stubber], sleeps: list[float]
) -> None:
    ledger, stub = stubbed
    cancelled(stub, "ConditionalCheckFailed", "TransactionConflict")
    with stub:
        assert ledger.record(ENTRY) is False
    assert sleeps == []


@pytest.mark.parametrize("codes", [("ValidationError", "None"), ("None", "ItemCollectionSizeLimitExceeded"), ("None",)])
def test_a_cancellation_for_another_reason_is_an_error_at_once(
    stubbed: tuple[Ledger, Stubber], sleeps: list[float], codes: tuple[str, ...]
) -> None:
    ledger, stub = stubbed
    cancelled(stub, *codes)
    with stub, pytest.raises(AwsError) as failed:
        ledger.record(ENTRY)
    assert not isinstance(failed.value, RetryableError)
    assert str(failed.value) == "TransactWriteItems ledger: TransactionCanceledException"
    assert sleeps == []


def test_a_throttled_call_that_is_not_a_cancellation_is_not_retried_here(
    stubbed: tuple[Ledger, Stubber], sleeps: list[float]
) -> None:
    ledger, stub = stubbed
    stub.add_client_error("transact_write_items", "InternalServerError", response_meta={})
    with stub, pytest.raises(AwsError) as failed:
        ledger.record(ENTRY)
    stub.assert_no_pending_responses()
    assert str(failed.value) == "TransactWriteItems ledger: InternalServerError"
    assert sleeps == []

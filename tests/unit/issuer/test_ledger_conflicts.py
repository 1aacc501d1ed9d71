"""Ledger.record through DynamoDB transaction conflicts (botocore Stubber: fault injection)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

import certrotor.aws.ledger as ledger_module
from certrotor.aws.ledger import RECORD_ATTEMPTS, Ledger, LedgerEntry
from certrotor.errors import RetryableError

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


def conflict(stub: Stubber) -> None:
    stub.add_client_error(
        "transact_write_items",
        "TransactionCanceledException",
        response_meta={},
        modeled_fields={"CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]},
    )


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> tuple[Ledger, Stubber]:
    monkeypatch.setattr(ledger_module.time, "sleep", lambda _: None)
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    return Ledger("ledger", client), Stubber(client)


def test_a_certificate_is_recorded_through_transaction_conflicts(stubbed: tuple[Ledger, Stubber]) -> None:
    # Given two concurrent issuances cancelling this one's transaction twice
    ledger, stub = stubbed
    conflict(stub)
    conflict(stub)
    stub.add_response("transact_write_items", {})
    # When it is recorded, then the third attempt records it
    with stub:
        assert ledger.record(ENTRY) is True
    stub.assert_no_pending_responses()


def test_persistent_conflicts_ask_the_caller_to_retry(stubbed: tuple[Ledger, Stubber]) -> None:
    # Given conflicts on every attempt
    ledger, stub = stubbed
    for _ in range(RECORD_ATTEMPTS):
        conflict(stub)
    # When it is recorded, then the answer is "try again" (a 503), not an internal error
    with stub, pytest.raises(RetryableError):
        ledger.record(ENTRY)

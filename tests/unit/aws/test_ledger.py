"""The issuance ledger against DynamoDB as moto models it in process (no
server, no socket): what each call stores and reads back, paging, the
conditions that keep it exact, and errors named by the call that failed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from certrotor.aws.ledger import (
    COUNT_SHARDS,
    RATE_TTL,
    REQUEST_TTL,
    Ledger,
    LedgerEntry,
    count_shard,
    ledger_table_definition,
)
from certrotor.errors import AwsError, NotFoundError

CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
OTHER_CA = CA.replace("1111", "9999")
NOW = dt.datetime(2030, 1, 1, 12, 0, 30, tzinfo=dt.UTC)
TABLE = "ledger"


def entry(serial: str, **overrides: Any) -> LedgerEntry:
    fields: dict[str, Any] = {
        "ca_arn": CA,
        "serial": serial,
        "principal": "arn:aws:iam::123456789012:role/orders-task",
        "names": ("orders.internal", "orders.svc.internal"),
        "not_after": "2030-01-08T00:00:00+00:00",
        "request_id": f"r-{serial}",
        "certificate_arn": f"{CA}/certificate/{serial}",
        "issued_at": "2030-01-01T00:00:00+00:00",
        "source": "issue-now",
    }
    fields.update(overrides)
    return LedgerEntry(**fields)


class Paging:
    """The real client, with every Query limited to `page` items, so each
    answer but the last carries a LastEvaluatedKey."""

    def __init__(self, client: Any, page: int = 2) -> None:
        self._client = client
        self._page = page
        self.queries = 0

    def query(self, **kwargs: Any) -> Any:
        self.queries += 1
        return self._client.query(**kwargs, Limit=self._page)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        made = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
        made.create_table(**ledger_table_definition(TABLE))
        yield made


@pytest.fixture
def ledger(client: Any) -> Ledger:
    return Ledger(TABLE, client)


def raw(client: Any, pk: str, sk: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = client.get_item(
        TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    ).get("Item")
    return found


def test_a_certificate_is_recorded_once_and_read_back_whole(ledger: Ledger, client: Any) -> None:
    first = entry("0a")
    assert ledger.record(first) is True
    assert ledger.get(CA, "0a") == first
    assert ledger.entries(CA) == [first]
    assert ledger.count(CA) == 1
    # A retry of the same record changes nothing.
    assert ledger.record(first) is False
    assert ledger.record(entry("0a", request_id="another")) is False
    assert ledger.get(CA, "0a") == first
    assert ledger.count(CA) == 1
    # Its counter shard is the one its serial hashes to.
    shard = raw(client, f"CA#{CA}", count_shard("0a"))
    assert shard is not None and shard["issued"] == {"N": "1"}
    item = raw(client, f"CA#{CA}", "CERT#0a")
    assert item is not None and item["names"] == {"L": [{"S": "orders.internal"}, {"S": "orders.svc.internal"}]}


def test_an_entry_without_names_or_source_reads_back_with_the_defaults(ledger: Ledger, client: Any) -> None:
    ledger.record(entry("0b", names=()))
    client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"CA#{CA}"}, "sk": {"S": "CERT#0b"}},
        UpdateExpression="REMOVE #s, #n",
        ExpressionAttributeNames={"#s": "source", "#n": "names"},
    )
    found = ledger.get(CA, "0b")
    assert found is not None and (found.names, found.source) == ((), "csr")
    assert (found.revoked_at, found.revocation_reason) == (None, None)


def test_counts_are_per_ca_and_exact_across_every_shard(client: Any) -> None:
    paging = Paging(client, page=5)
    ledger = Ledger(TABLE, paging)
    serials = [f"{i:04x}" for i in range(24)]
    for serial in serials:
        assert ledger.record(entry(serial)) is True
    ledger.record(entry("ff", ca_arn=OTHER_CA))
    assert len({count_shard(s) for s in serials}) > 1
    assert all(count_shard(s).startswith("COUNT#") for s in serials)
    assert {int(count_shard(s)[6:]) for s in serials} <= set(range(COUNT_SHARDS))
    paging.queries = 0
    assert ledger.count(CA) == 24
    # The shards came back over several pages.
    assert paging.queries > 1
    assert ledger.count(OTHER_CA) == 1
    assert ledger.count(CA.replace("1111", "5555")) == 0


def test_entries_are_read_over_every_page_and_only_the_cas_certificates(client: Any) -> None:
    paging = Paging(client, page=2)
    ledger = Ledger(TABLE, paging)
    for serial in ("01", "02", "03", "04", "05"):
        ledger.record(entry(serial))
    ledger.record(entry("06", ca_arn=OTHER_CA))
    ledger.remember_request(CA, "token-1", f"{CA}/certificate/x", NOW)
    paging.queries = 0
    assert [e.serial for e in ledger.entries(CA)] == ["01", "02", "03", "04", "05"]
    assert paging.queries == 3
    assert [e.serial for e in ledger.entries(OTHER_CA)] == ["06"]


def test_an_unknown_serial_is_none(ledger: Ledger) -> None:
    assert ledger.get(CA, "0a") is None
    assert ledger.revocation(CA, "0a") is None


def test_a_revocation_is_recorded_on_its_own_item_and_on_the_certificate(ledger: Ledger, client: Any) -> None:
    ledger.record(entry("0a"))
    ledger.record_revocation_intent(CA, "0a", "KEY_COMPROMISE", NOW)
    # Asked for, not confirmed: not a revocation yet.
    assert ledger.revocation(CA, "0a") is None
    intent = raw(client, f"CA#{CA}", "REVOKED#0a")
    assert intent is not None
    assert {k: v["S"] for k, v in intent.items() if k not in ("pk", "sk")} == {
        "requested_at": NOW.isoformat(),
        "revocation_reason": "KEY_COMPROMISE",
        "ca_arn": CA,
        "serial": "0a",
        "revocation_state": "requested",
    }
    later = NOW + dt.timedelta(seconds=5)
    ledger.mark_revoked(CA, "0a", "KEY_COMPROMISE", later)
    assert ledger.revocation(CA, "0a") == (later.isoformat(), "KEY_COMPROMISE")
    done = raw(client, f"CA#{CA}", "REVOKED#0a")
    assert done is not None and done["revocation_state"] == {"S": "revoked"}
    assert done["serial"] == {"S": "0a"} and done["ca_arn"] == {"S": CA}
    revoked = ledger.get(CA, "0a")
    assert revoked is not None
    assert (revoked.revoked_at, revoked.revocation_reason) == (later.isoformat(), "KEY_COMPROMISE")
    # A confirmed revocation takes no new intent and is never withdrawn.
    with pytest.raises(AwsError, match=r"^UpdateItem ledger revocation intent: ConditionalCheckFailedException"):
        ledger.record_revocation_intent(CA, "0a", "SUPERSEDED", later)
    ledger.withdraw_revocation_intent(CA, "0a")
    assert ledger.revocation(CA, "0a") == (later.isoformat(), "KEY_COMPROMISE")


def test_a_refused_revocation_withdraws_its_intent(ledger: Ledger, client: Any) -> None:
    ledger.record(entry("0a"))
    ledger.record_revocation_intent(CA, "0a", "SUPERSEDED", NOW)
    ledger.withdraw_revocation_intent(CA, "0a")
    assert raw(client, f"CA#{CA}", "REVOKED#0a") is None
    assert ledger.revocation(CA, "0a") is None
    # Withdrawing again (nothing there) is fine.
    ledger.withdraw_revocation_intent(CA, "0a")


def test_a_certificate_the_ledger_did_not_issue_gets_only_a_revocation_item(ledger: Ledger, client: Any) -> None:
    ledger.mark_revoked(CA, "0c", "SUPERSEDED", NOW)
    assert ledger.revocation(CA, "0c") == (NOW.isoformat(), "SUPERSEDED")
    assert ledger.get(CA, "0c") is None
    assert raw(client, f"CA#{CA}", "CERT#0c") is None
    assert ledger.count(CA) == 0


def test_the_first_certificate_remembered_for_a_token_is_kept(ledger: Ledger, client: Any) -> None:
    assert ledger.find_request(CA, "token-1") is None
    assert ledger.remember_request(CA, "token-1", "arn:first", NOW) == "arn:first"
    assert ledger.remember_request(CA, "token-1", "arn:second", NOW) == "arn:first"
    assert ledger.find_request(CA, "token-1") == "arn:first"
    assert ledger.find_request(OTHER_CA, "token-1") is None
    item = raw(client, f"CA#{CA}", "REQ#token-1")
    assert item is not None
    assert item["expires_at"] == {"N": str(int((NOW + REQUEST_TTL).timestamp()))}
    assert dt.timedelta(days=7) == REQUEST_TTL


def test_the_rate_counts_each_minute_up_to_the_limit(ledger: Ledger, client: Any) -> None:
    principal = "arn:aws:iam::123456789012:role/orders-task"
    assert [ledger.take_rate_slot(principal, 2, NOW) for _ in range(3)] == [True, True, False]
    # Another principal, and the next minute, count apart.
    assert ledger.take_rate_slot(principal + "-2", 2, NOW) is True
    next_minute = NOW + dt.timedelta(seconds=30)
    assert ledger.take_rate_slot(principal, 2, next_minute) is True
    minute = int(NOW.timestamp()) // 60
    item = raw(client, f"RATE#{principal}", f"MIN#{minute}")
    assert item is not None
    assert item["requests"] == {"N": "2"}
    assert item["expires_at"] == {"N": str(int((NOW + RATE_TTL).timestamp()))}
    assert dt.timedelta(minutes=10) == RATE_TTL
    assert ledger.take_rate_slot(principal, 1, NOW + dt.timedelta(minutes=5)) is True
    assert ledger.take_rate_slot(principal, 1, NOW + dt.timedelta(minutes=5)) is False


def test_every_call_on_a_missing_table_names_what_failed(client: Any) -> None:
    ledger = Ledger("no-such-table", client)
    calls = [
        (lambda: ledger.record(entry("0a")), "TransactWriteItems ledger"),
        (lambda: ledger.count(CA), "Query ledger count"),
        (lambda: ledger.get(CA, "0a"), "GetItem ledger certificate"),
        (lambda: ledger.entries(CA), "Query ledger"),
        (lambda: ledger.record_revocation_intent(CA, "0a", "SUPERSEDED", NOW), "UpdateItem ledger revocation intent"),
        (lambda: ledger.withdraw_revocation_intent(CA, "0a"), "DeleteItem ledger revocation intent"),
        (lambda: ledger.mark_revoked(CA, "0a", "SUPERSEDED", NOW), "UpdateItem ledger revoke"),
        (lambda: ledger.revocation(CA, "0a"), "GetItem ledger revocation"),
        (lambda: ledger.find_request(CA, "t"), "GetItem ledger request"),
        (lambda: ledger.remember_request(CA, "t", "arn", NOW), "PutItem ledger request"),
        (lambda: ledger.take_rate_slot("p", 1, NOW), "UpdateItem ledger rate"),
    ]
    for call, what in calls:
        with pytest.raises(NotFoundError) as failed:
            call()
        assert str(failed.value) == f"{what}: not found (ResourceNotFoundException)"


def test_a_certificate_update_failing_after_the_revocation_item_is_reported(ledger: Ledger, client: Any) -> None:
    class FailSecondUpdate:
        def __init__(self) -> None:
            self.updates = 0

        def update_item(self, **kwargs: Any) -> Any:
            self.updates += 1
            if self.updates == 2:
                kwargs["TableName"] = "no-such-table"
            return client.update_item(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

    failing = Ledger(TABLE, FailSecondUpdate())
    with pytest.raises(NotFoundError, match=r"^UpdateItem ledger revoke: not found"):
        failing.mark_revoked(CA, "0a", "SUPERSEDED", NOW)


def test_the_table_definition_matches_the_keys_the_ledger_uses() -> None:
    definition = ledger_table_definition("t")
    assert definition == {
        "TableName": "t",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def test_every_read_is_strongly_consistent(client: Any) -> None:
    class Recording:
        def __init__(self) -> None:
            self.reads: list[tuple[str, Any]] = []

        def get_item(self, **kwargs: Any) -> Any:
            self.reads.append(("GetItem", kwargs.get("ConsistentRead")))
            return client.get_item(**kwargs)

        def query(self, **kwargs: Any) -> Any:
            self.reads.append(("Query", kwargs.get("ConsistentRead")))
            return client.query(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

    recording = Recording()
    ledger = Ledger(TABLE, recording)
    ledger.record(entry("0a"))
    ledger.get(CA, "0a")
    ledger.entries(CA)
    ledger.count(CA)
    ledger.revocation(CA, "0a")
    ledger.find_request(CA, "t")
    ledger.remember_request(CA, "t", "arn:first", NOW)
    ledger.remember_request(CA, "t", "arn:second", NOW)
    assert len(recording.reads) == 6
    assert all(consistent is True for _, consistent in recording.reads)

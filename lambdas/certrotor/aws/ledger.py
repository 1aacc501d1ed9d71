"""The issuance ledger in DynamoDB: every certificate the issuer paid for.

One table, items keyed by partition `pk` and sort key `sk`:
- `CA#<ca arn>` / `CERT#<serial>`: one issued certificate (serial, CA,
  principal, names, not_after, request id; revoked_at/reason once revoked);
- `CA#<ca arn>` / `COUNT#<nn>`: the CA's certificate count in COUNT_SHARDS
  shards; each certificate increments the shard its serial hashes to, in the
  same TransactWriteItems that adds its item (so the sum is exactly the number
  of items, even under retries). DynamoDB cancels concurrent transactions on
  one item (TransactionConflict): shards keep concurrent issuances apart where
  one counter item would make them cancel each other;
- `CA#<ca arn>` / `REQ#<token>`: the certificate ARN IssueCertificate gave
  for an idempotency token, written before waiting for the certificate, so
  a retry after a timeout or throttled GetCertificate never issues again;
- `RATE#<principal>` / `MIN#<epoch minute>`: a per-minute request counter,
  expired by DynamoDB's TTL on `expires_at`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from certrotor.aws.clients import default_client
from certrotor.aws.errors import aws_call, error_code, translate
from certrotor.errors import RetryableError

# Attempts to record an issued certificate through transaction conflicts.
RECORD_ATTEMPTS = 5
_TRANSIENT_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}

PK = "pk"
SK = "sk"
TTL_ATTRIBUTE = "expires_at"
COUNT_SK = "COUNT"  # the shards' sort keys start with it (a ledger from before sharding has one "COUNT")
COUNT_SHARDS = 32
# Pending-request items outlive any retry a client makes, then go.
REQUEST_TTL = dt.timedelta(days=7)
RATE_TTL = dt.timedelta(minutes=10)


def ca_key(ca_arn: str) -> str:
    return f"CA#{ca_arn}"


def count_shard(serial: str) -> str:
    """The counter shard a certificate increments: fixed by its serial, so a
    retried record hits the same shard (and its conditional put refuses it)."""
    index = int.from_bytes(hashlib.sha256(serial.encode()).digest()[:4], "big") % COUNT_SHARDS
    return f"{COUNT_SK}#{index:02d}"


@dataclass(frozen=True)
class LedgerEntry:
    """One issued certificate, as recorded (never key material)."""

    ca_arn: str
    serial: str
    principal: str
    names: tuple[str, ...]
    not_after: str
    request_id: str
    certificate_arn: str
    issued_at: str
    revoked_at: str | None = None
    revocation_reason: str | None = None
    source: str = "csr"


def _entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        ca_arn=item["ca_arn"]["S"],
        serial=item["serial"]["S"],
        principal=item["principal"]["S"],
        names=tuple(v["S"] for v in item.get("names", {}).get("L", [])),
        not_after=item["not_after"]["S"],
        request_id=item["request_id"]["S"],
        certificate_arn=item["certificate_arn"]["S"],
        issued_at=item["issued_at"]["S"],
        revoked_at=item.get("revoked_at", {}).get("S"),
        revocation_reason=item.get("revocation_reason", {}).get("S"),
        source=item.get("source", {}).get("S", "csr"),
    )


class Ledger:
    """Reads and writes the ledger table; errors become certrotor errors."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client or default_client("dynamodb")

    # -- certificates -------------------------------------------------------

    def record(self, entry: LedgerEntry) -> bool:
        """Add the certificate and count it, atomically; False when it is
        already recorded (a retry), in which case nothing changes."""
        item: dict[str, Any] = {
            PK: {"S": ca_key(entry.ca_arn)},
            SK: {"S": f"CERT#{entry.serial}"},
            "ca_arn": {"S": entry.ca_arn},
            "serial": {"S": entry.serial},
            "principal": {"S": entry.principal},
            "names": {"L": [{"S": n} for n in entry.names]},
            "not_after": {"S": entry.not_after},
            "request_id": {"S": entry.request_id},
            "certificate_arn": {"S": entry.certificate_arn},
            "issued_at": {"S": entry.issued_at},
            "source": {"S": entry.source},
        }
        items = [
            {"Put": {"TableName": self.table_name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {PK: {"S": ca_key(entry.ca_arn)}, SK: {"S": count_shard(entry.serial)}},
                    "UpdateExpression": "ADD issued :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
        # Concurrent issuances that hash to one shard still conflict now and
        # then (TransactionConflict, which botocore does not retry). The
        # certificate is already paid for: retry here so it is recorded, and
        # answer "try again" (not an error) if it still is not.
        attempt = 0
        while True:
            try:
                self._client.transact_write_items(TransactItems=items)
                return True
            except ClientError as exc:
                reasons = {r.get("Code") for r in exc.response.get("CancellationReasons") or []}
                cancelled = error_code(exc) == "TransactionCanceledException"
                if cancelled and "ConditionalCheckFailed" in reasons:
                    return False
                if not (cancelled and reasons & _TRANSIENT_REASONS):
                    raise translate(exc, "TransactWriteItems ledger") from exc
                if attempt + 1 == RECORD_ATTEMPTS:
                    raise RetryableError("TransactWriteItems ledger: transaction conflicts persisted") from exc
                time.sleep(0.05 * 2**attempt * (0.5 + random.random()))
                attempt += 1

    def count(self, ca_arn: str) -> int:
        """Certificates recorded for the CA: the sum of its counter shards
        (one strongly consistent Query; at most COUNT_SHARDS + 1 small items)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :count)",
            "ExpressionAttributeValues": {":pk": {"S": ca_key(ca_arn)}, ":count": {"S": COUNT_SK}},
            "ProjectionExpression": "issued",
            "ConsistentRead": True,
        }
        total = 0
        while True:
            with aws_call("Query ledger count"):
                resp = self._client.query(**kwargs)
            total += sum(int(item.get("issued", {}).get("N", "0")) for item in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return total
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def get(self, ca_arn: str, serial: str) -> LedgerEntry | None:
        with aws_call("GetItem ledger certificate"):
            resp = self._client.get_item(
                TableName=self.table_name,
                Key={PK: {"S": ca_key(ca_arn)}, SK: {"S": f"CERT#{serial}"}},
                ConsistentRead=True,
            )
        item = resp.get("Item")
        return _entry(item) if item else None

    def entries(self, ca_arn: str) -> list[LedgerEntry]:
        """Every certificate recorded for the CA (for operators and tests)."""
        found: list[LedgerEntry] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :cert)",
            "ExpressionAttributeValues": {":pk": {"S": ca_key(ca_arn)}, ":cert": {"S": "CERT#"}},
            "ConsistentRead": True,
        }
        while True:
            with aws_call("Query ledger"):
                resp = self._client.query(**kwargs)
            found += [_entry(item) for item in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return found
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def record_revocation_intent(self, ca_arn: str, serial: str, reason: str, at: dt.datetime) -> None:
        """Before RevokeCertificate: an item in state "requested", so that a
        revocation the CA made but the ledger did not confirm is still on
        record (the same command, run again, confirms it)."""
        with aws_call("UpdateItem ledger revocation intent"):
            self._client.update_item(
                TableName=self.table_name,
                Key={PK: {"S": ca_key(ca_arn)}, SK: {"S": f"REVOKED#{serial}"}},
                UpdateExpression="SET requested_at = :at, revocation_reason = :reason, ca_arn = :ca, "
                "serial = :serial, revocation_state = :state",
                ConditionExpression="attribute_not_exists(revoked_at)",
                ExpressionAttributeValues={
                    ":at": {"S": at.isoformat()},
                    ":reason": {"S": reason},
                    ":ca": {"S": ca_arn},
                    ":serial": {"S": serial},
                    ":state": {"S": "requested"},
                },
            )

    def withdraw_revocation_intent(self, ca_arn: str, serial: str) -> None:
        """The CA refused the revocation: remove the intent (never a confirmed one)."""
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key={PK: {"S": ca_key(ca_arn)}, SK: {"S": f"REVOKED#{serial}"}},
                ConditionExpression="revocation_state = :state",
                ExpressionAttributeValues={":state": {"S": "requested"}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc, "DeleteItem ledger revocation intent") from exc

    def mark_revoked(self, ca_arn: str, serial: str, reason: str, at: dt.datetime) -> None:
        """Record a revocation; a certificate the ledger did not issue (one a
        rotation issued) gets an item that says only that it was revoked."""
        with aws_call("UpdateItem ledger revoke"):
            self._client.update_item(
                TableName=self.table_name,
                Key={PK: {"S": ca_key(ca_arn)}, SK: {"S": f"REVOKED#{serial}"}},
                UpdateExpression=(
                    "SET revoked_at = :at, revocation_reason = :reason, ca_arn = :ca, serial = :serial, "
                    "revocation_state = :state"
                ),
                ExpressionAttributeValues={
                    ":at": {"S": at.isoformat()},
                    ":reason": {"S": reason},
                    ":ca": {"S": ca_arn},
                    ":serial": {"S": serial},
                    ":state": {"S": "revoked"},
                },
            )
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={PK: {"S": ca_key(ca_arn)}, SK: {"S": f"CERT#{serial}"}},
                UpdateExpression="SET revoked_at = :at, revocation_reason = :reason",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":at": {"S": at.isoformat()}, ":reason": {"S": reason}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc, "UpdateItem ledger revoke") from exc

    def revocation(self, ca_arn: str, serial: str) -> tuple[str, str] | None:
        """(revoked_at, reason) when the serial was revoked, else None."""
        with aws_call("GetItem ledger revocation"):
            resp = self._client.get_item(
                TableName=self.table_name,
                Key={PK: {"S": ca_key(ca_arn)}, SK: {"S": f"REVOKED#{serial}"}},
                ConsistentRead=True,
            )
        item = resp.get("Item")
        if not item or "revoked_at" not in item:
            return None  # never revoked, or only asked for (an intent not confirmed)
        return item["revoked_at"]["S"], item["revocation_reason"]["S"]

    # -- requests in flight ---------------------------------------------------

    def find_request(self, ca_arn: str, token: str) -> str | None:
        """The certificate ARN already issued for this idempotency token."""
        with aws_call("GetItem ledger request"):
            resp = self._client.get_item(
                TableName=self.table_name,
                Key={PK: {"S": ca_key(ca_arn)}, SK: {"S": f"REQ#{token}"}},
                ConsistentRead=True,
            )
        item = resp.get("Item")
        return item["certificate_arn"]["S"] if item else None

    def remember_request(self, ca_arn: str, token: str, certificate_arn: str, now: dt.datetime) -> str:
        """Store the ARN for the token unless one is stored; returns the stored one."""
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    PK: {"S": ca_key(ca_arn)},
                    SK: {"S": f"REQ#{token}"},
                    "certificate_arn": {"S": certificate_arn},
                    TTL_ATTRIBUTE: {"N": str(int((now + REQUEST_TTL).timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return self.find_request(ca_arn, token) or certificate_arn
            raise translate(exc, "PutItem ledger request") from exc
        return certificate_arn

    # -- rate ---------------------------------------------------------------

    def take_rate_slot(self, principal: str, limit: int, now: dt.datetime) -> bool:
        """Count one request in the principal's current minute; False (and
        nothing counted) when the minute already holds `limit` requests."""
        minute = int(now.timestamp()) // 60
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={PK: {"S": f"RATE#{principal}"}, SK: {"S": f"MIN#{minute}"}},
                UpdateExpression="ADD requests :one SET expires_at = :ttl",
                ConditionExpression="attribute_not_exists(requests) OR requests < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":ttl": {"N": str(int((now + RATE_TTL).timestamp()))},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, "UpdateItem ledger rate") from exc
        return True


def ledger_table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments matching the CDK table (for local mode)."""
    return {
        "TableName": table_name,
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": PK, "AttributeType": "S"},
            {"AttributeName": SK, "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }

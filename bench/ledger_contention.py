"""The issuer's ledger under concurrent issuance: the sharded certificate
count against one counter item per CA, side by side in one run.

    .venv/bin/python bench/ledger_contention.py [--issuances 400] [--concurrency 16] [--hold-ms 20]

Each issuance records its certificate with certrotor's real `Ledger.record`
(one TransactWriteItems: put the certificate's item if new, add 1 to a
counter item; retried through TransactionConflict up to RECORD_ATTEMPTS
times with backoff, then "try again", which the issuer answers with 503),
from `--concurrency` threads at once. `Ledger.count` and `Ledger.entries`
then read the ledger back.

DynamoDB here is a model (DynamoDBModel below), not the emulator: the
emulator applies transactions one after another and never reports
TransactionConflict, and its per-transaction table copy, queued, would be
what this measured. The model does what DynamoDB documents for
TransactWriteItems: a transaction is in flight for `--hold-ms`, holding its
items; another transaction touching one of them meanwhile is cancelled
(TransactionCanceledException, reason TransactionConflict, per item); a
failed condition cancels it with ConditionalCheckFailed; otherwise all its
writes apply atomically. It answers only the request shapes Ledger sends and
refuses any other.

Two layouts of the count, each on its own CA's partition:
- sharded: the ledger as shipped, COUNT_SHARDS counter items per CA, the
  one a certificate increments chosen by its serial;
- single item: the same code with COUNT_SHARDS set to 1, so every issuance
  increments one counter item per CA (the layout before sharding, modelled
  by the shard count; its sort key is COUNT#00 rather than COUNT).

Per layout: transactions sent and cancelled by conflicts, issuances that
failed (503), p50/p95 of a record, issuances per second, and whether the
ledger holds each recorded certificate exactly once with the count equal to
the items. The last line is one line a script can read.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

import certrotor.aws.ledger as ledger_module
from certrotor.aws.ledger import PK, SK, Ledger, LedgerEntry
from certrotor.errors import RetryableError

TABLE = "certrotor-ledger"
CA_PREFIX = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/"
_BEGINS_WITH = re.compile(r"^pk = (:\w+) AND begins_with\(sk, (:\w+)\)$")


def cancelled(reasons: list[str]) -> ClientError:
    """DynamoDB's answer to a cancelled transaction: one reason per item, in order."""
    return ClientError(
        {
            "Error": {
                "Code": "TransactionCanceledException",
                "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons "
                f"[{', '.join(reasons)}]",
            },
            "CancellationReasons": [{"Code": reason} for reason in reasons],
        },
        "TransactWriteItems",
    )


class DynamoDBModel:
    """The DynamoDB calls Ledger makes, with transaction conflicts (see the module docstring)."""

    def __init__(self, hold_seconds: float) -> None:
        self.hold_seconds = hold_seconds
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.transactions = 0
        self.conflicts = 0
        self._in_flight: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        writes = []
        for operation in TransactItems:
            ((kind, body),) = operation.items()
            if body.get("TableName") != TABLE:
                raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "TransactWriteItems")
            key = body["Key"] if kind == "Update" else body["Item"]
            writes.append((kind, body, (key[PK]["S"], key[SK]["S"])))
        keys = [key for _, _, key in writes]
        with self._lock:
            self.transactions += 1
            held = [key in self._in_flight for key in keys]
            if any(held):
                self.conflicts += 1
                raise cancelled(["TransactionConflict" if hit else "None" for hit in held])
            self._in_flight.update(keys)
        try:
            time.sleep(self.hold_seconds)  # in flight: its items are held
            with self._lock:
                self._commit(writes)
        finally:
            with self._lock:
                self._in_flight.subtract(keys)
                self._in_flight += collections.Counter()  # drop keys no longer held
        return {}

    def _commit(self, writes: list[tuple[str, dict[str, Any], tuple[str, str]]]) -> None:
        reasons = []
        for kind, body, key in writes:
            condition = body.get("ConditionExpression")
            if kind == "Put" and condition not in (None, "attribute_not_exists(pk)"):
                raise NotImplementedError(f"the model does not evaluate {condition!r}")
            reasons.append("ConditionalCheckFailed" if condition and key in self.items else "None")
        if "ConditionalCheckFailed" in reasons:
            raise cancelled(reasons)
        for kind, body, key in writes:
            if kind == "Put":
                self.items[key] = dict(body["Item"])
                continue
            if kind != "Update" or body.get("UpdateExpression") != "ADD issued :one":
                raise NotImplementedError(f"the model does not apply {kind} {body.get('UpdateExpression')!r}")
            item = self.items.setdefault(key, {PK: {"S": key[0]}, SK: {"S": key[1]}})
            added = int(body["ExpressionAttributeValues"][":one"]["N"])
            item["issued"] = {"N": str(int(item.get("issued", {"N": "0"})["N"]) + added)}

    def query(self, **request: Any) -> dict[str, Any]:
        match = _BEGINS_WITH.match(request["KeyConditionExpression"])
        if request["TableName"] != TABLE or match is None:
            raise NotImplementedError(f"the model does not answer {request['KeyConditionExpression']!r}")
        values = request["ExpressionAttributeValues"]
        pk, prefix = values[match.group(1)]["S"], values[match.group(2)]["S"]
        with self._lock:
            found = [
                dict(item) for key, item in sorted(self.items.items()) if key[0] == pk and key[1].startswith(prefix)
            ]
        return {"Items": found, "Count": len(found)}


@dataclass(frozen=True)
class Outcome:
    label: str
    shards: int
    issuances: int
    recorded: int
    failed: int
    transactions: int
    conflicts: int
    latencies: list[float]
    seconds: float
    entries: int
    distinct: int
    counted: int

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else 0.0

    @property
    def consistent(self) -> bool:
        """Every recorded certificate in the ledger once, and counted once."""
        return self.entries == self.distinct == self.counted == self.recorded


def entry(ca_arn: str, number: int) -> LedgerEntry:
    serial = format(0x1000 + number, "x")
    return LedgerEntry(
        ca_arn=ca_arn,
        serial=serial,
        principal="arn:aws:iam::123456789012:role/orders-task",
        names=(f"orders-{number}.internal",),
        not_after="2030-01-08T00:00:00+00:00",
        request_id=f"bench-{number}",
        certificate_arn=f"{ca_arn}/certificate/{serial}",
        issued_at="2030-01-01T00:00:00+00:00",
    )


def run_layout(label: str, shards: int, issuances: int, concurrency: int, hold: float) -> Outcome:
    """`issuances` certificates recorded by `concurrency` threads through a
    fresh model, with COUNT_SHARDS set to `shards` meanwhile."""
    dynamodb = DynamoDBModel(hold)
    ledger = Ledger(TABLE, dynamodb)
    ca_arn = CA_PREFIX + label.replace(" ", "-")
    latencies: list[float] = []
    failed = 0
    lock = threading.Lock()

    def issue(number: int) -> None:
        nonlocal failed
        started = time.perf_counter()
        try:
            ledger.record(entry(ca_arn, number))
        except RetryableError:
            with lock:
                failed += 1
            return
        with lock:
            latencies.append(time.perf_counter() - started)

    saved = ledger_module.COUNT_SHARDS
    ledger_module.COUNT_SHARDS = shards
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            started = time.perf_counter()
            list(pool.map(issue, range(issuances)))
            seconds = time.perf_counter() - started
        recorded = ledger.entries(ca_arn)
        counted = ledger.count(ca_arn)
    finally:
        ledger_module.COUNT_SHARDS = saved
    return Outcome(
        label=label,
        shards=shards,
        issuances=issuances,
        recorded=len(latencies),
        failed=failed,
        transactions=dynamodb.transactions,
        conflicts=dynamodb.conflicts,
        latencies=latencies,
        seconds=seconds,
        entries=len(recorded),
        distinct=len({e.serial for e in recorded}),
        counted=counted,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--issuances", type=int, default=400, help="issuances per layout (default 400)")
    parser.add_argument("--concurrency", type=int, default=16, help="issuances in flight at once (default 16)")
    parser.add_argument(
        "--hold-ms", type=float, default=20.0, help="how long a transaction is in flight (default 20 ms)"
    )
    args = parser.parse_args()
    if args.issuances < 1 or args.concurrency < 1 or args.hold_ms < 0:
        parser.error("--issuances and --concurrency must be at least 1, --hold-ms at least 0")
    layouts = [("sharded", ledger_module.COUNT_SHARDS), ("single item", 1)]
    outcomes = [
        run_layout(label, shards, args.issuances, args.concurrency, args.hold_ms / 1000) for label, shards in layouts
    ]

    print(
        f"ledger contention: {args.issuances} issuances per layout, {args.concurrency} concurrent, "
        f"each transaction in flight {args.hold_ms:g} ms (DynamoDB model: "
        f"TransactionConflict on an item held by another), Ledger.record tries {ledger_module.RECORD_ATTEMPTS} times, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    header = (
        f"{'layout':<30} {'transactions':>12} {'conflicts':>9} {'failed (503)':>12} {'recorded':>8} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'per s':>6}  ledger"
    )
    print(header)
    for o in outcomes:
        name = f"{o.label} ({o.shards} counter item{'s' if o.shards != 1 else ''})"
        ledger_state = (
            "each once, count exact"
            if o.consistent
            else f"MISMATCH: {o.entries} items, {o.distinct} serials, count {o.counted}"
        )
        print(
            f"{name:<30} {o.transactions:>12} {o.conflicts:>9} {o.failed:>12} {o.recorded:>8} "
            f"{o.percentile(0.5):>7.0f} {o.percentile(0.95):>7.0f} {o.recorded / o.seconds:>6.1f}  {ledger_state}"
        )
    sharded, single = outcomes
    if sharded.conflicts:
        print(f"conflicts, single item / sharded: {single.conflicts / sharded.conflicts:.1f}x")
    print(
        f"ledger contention: sharded {sharded.conflicts} conflicts, single item {single.conflicts} conflicts, "
        f"{args.issuances} issuances, {args.concurrency} concurrent"
    )
    return 0 if all(o.consistent for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

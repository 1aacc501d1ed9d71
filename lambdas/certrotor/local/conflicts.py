"""DynamoDB's TransactionConflict, which the emulator never reports.

On AWS, a TransactWriteItems is cancelled (TransactionCanceledException,
reason TransactionConflict) when another transaction or write is in flight
on one of its items. moto applies transactions one after another and never
conflicts, so concurrency bugs around hot items cannot show locally. While a
`TransactionConflicts` is active, the in-process emulator's DynamoDB:

- holds each transaction's items for `hold_seconds` while it runs, and
  cancels any other transaction that touches one of them meanwhile;
- with `cancel_first`, also cancels the first attempt of every distinct
  transaction (deterministic fault injection: every write needs a retry).

For tests and benchmarks; it patches the emulator's backend class, so use it
with the in-process `Emulator` only, and one at a time.
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
import time
from typing import Any


def _item_key(op: dict[str, Any]) -> str:
    key = op.get("Key") or {name: value for name, value in (op.get("Item") or {}).items() if name in ("pk", "sk")}
    return json.dumps([op.get("TableName"), key], sort_keys=True)


class TransactionConflicts:
    """Use as a context manager around the work under test."""

    def __init__(self, hold_seconds: float = 0.02, cancel_first: bool = False) -> None:
        self.hold_seconds = hold_seconds
        self.cancel_first = cancel_first
        self.transactions = 0
        self.cancelled = 0
        self._lock = threading.Lock()
        self._busy: collections.Counter[str] = collections.Counter()
        self._seen: set[str] = set()
        self._original: Any = None

    def __enter__(self) -> TransactionConflicts:
        from moto.dynamodb.models import DynamoDBBackend

        self._original = DynamoDBBackend.transact_write_items
        original, conflicts = self._original, self

        def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
            conflicts.run(backend, transact_items, original)

        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign, assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        DynamoDBBackend.transact_write_items = self._original  # type: ignore[method-assign]

    def run(self, backend: Any, transact_items: list[dict[str, Any]], original: Any) -> None:
        from moto.dynamodb.exceptions import TransactionCanceledException

        keys = [_item_key(next(iter(item.values()))) for item in transact_items]
        identity = hashlib.sha256(json.dumps(transact_items, sort_keys=True).encode()).hexdigest()
        with self._lock:
            self.transactions += 1
            first = identity not in self._seen
            self._seen.add(identity)
            conflicting = [key in self._busy for key in keys]
            if any(conflicting) or (self.cancel_first and first):
                self.cancelled += 1
                reasons = [
                    ("TransactionConflict", "Transaction is ongoing for the item", None)
                    if hit or (self.cancel_first and first)
                    else (None, None, None)
                    for hit in conflicting
                ]
                raise TransactionCanceledException(reasons)
            self._busy.update(keys)
        try:
            time.sleep(self.hold_seconds)
            original(backend, transact_items)
        finally:
            with self._lock:
                self._busy.subtract(keys)
                self._busy += collections.Counter()  # drop keys no longer held

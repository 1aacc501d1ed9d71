"""The ledger under DynamoDB transaction conflicts (injected: the emulator
never reports them): concurrent issuances are all answered, each certificate
is recorded exactly once, and the count matches the entries."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from certrotor.aws.ledger import COUNT_SHARDS, count_shard
from certrotor.client.request import FunctionUrlClient
from certrotor.local.conflicts import TransactionConflicts
from certrotor.local.gateway import IssuerGateway

from .test_issuer_csr import csr_for, issued, ledger

CLIENTS = 6
PER_CLIENT = 2


def issue_concurrently(orders: FunctionUrlClient, prefix: str) -> list[tuple[int, str]]:
    csrs = [csr_for(f"{prefix}{i}.svc.internal") for i in range(CLIENTS * PER_CLIENT)]

    def one(csr: str) -> tuple[int, str]:
        answer = orders.call("POST", "/certificates", {"csr": csr, "validity_days": 7})
        return answer.status, str(answer.body.get("serial", answer.body))

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return list(pool.map(one, csrs))


@pytest.mark.parametrize(
    ("conflicts", "cancelled_at_least"),
    [
        pytest.param(TransactionConflicts(hold_seconds=0.02), 0, id="overlapping transactions conflict"),
        pytest.param(
            TransactionConflicts(hold_seconds=0.0, cancel_first=True),
            CLIENTS * PER_CLIENT,
            id="every first attempt conflicts",
        ),
    ],
)
def test_concurrent_issuances_through_transaction_conflicts_are_all_recorded_once(
    gateway: IssuerGateway, orders: FunctionUrlClient, conflicts: TransactionConflicts, cancelled_at_least: int
) -> None:
    # Given DynamoDB cancelling conflicting transactions
    # When six clients issue two certificates each at once
    with conflicts:
        results = issue_concurrently(orders, "c")

    # Then every request got its certificate (no 503), each recorded once, and counted
    statuses = [status for status, _ in results]
    serials = {serial for _, serial in results}
    assert statuses == [201] * len(results), results
    assert len(serials) == len(results)
    entries = ledger(gateway).entries(gateway.environment.ca_arn)
    assert sorted(e.serial for e in entries) == sorted(serials)
    assert ledger(gateway).count(gateway.environment.ca_arn) == len(results) == issued(gateway)
    assert conflicts.transactions >= len(results)
    assert conflicts.cancelled >= cancelled_at_least


def test_no_counter_item_is_shared_by_most_issuances() -> None:
    # Given 200 certificates' serials
    serials = [f"{n:040x}" for n in range(200)]

    # When each picks the counter shard its record increments
    shards = [count_shard(s) for s in serials]

    # Then a serial always picks the same shard (a retried record cannot count
    # twice), and the picks spread: no shard takes more than a tenth of them
    assert shards == [count_shard(s) for s in serials]
    assert COUNT_SHARDS >= 16
    assert max(shards.count(shard) for shard in set(shards)) <= len(serials) // 10

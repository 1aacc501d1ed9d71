"""On-demand issuance through the local Function URL gateway: requests per
second and p50/p99 latency with 1, 8 and 32 concurrent clients.

Every request is a real SigV4-signed HTTP POST of a fresh CSR to the
loopback gateway, which verifies the signature and runs the real issuer
handler (policy, Powertools idempotency and ledger in the emulated
DynamoDB, IssueCertificate in the emulated Private CA). Figures are for
this machine and the emulator, not AWS: they show where the handler's own
cost is, and that concurrency issues each certificate exactly once.

Everything runs in this one process, so CPU is split by thread: the
handler's thread (certrotor and its botocore clients) against the rest
(the emulator, the gateway, the clients). Then the highest level runs again
with DynamoDB transaction conflicts injected (the emulator never reports
them; see certrotor.local.conflicts), counting cancelled transactions and
failed requests.

    .venv/bin/python bench/issuance.py [--requests-per-client 8] [--levels 1,8,32]

The last line is a one-line summary.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from botocore.credentials import Credentials

from certrotor.aws.ledger import Ledger
from certrotor.client.request import FunctionUrlClient
from certrotor.config import KeyAlgorithm, load_config
from certrotor.local.conflicts import TransactionConflicts
from certrotor.local.emulator import Emulator
from certrotor.local.gateway import IssuerGateway
from certrotor.local.provision import DEFAULT_CONFIG, DEMO_ISSUER_POLICY, provision
from certrotor.pki.csr import build_csr
from certrotor.pki.keys import generate_key


@dataclass(frozen=True)
class Level:
    clients: int
    requests: int
    seconds: float
    latencies: list[float]
    failures: int
    handler_cpu: float = 0.0
    process_cpu: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000


class TimedHandler:
    """The real issuer handler, with the CPU time of the thread it runs on."""

    def __init__(self) -> None:
        from certrotor.handlers.issuer import lambda_handler

        self._handler = lambda_handler
        self._lock = threading.Lock()
        self.cpu = 0.0

    def __call__(self, event: object, context: object) -> object:
        started = time.thread_time()
        try:
            return self._handler(event, context)  # type: ignore[arg-type]
        finally:
            spent = time.thread_time() - started
            with self._lock:
                self.cpu += spent


def run_level(client: FunctionUrlClient, clients: int, per_client: int, timer: TimedHandler | None = None) -> Level:
    csrs = [
        build_csr(generate_key(KeyAlgorithm.EC_P256), f"b{i}.svc.internal", [f"b{i}.svc.internal"])
        for i in range(clients * per_client)
    ]

    def one(csr: str) -> float | None:
        started = time.perf_counter()
        try:
            answer = client.call("POST", "/certificates", {"csr": csr, "validity_days": 7})
        except Exception as exc:  # a timeout or a dropped connection is a failed request
            print(f"  request failed: {type(exc).__name__}", flush=True)
            return None
        if answer.status != 201:
            print(f"  request answered {answer.status}: {answer.body}", flush=True)
            return None
        return time.perf_counter() - started

    handler_before = timer.cpu if timer else 0.0
    cpu_before = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, csrs))
    seconds = time.perf_counter() - started
    latencies = [r for r in results if r is not None]
    return Level(
        clients,
        len(csrs),
        seconds,
        latencies,
        len(results) - len(latencies),
        (timer.cpu - handler_before) if timer else 0.0,
        time.process_time() - cpu_before,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests-per-client", type=int, default=8)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument(
        "--conflict-clients", type=int, default=8, help="concurrent clients of the run with conflicts injected"
    )
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

    policy = {**DEMO_ISSUER_POLICY, "rate_per_minute": 100_000}
    with Emulator() as emulator:
        environment = provision(emulator, load_config({**DEFAULT_CONFIG, "issuer_policies": [policy]}))
        timer = TimedHandler()
        with IssuerGateway(environment, handler=timer) as gateway:
            env = emulator.env()
            client = FunctionUrlClient(
                gateway.url, Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]), region=emulator.region
            )
            run_level(client, 1, 3)  # warm: cold-start wiring, first table writes
            warm = emulator.issued_certificates(environment.ca_arn)
            results = []
            for clients in levels:
                level = run_level(client, clients, args.requests_per_client, timer)
                results.append(level)
                print(
                    f"{clients:>2} concurrent clients: {level.requests} requests in {level.seconds:.2f}s, "
                    f"{level.rps:.1f} req/s, p50 {level.percentile(0.5):.0f} ms, p99 {level.percentile(0.99):.0f} ms, "
                    f"mean {statistics.mean(level.latencies) * 1000:.0f} ms, failures {level.failures}; "
                    f"CPU per request: certrotor handler {level.handler_cpu / level.requests * 1000:.0f} ms, "
                    f"emulator and the rest {(level.process_cpu - level.handler_cpu) / level.requests * 1000:.0f} ms",
                    flush=True,
                )
            top = args.conflict_clients
            with TransactionConflicts(hold_seconds=0.02) as conflicts:
                conflicted = run_level(client, top, args.requests_per_client, timer)
            print(
                f"{top:>2} concurrent clients with transaction conflicts injected: {conflicted.rps:.1f} req/s, "
                f"p50 {conflicted.percentile(0.5):.0f} ms, {conflicts.cancelled} of {conflicts.transactions} "
                f"transactions cancelled, failures {conflicted.failures}",
                flush=True,
            )
            results.append(conflicted)
            issued = emulator.issued_certificates(environment.ca_arn) - warm
            requested = sum(level.requests for level in results)
            ledger = Ledger(gateway.tables.ledger, emulator.client("dynamodb")).count(environment.ca_arn) - 3
            results.pop()  # the summary lists the plain levels
            print(f"certificates: requested {requested}, issued by Private CA {issued}, in the ledger {ledger}")
    summary = " | ".join(
        f"{level.clients} clients {level.rps:.1f} req/s p50 {level.percentile(0.5):.0f} ms "
        f"p99 {level.percentile(0.99):.0f} ms"
        for level in results
    )
    print(f"summary: {summary} | duplicates {issued - requested}")
    ok = issued == requested == ledger and not any(level.failures for level in (*results, conflicted))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Rotation benchmark on the embedded emulator.

Prints per-rotation latency (p50, p95) over N full rotations driven through
the real handler, the AWS API calls one rotation makes (by operation, counted
on the rotation function's own boto3 session), and key generation time per
algorithm. The emulator answers in microseconds where AWS takes milliseconds
(and Private CA seconds), so latencies here measure certrotor's own work.
Writes are the calls in Secrets Manager's shared 50 TPS write bucket
(PutSecretValue, UpdateSecretVersionStage). The last line is one a script
can read: calls and writes per rotation, and the p50 latency.

    python bench/rotation.py [--rotations 20] [--algorithm EC_prime256v1]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from certrotor.config import KeyAlgorithm, load_config
from certrotor.handlers import runtime
from certrotor.local.driver import RotationDriver
from certrotor.local.emulator import Emulator
from certrotor.local.provision import DEFAULT_CONFIG, provision
from certrotor.pki.keys import generate_key

KEYGEN_REPEATS = {
    KeyAlgorithm.EC_P256: 200,
    KeyAlgorithm.EC_P384: 100,
    KeyAlgorithm.RSA_2048: 10,
    KeyAlgorithm.RSA_3072: 4,
    KeyAlgorithm.RSA_4096: 3,
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class CallCounter:
    """Counts API calls made through a boto3 session, by service and operation."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.counts[f"{model.service_model.service_name}:{model.name}"] += 1


# Secrets Manager operations that share the account's 50 TPS write quota.
WRITE_OPERATIONS = {
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:CreateSecret",
    "secretsmanager:UpdateSecret",
    "secretsmanager:DeleteSecret",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
}


def bench_rotations(count: int, algorithm: str) -> tuple[float, float, float]:
    """Prints the figures; returns (calls, writes) per rotation and the p50 in ms."""
    data = {**DEFAULT_CONFIG, "sets": [{**DEFAULT_CONFIG["sets"][0], "key_algorithm": algorithm}]}
    counter = CallCounter()
    runtime._session().register("before-call", counter)
    with Emulator() as emulator:
        env = provision(emulator, load_config(data))
        name = env.config.sets[0].name
        driver = RotationDriver(env)
        driver.rotate(name)  # warm-up: imports and the function's cold start
        counter.counts.clear()
        seconds = []
        for _ in range(count):
            started = time.perf_counter()
            driver.rotate(name)
            seconds.append(time.perf_counter() - started)
    print(f"rotation latency over {count} rotations ({algorithm}, emulator, warm function):")
    print(
        f"  p50 {percentile(seconds, 0.5) * 1000:7.1f} ms   p95 {percentile(seconds, 0.95) * 1000:7.1f} ms"
        f"   mean {statistics.mean(seconds) * 1000:7.1f} ms"
    )
    total = sum(counter.counts.values())
    print(f"AWS API calls per rotation (made by the rotation function): {total / count:.1f}")
    for operation, calls in sorted(counter.counts.items()):
        print(f"  {operation:48s} {calls / count:5.1f}")
    writes = sum(n for op, n in counter.counts.items() if op in WRITE_OPERATIONS) / count
    print(f"writes in Secrets Manager's 50 TPS write bucket per rotation: {writes:.1f}")
    return total / count, writes, percentile(seconds, 0.5) * 1000


def bench_keygen() -> None:
    print("key generation time per algorithm:")
    for algorithm, repeats in KEYGEN_REPEATS.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            generate_key(algorithm)
            times.append(time.perf_counter() - started)
        print(f"  {algorithm.value:14s} median {statistics.median(times) * 1000:9.2f} ms  (n={repeats})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rotations", type=int, default=20)
    parser.add_argument("--algorithm", default=KeyAlgorithm.EC_P256.value, choices=[k.value for k in KeyAlgorithm])
    parser.add_argument("--skip-keygen", action="store_true")
    args = parser.parse_args(argv)
    if args.rotations < 1:
        parser.error("--rotations must be at least 1")
    calls, writes, p50 = bench_rotations(args.rotations, args.algorithm)
    if not args.skip_keygen:
        bench_keygen()
    print(f"rotation: {calls:g} calls, {writes:g} writes, p50 {p50:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

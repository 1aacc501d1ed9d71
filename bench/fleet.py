"""Fleet re-key benchmark on a simulated clock.

Drives certrotor's real rotation service (RotationService: the four steps,
real keys, real CSRs, real signatures, the testSecret handshake) for N sets
against in-memory Secrets Manager and Private CA fakes behind an emulator of
the account's quotas: token buckets per quota (Secrets Manager writes 50 TPS,
TagResource 50, RotateSecret 50, BatchGetSecretValue 100, reads 10,000;
IssueCertificate 25, GetCertificate 75), each answering ThrottlingException
when empty. Every call goes through certrotor's throttling backoff
(certrotor.aws.retry.ThrottleRetry) whose sleeps advance the simulated clock;
a step that stays throttled fails and is retried later, as Secrets Manager
does.

Pacing is the re-key state machine's: `certrotor.fleet.quotas.pacing` picks C
slots and a mean wait W from the calls per rotation measured on a first
rotation; each slot waits a random 1 to 2W-1 whole seconds, calls
RotateSecret, and the rotation runs. Q, the quota bound, is computed from the
calls per rotation measured over the whole run.

    python bench/fleet.py [--sets 10000] [--headroom 0.05] [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import heapq
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from certrotor.aws.errors import translate  # noqa: E402
from certrotor.aws.retry import ThrottleRetry  # noqa: E402
from certrotor.config import load_config  # noqa: E402
from certrotor.errors import CertrotorError  # noqa: E402
from certrotor.fleet.quotas import (  # noqa: E402
    ISSUE_CERTIFICATE_TPS,
    READ_TPS,
    ROTATE_SECRET_TPS,
    SECRETS_WRITE_TPS,
    TAG_RESOURCE_TPS,
    PerRotation,
    pacing,
)
from certrotor.layout.manifest import INITIAL_VALUE  # noqa: E402
from certrotor.local.ca import LocalCA  # noqa: E402
from certrotor.services.rotation import RotationRequest, RotationService  # noqa: E402
from tests.unit.rotation.fakes import FakeCA, FakeSecrets, FakeServices  # noqa: E402

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# Lambda's timeout for the rotation function less the handler's margin.
STEP_SECONDS = 280.0
# How long Secrets Manager waits before it retries a failed step, and how often.
STEP_RETRY_SECONDS = 60.0
STEP_ATTEMPTS = 5


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Bucket:
    """A token bucket: `rate` tokens per second, holding at most one second's."""

    def __init__(self, rate: float, clock: Clock) -> None:
        self.rate = rate
        self.tokens = rate
        self.clock = clock
        self.stamp = 0.0

    def take(self) -> bool:
        elapsed = max(0.0, self.clock.now - self.stamp)
        self.tokens = min(self.rate, self.tokens + elapsed * self.rate)
        self.stamp = max(self.stamp, self.clock.now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


THROTTLED = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}


class Quotas:
    """The account's buckets; calls counted by operation."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.buckets = {
            "write": Bucket(SECRETS_WRITE_TPS, clock),
            "tag": Bucket(TAG_RESOURCE_TPS, clock),
            "rotate": Bucket(ROTATE_SECRET_TPS, clock),
            "batch": Bucket(100.0, clock),
            "read": Bucket(READ_TPS, clock),
            "issue": Bucket(ISSUE_CERTIFICATE_TPS, clock),
            "get-certificate": Bucket(75.0, clock),
        }
        self.calls: collections.Counter[str] = collections.Counter()
        self.throttled = 0

    def call(self, operation: str, bucket: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.buckets[bucket].take():
            self.throttled += 1
            raise ClientError(THROTTLED, operation)  # type: ignore[arg-type]
        self.calls[operation] += 1
        return function(*args, **kwargs)


# Port method -> (AWS operation, quota bucket).
SECRET_CALLS = {
    "describe": ("DescribeSecret", "read"),
    "get": ("GetSecretValue", "read"),
    "find": ("GetSecretValue", "read"),
    "get_current_many": ("BatchGetSecretValue", "batch"),
    "put": ("PutSecretValue", "write"),
    "move_stage": ("UpdateSecretVersionStage", "write"),
    "remove_stage": ("UpdateSecretVersionStage", "write"),
    "tag": ("TagResource", "tag"),
}
CA_CALLS = {
    "issue": ("IssueCertificate", "issue"),
    "get": ("GetCertificate", "get-certificate"),
    "wait": ("GetCertificate", "get-certificate"),
}


class Throttled:
    """A fake port behind the quotas and certrotor's backoff: what the
    adapters over boto3 clients are in the rotation function."""

    def __init__(self, port: Any, calls: dict[str, tuple[str, str]], quotas: Quotas, retry: ThrottleRetry) -> None:
        self._port = port
        self._calls = calls
        self._quotas = quotas
        self._retry = retry

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._port, name)
        if name not in self._calls:
            return attribute
        operation, bucket = self._calls[name]

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return self._retry.call(self._quotas.call, operation, bucket, attribute, *args, **kwargs)
            except ClientError as exc:
                raise translate(exc, operation) from None

        return call


def build_fleet(count: int, secrets: FakeSecrets) -> Any:
    sets = [
        {
            "name": f"fleet/s{i:05d}",
            "common_name": f"s{i}.svc.internal",
            "dns_names": [f"s{i}.svc.internal"],
            "key_algorithm": "EC_prime256v1",
        }
        for i in range(count)
    ]
    config = load_config(
        {
            "ca": {
                "arn": "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/"
                + "0" * 8
                + "-0000-0000-0000-"
                + "0" * 12
            },
            "sets": sets,
        }
    )
    for cert_set in config.sets:
        secrets.create_secret(cert_set.name, INITIAL_VALUE, rotation_enabled=True)
        for name in cert_set.part_secret_names:
            secrets.create_secret(name, INITIAL_VALUE)
    return config


class VirtualTime:
    """Simulated time for many rotation functions at once: each rotation runs
    in its own thread, one thread at a time; a sleep hands control back to
    the scheduler, which runs whatever is due next, in time order."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._events: list[tuple[float, int, str, Any]] = []
        self._sequence = iter(range(10**12))
        self._yielded = threading.Event()

    def at(self, when: float, kind: str, payload: Any) -> None:
        heapq.heappush(self._events, (when, next(self._sequence), kind, payload))

    def sleep(self, seconds: float) -> None:
        """In a rotation thread: wake after `seconds` of simulated time."""
        wake = threading.Event()
        self.at(self.clock.now + seconds, "wake", wake)
        self._yielded.set()
        wake.wait()

    def spawn(self, work: Any) -> None:
        """In the scheduler: run `work` in a new thread until it sleeps or ends."""

        def body() -> None:
            try:
                work()
            finally:
                self._yielded.set()

        threading.Thread(target=body, daemon=True).start()
        self._wait_for_yield()

    def _wait_for_yield(self) -> None:
        self._yielded.wait()
        self._yielded.clear()

    def run(self, handle: Any) -> None:
        while self._events:
            when, _, kind, payload = heapq.heappop(self._events)
            self.clock.now = when
            if kind == "wake":
                payload.set()
                self._wait_for_yield()
            else:
                handle(kind, payload)


class Fleet:
    """The simulated account: fakes, quotas, and a rotation function."""

    def __init__(self, count: int, seed: int) -> None:
        self.clock = Clock()
        self.time = VirtualTime(self.clock)
        self.quotas = Quotas(self.clock)
        self.secrets = FakeSecrets()
        root = LocalCA.create_root("bench root")
        self.ca = FakeCA(root, root.create_subordinate("bench Private CA"))
        self.config = build_fleet(count, self.secrets)
        self.rng = random.Random(seed)
        self.failed = 0
        self.throttle_backoffs = 0

    def function(self) -> tuple[RotationService, ThrottleRetry]:
        """A rotation function instance: the real service over the fakes,
        behind the quotas and certrotor's throttling backoff."""
        retry = ThrottleRetry(sleep=self.time.sleep, rng=self.rng.random)
        service = RotationService(
            self.config,
            Throttled(self.secrets, SECRET_CALLS, self.quotas, retry),  # type: ignore[arg-type]
            Throttled(self.ca, CA_CALLS, self.quotas, retry),  # type: ignore[arg-type]
            FakeServices(),
        )
        return service, retry

    def rotate(self, name: str, token: str) -> None:
        """What Secrets Manager does after RotateSecret: invoke each step,
        invoking a failed step again later, a few times."""
        service, retry = self.function()
        for step in STEPS:
            for attempt in range(STEP_ATTEMPTS):
                invoked = self.clock.now
                retry.bind(lambda invoked=invoked: STEP_SECONDS - (self.clock.now - invoked))
                # By name: the fakes find a secret by name at once (an ARN is a scan).
                event = {"Step": step, "SecretId": name, "ClientRequestToken": token}
                try:
                    service.run(RotationRequest.parse(event), remaining_seconds=lambda: STEP_SECONDS)
                    break
                except CertrotorError:
                    if attempt == STEP_ATTEMPTS - 1:
                        self.failed += 1
                        return
                    self.time.sleep(STEP_RETRY_SECONDS)
        self.throttle_backoffs += retry.throttled


def rekey(fleet: Fleet, names: list[str], concurrency: int, wait_seconds: int, seed: int) -> float:
    """The state machine's Distributed Map on the simulated clock: C slots,
    each child waiting States.MathRandom(1, 2W) seconds, then RotateSecret
    (retried with full jitter while throttled, as its Retry says); returns
    the simulated seconds until the last rotation finished."""
    rng = random.Random(seed + 1)
    pending = collections.deque(names)
    finished = [0.0]

    def handle(kind: str, payload: Any) -> None:
        now = fleet.clock.now
        if kind == "child":
            if pending:
                fleet.time.at(now + rng.randint(1, 2 * wait_seconds - 1), "rotate-secret", (pending.popleft(), 0))
            return
        name, attempt = payload
        token = str(uuid.uuid4())
        try:
            fleet.quotas.call("RotateSecret", "rotate", fleet.secrets.stage_pending, name, token)
        except ClientError:
            fleet.time.at(now + rng.random() * min(64.0, 2.0**attempt), "rotate-secret", (name, attempt + 1))
            return
        fleet.time.at(now, "child", None)  # the child ends; its slot takes the next set

        def rotation() -> None:
            fleet.rotate(name, token)
            finished[0] = max(finished[0], fleet.clock.now)

        fleet.time.spawn(rotation)

    # Child executions start when Step Functions gets to them, not on a
    # shared tick: each slot's first child is offset by a fraction of a second.
    for _ in range(concurrency):
        fleet.time.at(rng.random(), "child", None)
    fleet.time.run(handle)
    return finished[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sets", type=int, default=10_000)
    parser.add_argument("--headroom", type=float, default=0.05, help="share of each quota left unused")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    wall = time.perf_counter()

    # Calibration: the calls of one rotation of a spare set (in the state
    # the fleet's sets are in) give the pacing.
    calibration = Fleet(1, args.seed)
    name = calibration.config.sets[0].name
    rekey(calibration, [name], 1, 1, args.seed)
    measured = PerRotation.from_counts(calibration.quotas.calls, 1)
    paced = pacing(measured, headroom=args.headroom)
    print(
        f"calibration: {measured.writes:.1f} writes, {measured.tags:.1f} tags, {measured.issues:.1f} issuances "
        f"per rotation -> pacing {paced.concurrency} slots, mean wait {paced.wait_seconds} s "
        f"({paced.rate:.2f} rotations/s, headroom {args.headroom:.0%})",
        flush=True,
    )

    fleet = Fleet(args.sets, args.seed)
    names = [s.name for s in fleet.config.sets]
    seconds = rekey(fleet, names, paced.concurrency, paced.wait_seconds, args.seed)
    per_rotation = PerRotation.from_counts(fleet.quotas.calls, args.sets)
    bound = per_rotation.bound()
    rate = args.sets / seconds
    extra = fleet.ca.issue_count - len({c.token for c in fleet.ca.calls})
    certificates = len(fleet.ca._issued)
    extra_certificates = certificates - (args.sets - fleet.failed)
    print(f"calls per rotation over the run: {per_rotation.writes:.2f} writes ({per_rotation.binding()} binds)")
    for operation, calls in sorted(fleet.quotas.calls.items()):
        print(f"  {operation:28s} {calls / args.sets:6.2f}")
    print(f"IssueCertificate retries answered from the idempotency token: {extra}")
    print(f"wall time {time.perf_counter() - wall:.1f} s for {args.sets} rotations")
    print(
        f"fleet: {args.sets} sets re-keyed in {seconds:.0f} s (simulated), {rate:.2f} rotations/s, "
        f"quota bound {bound:.2f} rotations/s, throttled {fleet.quotas.throttled}, failed {fleet.failed}, "
        f"extra certificates {extra_certificates}"
    )
    return 0 if fleet.failed == 0 and extra_certificates == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

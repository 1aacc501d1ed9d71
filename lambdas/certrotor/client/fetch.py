"""Fetch a certificate set from Secrets Manager and verify it, as a container
does at start.

The manifest is read at AWSCURRENT, then every part at the manifest's
VersionId (SetReader: one BatchGetSecretValue in the steady state); the set is
then proved with the same checks as testSecret, except the handshake: digests
and versions bind the parts, the key matches the certificate, the chain
verifies (to --ca-file's CA if given, else to the chain's own top
certificate) and the certificate is valid now and for `min_remaining` more.

Transient failures (throttling, connection errors) are retried with
exponential backoff and full jitter until a deadline; anything else fails at
once, so a task given a bad set exits quickly and ECS starts another.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import ReadTimeoutError

from certrotor.errors import DeadlineError, RetryableError
from certrotor.layout import AssembledSet
from certrotor.services.reader import SetReader, check_belongs
from certrotor.services.verify import VerifiedSet, trust_anchor, verify_set

T = TypeVar("T")

# Errors worth another attempt: certrotor's transient ones, and botocore's
# connection failures that reach us outside an adapter (credential fetches).
TRANSIENT = (RetryableError, BotoConnectionError, ReadTimeoutError)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class JitteredBackoff:
    """Exponential backoff with full jitter: attempt n waits a random time in
    [0, min(cap, first * factor**n)] (the AWS Architecture Blog's "full
    jitter": many tasks starting together do not retry in step)."""

    first: float = 0.2
    factor: float = 2.0
    cap: float = 5.0

    def ceiling(self, attempt: int) -> float:
        return float(min(self.cap, self.first * self.factor**attempt))


def retry_within(
    deadline_seconds: float,
    attempt: Callable[[], T],
    *,
    backoff: JitteredBackoff = JitteredBackoff(),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[float, float], float] = random.uniform,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
) -> T:
    """Call `attempt` until it returns, retrying TRANSIENT errors until
    `deadline_seconds` have passed; then raise DeadlineError with the last
    error. Other errors propagate at once. No wait overruns the deadline."""
    give_up_at = clock() + deadline_seconds
    tries = 0
    while True:
        try:
            return attempt()
        except TRANSIENT as exc:
            left = give_up_at - clock()
            if left <= 0:
                raise DeadlineError(
                    f"gave up after {deadline_seconds:g}s and {tries + 1} attempt(s): {_describe(exc)}"
                ) from exc
            delay = min(left, jitter(0.0, backoff.ceiling(tries)))
            if on_retry is not None:
                on_retry(tries + 1, delay, exc)
            tries += 1
            sleep(delay)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RetryableError):
        return str(exc)
    return f"connection failed ({type(exc).__name__})"


def verify_fetched(
    assembled: AssembledSet,
    name: str,
    *,
    anchor_pem: str | None = None,
    now: dt.datetime | None = None,
    min_remaining: dt.timedelta = dt.timedelta(0),
) -> VerifiedSet:
    """Prove an assembled set; `anchor_pem` is the CA to trust (else the
    chain's own top certificate)."""
    check_belongs(assembled.manifest, name)
    return verify_set(
        assembled,
        now=now or utc_now(),
        anchor=trust_anchor(anchor_pem) if anchor_pem else None,
        min_remaining=min_remaining,
    )


def fetch_set(
    reader: SetReader,
    name: str,
    *,
    anchor_pem: str | None = None,
    now: Callable[[], dt.datetime] = utc_now,
    min_remaining: dt.timedelta = dt.timedelta(0),
) -> VerifiedSet:
    """Read the set at AWSCURRENT (parts by the manifest's VersionId) and
    verify it; `reader.last.calls` then says how many AWS calls it took."""
    assembled = reader.read(name)
    return verify_fetched(assembled, name, anchor_pem=anchor_pem, now=now(), min_remaining=min_remaining)


def secrets_client(deadline_seconds: float, session: Any | None = None) -> Any:
    """A Secrets Manager client for the default credentials chain (the task
    role on ECS; AWS_ENDPOINT_URL is honoured). botocore's own retries are
    off: retry_within owns retrying, so the deadline holds. A botocore session
    (not boto3's): boto3 adds only import time to every container start."""
    import botocore.session
    from botocore.config import Config

    # One slow call must not eat the whole deadline: bound each by a part of it.
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=max(1.0, min(5.0, deadline_seconds)),
        read_timeout=max(1.0, min(10.0, deadline_seconds)),
    )
    return (session or botocore.session.get_session()).create_client("secretsmanager", config=config)

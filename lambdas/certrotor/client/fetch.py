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
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from certrotor.errors import DeadlineError, RetryableError
from certrotor.layout import AssembledSet
from certrotor.layout.manifest import check_belongs
from certrotor.record import record
from certrotor.services.verify import VerifiedSet, trust_anchor, verify_set

if TYPE_CHECKING:  # env mode reads no secret: neither is imported at its start
    from certrotor.ports import SecretReadPort
    from certrotor.services.reader import SetReader

T = TypeVar("T")


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth another attempt: certrotor's transient ones, and, when
    botocore is in use, its connection failures that reach us outside an
    adapter (credential fetches). Env mode and the awscrt reader never import
    botocore, so neither does this."""
    if "botocore" not in sys.modules:
        return (RetryableError,)
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ReadTimeoutError

    return (RetryableError, BotoConnectionError, ReadTimeoutError)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@record
class JitteredBackoff:
    """Exponential backoff with full jitter: attempt n waits a random time in
    [0, min(cap, first * factor**n)] (the AWS Architecture Blog's "full
    jitter": many tasks starting together do not retry in step)."""

    first: float = 0.2
    factor: float = 2.0
    cap: float = 5.0

    def ceiling(self, attempt: int) -> float:
        return float(min(self.cap, self.first * self.factor**attempt))


DEFAULT_BACKOFF = JitteredBackoff()


def retry_within(
    deadline_seconds: float,
    attempt: Callable[[], T],
    *,
    backoff: JitteredBackoff = DEFAULT_BACKOFF,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[float, float], float] = random.uniform,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
) -> T:
    """Call `attempt` until it returns, retrying transient errors until
    `deadline_seconds` have passed; then raise DeadlineError with the last
    error. Other errors propagate at once. No wait overruns the deadline."""
    give_up_at = clock() + deadline_seconds
    transient = transient_errors()
    tries = 0
    cause: BaseException | None = None
    while True:
        try:
            return attempt()
        except transient as exc:
            # A call refused for lack of time is not news: report what failed before it.
            if cause is None or not isinstance(exc, DeadlineError):
                cause = exc
            left = give_up_at - clock()
            if left <= 0 or isinstance(exc, DeadlineError):
                raise DeadlineError(
                    f"gave up after {deadline_seconds:g}s and {tries + 1} attempt(s): {_describe(cause)}"
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


# One call's connection attempt may take at most this long, and its wait
# for an answer at most READ_TIMEOUT (both shrink as the deadline nears).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
# Below this, a call has no chance of an answer; give up instead.
MIN_CALL_SECONDS = 0.05


def secret_reader(
    deadline_seconds: float, environ: Mapping[str, str], clock: Callable[[], float] = time.monotonic
) -> tuple[SecretReadPort, str]:
    """The reads of a container start, and how they are made: awscrt's SigV4
    signer over http.client when the environment alone decides the region,
    endpoint and credentials and awscrt is installed (a faster start: no
    botocore import), else botocore's default chain (secrets_client)."""
    from certrotor.client.crt_reader import CrtSecretReader, crt_available, route

    chosen = route(environ)
    if chosen is not None and crt_available():
        source = "environment" if chosen.credentials is not None else "container endpoint"
        return CrtSecretReader(chosen, deadline_seconds, clock=clock), f"awscrt SigV4, credentials from the {source}"
    from certrotor.aws.secrets import SecretStore

    return SecretStore(secrets_client(deadline_seconds, clock=clock)), "botocore, default credentials chain"


def secrets_client(
    deadline_seconds: float, session: Any | None = None, clock: Callable[[], float] = time.monotonic
) -> Any:
    """A Secrets Manager client for the default credentials chain (the task
    role on ECS; AWS_ENDPOINT_URL is honoured) whose calls all end within
    `deadline_seconds` of now. A botocore session (not boto3's): boto3 adds
    only import time to every container start.

    botocore's own retries are off (retry_within owns retrying). Each request
    waits for its answer only as long as the deadline leaves (botocore's
    per-request read timeout, set just before sending) and connects within a
    quarter of it (at most 5 s); a request whose connection attempt and wait
    would not both fit in the time left does not start. An endpoint that
    accepts and never answers costs the deadline, not a multiple of the read
    timeout.
    """
    import botocore.session
    from botocore.config import Config

    from certrotor.quiet_logs import keep_secrets_out_of_logs

    keep_secrets_out_of_logs()
    give_up_at = clock() + deadline_seconds
    connect_timeout = max(MIN_CALL_SECONDS, min(CONNECT_TIMEOUT, deadline_seconds / 4))
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=connect_timeout,
        read_timeout=max(MIN_CALL_SECONDS, min(READ_TIMEOUT, deadline_seconds)),
    )
    client = (session or botocore.session.get_session()).create_client("secretsmanager", config=config)

    def bound_by_deadline(request: Any, **_: Any) -> None:
        # The connection attempt and the wait for the answer both fit in
        # what is left, or the request does not start.
        left = give_up_at - clock() - connect_timeout
        if left < MIN_CALL_SECONDS:
            raise DeadlineError(f"gave up: the {deadline_seconds:g}s deadline passed")
        request.context["read_timeout"] = min(READ_TIMEOUT, left)

    client.meta.events.register("before-send.secrets-manager", bound_by_deadline)
    return client

"""Throttling backoff inside a deadline, for every call a rotation makes.

Botocore's standard mode already retries a throttled call a few times; when
the account's quota stays exhausted (a fleet rotating at once, the 50 TPS
Secrets Manager write bucket), that is not enough and not bounded by the
Lambda's remaining time. ``ThrottleRetry`` wraps a boto3 client: a call
that still fails with a throttling error is tried again after a full-jitter
exponential delay, for as long as the bound deadline leaves room for the
delay; then the throttling error is raised, the step fails, and Secrets
Manager retries the step later.

Retrying is safe for every call a rotation makes: writes name their
VersionId (the same value again is a no-op), IssueCertificate carries an
IdempotencyToken, and reads change nothing. The rotation service never sees
this layer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from certrotor.aws.errors import THROTTLING_CODES, error_code

# With no deadline bound (outside a rotation), at most this long is spent waiting.
DEFAULT_BUDGET_SECONDS = 10.0


@dataclass
class ThrottleRetry:
    """Full-jitter exponential backoff on throttling, bounded by a deadline.

    ``remaining`` returns the seconds the caller may still spend (in Lambda,
    the remaining time less a safety margin); ``bind`` sets it for each
    invocation. ``sleep`` and ``rng`` are injectable for tests and for the
    simulated clock of bench/fleet.py.
    """

    first: float = 0.1
    cap: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random
    remaining: Callable[[], float] = field(default=lambda: DEFAULT_BUDGET_SECONDS)
    throttled: int = 0

    def bind(self, remaining: Callable[[], float]) -> None:
        self.remaining = remaining

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, first * 2**attempt)]."""
        return self.rng() * min(self.cap, self.first * (2**attempt))

    def call(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                return function(*args, **kwargs)
            except ClientError as exc:
                if error_code(exc) not in THROTTLING_CODES:
                    raise
                self.throttled += 1
                pause = self.delay(attempt)
                if pause >= self.remaining():
                    raise
                self.sleep(pause)
                attempt += 1

    def wrap(self, client: Any) -> Any:
        """``client`` with every API method retried under this policy."""
        return RetryingClient(client, self)


class RetryingClient:
    """A boto3 client whose API calls go through a ThrottleRetry."""

    def __init__(self, client: Any, retry: ThrottleRetry) -> None:
        self._client = client
        self._retry = retry

    @property
    def meta(self) -> Any:
        return self._client.meta

    @property
    def exceptions(self) -> Any:
        return self._client.exceptions

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute) or name in ("get_paginator", "get_waiter", "can_paginate"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._retry.call(attribute, *args, **kwargs)

        return call

"""A rotation driver that behaves like Secrets Manager.

It stages AWSPENDING on a new token (or resumes the pending one), then calls
the four steps in order through the real handler entry point with real-shaped
events, retrying a failed step. If a step keeps failing, AWSCURRENT is left
where it was and the pending version stays for the next attempt.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from certrotor.local.emulator import Emulator
from certrotor.local.provision import ROTATION_FUNCTION, LocalEnvironment
from certrotor.ports import pending_version

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that handlers use."""

    timeout_seconds: float = 300.0
    function_name: str = ROTATION_FUNCTION
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:123456789012:function:{ROTATION_FUNCTION}"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000)


@dataclass
class StepAttempt:
    step: str
    attempt: int
    seconds: float
    error: str | None = None


@dataclass
class RotationReport:
    """What a rotation did, step by step."""

    secret: str
    token: str
    attempts: list[StepAttempt] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(a.seconds for a in self.attempts)


class RotationFailed(Exception):
    """A step still failed after every retry; AWSCURRENT did not move."""

    def __init__(self, report: RotationReport, step: str, error: str) -> None:
        super().__init__(f"rotation of {report.secret} failed at {step}: {error}")
        self.report = report
        self.step = step


def default_handler() -> Handler:
    from certrotor.handlers.rotate import lambda_handler

    return lambda_handler  # type: ignore[no-any-return]


class RotationDriver:
    """Drives rotations of the sets in a local environment."""

    def __init__(
        self,
        environment: LocalEnvironment,
        handler: Handler | None = None,
        max_attempts: int = 3,
        retry_delay: float = 0.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self._environment = environment
        self._emulator: Emulator = environment.emulator
        self._handler = handler
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._extra_env = extra_env or {}

    def pending_token(self, name: str) -> str | None:
        """The token of a rotation in progress (AWSPENDING not on AWSCURRENT)."""
        versions = self._emulator.client("secretsmanager").describe_secret(SecretId=name).get("VersionIdsToStages", {})
        return pending_version(versions)

    def start(self, name: str, token: str | None = None) -> str:
        """Stage AWSPENDING as RotateSecret does; resume one in progress."""
        pending = self.pending_token(name)
        if pending is not None:
            return pending
        token = token or str(uuid.uuid4())
        self._emulator.stage_pending(name, token)
        return token

    def event(self, name: str, step: str, token: str) -> dict[str, Any]:
        arn = self._emulator.client("secretsmanager").describe_secret(SecretId=name)["ARN"]
        return {"Step": step, "SecretId": arn, "ClientRequestToken": token, "RotationToken": str(uuid.uuid4())}

    def invoke(self, name: str, step: str, token: str) -> Any:
        """One invocation of the rotation function, in its environment."""
        event = self.event(name, step, token)
        with self._emulator.activated({**self._environment.lambda_env(), **self._extra_env}):
            # Imported here, in the function's environment, as Lambda's init
            # phase would: Powertools reads its settings at import.
            handler = self._handler or default_handler()
            return handler(event, LambdaContext())

    def rotate(self, name: str, token: str | None = None) -> RotationReport:
        token = self.start(name, token)
        report = RotationReport(secret=name, token=token)
        for step in STEPS:
            for attempt in range(1, self._max_attempts + 1):
                started = time.perf_counter()
                try:
                    report.results[step] = self.invoke(name, step, token)
                    report.attempts.append(StepAttempt(step, attempt, time.perf_counter() - started))
                    break
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    report.attempts.append(StepAttempt(step, attempt, time.perf_counter() - started, error))
                    if attempt == self._max_attempts:
                        raise RotationFailed(report, step, error) from exc
                    time.sleep(self._retry_delay)
        return report

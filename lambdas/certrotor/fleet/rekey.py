"""Starting and following a re-key execution of the state machine.

The selection (``--all``, ``--set GLOB``, ``--ca ARN``) becomes the
execution's input: ``--all`` alone lets the state machine list the sets
itself (any fleet size); otherwise the matching names are listed here and
passed in (up to what one execution input holds). Progress and the per-set
outcomes come from the execution's history (each Map state's results).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from certrotor.aws.errors import aws_call
from certrotor.errors import CertrotorError
from certrotor.fleet.inventory import list_sets, select
from certrotor.fleet.quotas import Pacing
from certrotor.fleet.state_machine import OUTCOMES

# Step Functions takes at most 256 KB of input; keep a margin.
MAX_INPUT_BYTES = 200_000


class SelectionError(CertrotorError):
    """The selection is empty or too large for one execution."""


def since_now(now: dt.datetime | None = None) -> str:
    """A `since` timestamp as Step Functions compares them (UTC, whole seconds)."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_input(
    secrets: Any,
    rotator: str,
    pacing: Pacing,
    since: str,
    reason: str,
    pattern: str | None = None,
    ca: str | None = None,
    every_set: bool = False,
) -> dict[str, Any]:
    """The execution input for a selection (raises SelectionError)."""
    base: dict[str, Any] = {
        "rotator": rotator,
        "since": since,
        "concurrency": pacing.concurrency,
        "wait_max": 2 * pacing.wait_seconds,
        "reason": reason,
    }
    entries = list(list_sets(secrets, rotator))
    if every_set and pattern is None and ca is None:
        return {**base, "all": True, "total": len(entries)}
    names = [entry["Name"] for entry in select(entries, pattern, ca)]
    if not names:
        raise SelectionError("no set of this rotator matches the selection")
    document = {**base, "sets": names, "total": len(names)}
    if len(json.dumps(document)) > MAX_INPUT_BYTES:
        raise SelectionError(
            f"{len(names)} sets do not fit in one execution's input; use --all, or a narrower --set or --ca"
        )
    return document


def start(sfn: Any, state_machine_arn: str, document: dict[str, Any], now: dt.datetime | None = None) -> str:
    name = "rekey-" + (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    with aws_call("StartExecution"):
        return str(
            sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(document))[
                "executionArn"
            ]
        )


@dataclass
class Progress:
    """Where an execution stands, from its history."""

    status: str
    total: int | None
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())

    def line(self) -> str:
        total = "?" if self.total is None else str(self.total)
        counts = ", ".join(f"{self.outcomes.get(o, 0)} {o}" for o in OUTCOMES)
        return f"{self.status.lower()}: {self.done} of {total} sets ({counts})"


def progress(sfn: Any, execution_arn: str) -> Progress:
    """DescribeExecution and GetExecutionHistory, reduced to the outcomes."""
    with aws_call("DescribeExecution"):
        described = sfn.describe_execution(executionArn=execution_arn)
    document = json.loads(described.get("input") or "{}")
    result = Progress(status=str(described["status"]), total=document.get("total"))
    if described.get("error"):
        result.error = f"{described.get('error')}: {described.get('cause') or ''}".strip()
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        with aws_call("GetExecutionHistory"):
            page = sfn.get_execution_history(**kwargs)
        for event in page.get("events", []):
            if event.get("type") != "MapStateExited":
                continue
            output = json.loads(event.get("stateExitedEventDetails", {}).get("output") or "{}")
            for item in output.get("results") or []:
                outcome = str(item.get("outcome"))
                result.outcomes[outcome] += 1
                if outcome in ("failed", "in-progress"):
                    result.failed[str(item.get("name"))] = f"{outcome}: {item.get('error') or ''}".rstrip(": ")
        token = page.get("nextToken")
        if not token:
            return result
        kwargs["nextToken"] = token


def follow(
    sfn: Any,
    execution_arn: str,
    say: Callable[[str], None],
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Progress:
    """Print a progress line whenever it changes, until the execution ends."""
    last = ""
    give_up = None if timeout is None else clock() + timeout
    while True:
        current = progress(sfn, execution_arn)
        line = current.line()
        if line != last:
            say(line)
            last = line
        if current.status != "RUNNING":
            return current
        if give_up is not None and clock() >= give_up:
            return current
        sleep(interval)


def report(current: Progress, say: Callable[[str], None]) -> int:
    """The closing lines: failed sets listed; the exit code."""
    if current.failed:
        say(f"{len(current.failed)} set(s) not re-keyed:")
        for name, why in sorted(current.failed.items()):
            say(f"  {name}: {why}")
    if current.error:
        say(f"execution {current.status.lower()}: {current.error}")
    if current.status == "RUNNING":
        return 2
    return 0 if current.status == "SUCCEEDED" and not current.failed else 1


# No set is skipped as "rotated since": the selection by CA is what leaves
# out the sets already moved (a set moved and moved back within one second
# would otherwise be skipped).
NEVER_SKIP = "9999-12-31T23:59:59Z"


class RekeyExecutions:
    """The re-key state machine as a CA rotation moves sets with it: start an
    execution for the sets issued by a CA (``certrotor rekey --ca ARN``),
    read its progress, stop it (a pause)."""

    def __init__(self, sfn: Any, secrets: Any, state_machine: str, rotator: str, pacing: Pacing) -> None:
        self._sfn = sfn
        self._secrets = secrets
        self.state_machine = state_machine
        self._rotator = rotator
        self._pacing = pacing

    def start(self, from_ca: str, reason: str) -> str | None:
        """An execution over the sets whose last certificate `from_ca`
        issued; None when there is none."""
        try:
            document = build_input(self._secrets, self._rotator, self._pacing, NEVER_SKIP, reason, ca=from_ca)
        except SelectionError:
            return None
        return start(self._sfn, self.state_machine, document)

    def progress(self, execution: str) -> Progress:
        return progress(self._sfn, execution)

    def stop(self, execution: str) -> None:
        with aws_call("StopExecution"):
            self._sfn.stop_execution(executionArn=execution, cause="certrotor ca pause")


def find_state_machine(sfn: Any, rotator: str) -> str | None:
    """The ARN of the rotator's re-key state machine (named ``<rotator>-rekey``
    by its construct), or None when it is not deployed."""
    name = f"{rotator}-rekey"
    kwargs: dict[str, Any] = {}
    while True:
        with aws_call("ListStateMachines"):
            page = sfn.list_state_machines(**kwargs)
        for machine in page.get("stateMachines", []):
            if machine.get("name") == name:
                return str(machine["stateMachineArn"])
        if not page.get("nextToken"):
            return None
        kwargs["nextToken"] = page["nextToken"]

"""Finding a rotator's sets and reading each one's health (``certrotor status``).

Sets are listed with ListSecrets filtered on the tag ``certrotor:rotator``;
each is then described (DescribeSecret) and its manifest read
(GetSecretValue), paced under a reads-per-second budget so that a fleet of
10,000 sets is listed without throttling. A set that cannot be read is
reported as such and never hides the others.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from certrotor.aws.errors import aws_call
from certrotor.errors import CertrotorError
from certrotor.fleet import ROTATOR_TAG
from certrotor.layout.manifest import INITIAL_VALUE, Manifest
from certrotor.ports import CURRENT, pending_version
from certrotor.services.rotation import TAG_ISSUING, TAG_REDEPLOYED
from certrotor.services.supersede import superseded_records

# DescribeSecret and GetSecretValue share 10,000 TPS per account; status
# takes a small share, leaving the rest to the functions and the containers.
DEFAULT_READS_PER_SECOND = 200.0
LIST_PAGE = 100


class Pacer:
    """Spaces calls at most `rate` per second (a simple token schedule)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = clock()

    def wait(self) -> None:
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._next
        self._next = max(self._next, now) + self._interval


def list_sets(client: Any, rotator: str, pacer: Pacer | None = None) -> Iterator[dict[str, Any]]:
    """ListSecrets entries of every manifest secret tagged for `rotator`."""
    kwargs: dict[str, Any] = {
        "Filters": [{"Key": "tag-key", "Values": [ROTATOR_TAG]}, {"Key": "tag-value", "Values": [rotator]}],
        "MaxResults": LIST_PAGE,
    }
    while True:
        if pacer is not None:
            pacer.wait()
        with aws_call("ListSecrets"):
            page = client.list_secrets(**kwargs)
        for entry in page.get("SecretList", []):
            tags = {t["Key"]: t["Value"] for t in entry.get("Tags", [])}
            # ListSecrets' tag filters match the key and the value separately.
            if tags.get(ROTATOR_TAG) == rotator:
                yield entry
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def issuer_of(tags: dict[str, str]) -> str | None:
    """The CA ARN of the set's last issued certificate (from its issuing tag)."""
    recorded = tags.get(TAG_ISSUING, "").split(" ")
    if len(recorded) != 2 or "/certificate/" not in recorded[1]:
        return None
    return recorded[1].split("/certificate/")[0]


def select(entries: list[dict[str, Any]], pattern: str | None = None, ca: str | None = None) -> list[dict[str, Any]]:
    """Entries whose name matches the glob and whose issuer is `ca`."""
    chosen = []
    for entry in entries:
        if pattern is not None and not fnmatch.fnmatchcase(entry["Name"], pattern):
            continue
        if ca is not None:
            tags = {t["Key"]: t["Value"] for t in entry.get("Tags", [])}
            if issuer_of(tags) != ca:
                continue
        chosen.append(entry)
    return chosen


@dataclass
class SetStatus:
    """One set's health, as `certrotor status` prints it."""

    name: str
    version: str | None = None
    serial: str | None = None
    issuer_ca: str | None = None
    not_after: str | None = None
    days_left: float | None = None
    last_rotated: str | None = None
    last_outcome: str | None = None
    next_rotation: str | None = None
    rotation_enabled: bool | None = None
    pending_version: str | None = None
    stuck: bool = False
    redeploy: str | None = None
    # The superseded certificate whose record changed last: "<serial>
    # delivered|revoking|revoked", and how many others are not revoked yet.
    superseded: str | None = None
    state: str = "ok"
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return str(value)


def read_status(
    client: Any,
    name: str,
    now: dt.datetime,
    alarm_days: int,
    stuck_after: dt.timedelta = dt.timedelta(hours=2),
) -> SetStatus:
    """DescribeSecret and GetSecretValue(AWSCURRENT) of one set, classified.

    `state` is "expired", "alarm" (inside the alarm window), "stuck"
    (AWSPENDING left on another version longer than `stuck_after`),
    "rotating", "not-issued", "unreadable" or "ok".
    """
    status = SetStatus(name=name)
    try:
        with aws_call(f"DescribeSecret {name}"):
            described = client.describe_secret(SecretId=name)
    except CertrotorError as exc:
        status.state, status.problems = "unreadable", [str(exc)]
        return status
    versions = {v: tuple(s) for v, s in described.get("VersionIdsToStages", {}).items()}
    tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
    status.rotation_enabled = bool(described.get("RotationEnabled", False))
    status.last_rotated = _iso(described.get("LastRotatedDate"))
    status.next_rotation = _iso(described.get("NextRotationDate"))
    status.issuer_ca = issuer_of(tags)
    status.pending_version = pending_version(versions)
    current = next((v for v, stages in versions.items() if CURRENT in stages), None)
    records = superseded_records(tags)
    if records:
        latest = records[-1]
        waiting = sum(1 for r in records[:-1] if r.state != "revoked")
        status.superseded = f"{latest.serial} {latest.state}" + (f" (+{waiting} not revoked yet)" if waiting else "")
    redeployed = tags.get(TAG_REDEPLOYED)
    if redeployed is not None:
        status.redeploy = "done" if redeployed == current else f"not done for {current}"
    if status.pending_version is not None:
        started = _started(described, status.pending_version)
        status.stuck = started is None or now - started > stuck_after
        status.last_outcome = "stuck" if status.stuck else "in progress"
    elif status.last_rotated is not None:
        status.last_outcome = "succeeded"
    try:
        with aws_call(f"GetSecretValue {name}"):
            value = client.get_secret_value(SecretId=name, VersionStage=CURRENT)["SecretString"]
    except CertrotorError as exc:
        status.state, status.problems = "unreadable", [str(exc)]
        return status
    if value == INITIAL_VALUE:
        status.state = "not-issued"
        status.problems.append("no certificate issued yet")
    else:
        try:
            manifest = Manifest.from_json(value)
        except CertrotorError as exc:
            status.state, status.problems = "unreadable", [f"manifest: {exc}"]
            return status
        status.version, status.serial, status.not_after = manifest.version, manifest.serial, manifest.not_after
        # The manifest names the CA that issued it (a CA rotation may have moved the set).
        status.issuer_ca = manifest.ca or status.issuer_ca
        not_after = dt.datetime.fromisoformat(manifest.not_after)
        status.days_left = round((not_after - now).total_seconds() / 86400, 1)
        if not_after <= now:
            status.state = "expired"
            status.problems.append(f"expired {manifest.not_after}")
        elif not_after - now <= dt.timedelta(days=alarm_days):
            status.state = "alarm"
            status.problems.append(f"expires within {alarm_days} days")
    if status.stuck:
        status.state = "stuck" if status.state in ("ok", "not-issued") else status.state
        status.problems.append(f"rotation {status.pending_version} stuck (AWSPENDING left on it)")
    elif status.pending_version is not None and status.state == "ok":
        status.state = "rotating"
    return status


def _started(described: dict[str, Any], version: str) -> dt.datetime | None:
    """When a pending version was created, if DescribeSecret says (it does not: use the last change)."""
    changed = described.get("LastChangedDate")
    if isinstance(changed, dt.datetime):
        return changed.astimezone(dt.UTC)
    return None


# States that make `certrotor status` exit non-zero.
UNHEALTHY = frozenset({"expired", "alarm", "stuck", "unreadable"})

"""The account quotas that bound a fleet, and the pacing that stays under them.

Per account and region (AWS documentation): Secrets Manager writes
(PutSecretValue, UpdateSecretVersionStage, ...) share 50 TPS, not
adjustable; TagResource 50 TPS; RotateSecret 50 TPS; DescribeSecret and
GetSecretValue 10,000 TPS; Private CA IssueCertificate 25 TPS (shared by
rotations and the on-demand issuer).

The bound on rotations per second is the tightest of quota / calls per
rotation over these buckets. The re-key (the state machine), the plan and
bench/fleet.py all pace with ``pacing`` below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SECRETS_WRITE_TPS = 50.0
TAG_RESOURCE_TPS = 50.0
ROTATE_SECRET_TPS = 50.0
READ_TPS = 10_000.0
ISSUE_CERTIFICATE_TPS = 25.0
# Calls that draw on the shared Secrets Manager write bucket.
WRITE_OPERATIONS = frozenset({"PutSecretValue", "UpdateSecretVersionStage"})
# Calls per rotation by a warm rotation function, as bench/fleet.py measures
# them (tests/unit/fleet checks these against the rotation service's real
# calls): the default for the re-key's pacing and the plan's budget.
DEFAULT_WRITES_PER_ROTATION = 8.0
DEFAULT_TAGS_PER_ROTATION = 2.0
# Share of every quota the re-key leaves to scheduled rotations and the issuer.
DEFAULT_HEADROOM = 0.25
# Each re-key child waits this long on average before starting its rotation;
# the concurrency then sets the rate in steps of 1 / PACE_SECONDS per second.
PACE_SECONDS = 10
# Wall time of one rotation on AWS, its four invocations of the rotation
# function one after the other, Private CA's asynchronous issuance included
# (an allowance: bench/rotation.py measures about 0.4 s against the emulator,
# whose CA answers at once; issuance on AWS takes seconds).
ROTATION_SECONDS = 6.0


@dataclass(frozen=True)
class PerRotation:
    """AWS calls one rotation makes, by quota bucket."""

    writes: float = DEFAULT_WRITES_PER_ROTATION
    tags: float = DEFAULT_TAGS_PER_ROTATION
    issues: float = 1.0
    rotate_secret: float = 1.0

    @classmethod
    def from_counts(cls, counts: Mapping[str, float], rotations: int) -> PerRotation:
        """From operation counts over `rotations` rotations (e.g. "PutSecretValue": 80)."""
        writes = sum(v for k, v in counts.items() if k in WRITE_OPERATIONS)
        return cls(
            writes=writes / rotations,
            tags=counts.get("TagResource", 0) / rotations,
            issues=counts.get("IssueCertificate", 0) / rotations,
            rotate_secret=counts.get("RotateSecret", rotations) / rotations,
        )

    def limits(self) -> dict[str, float]:
        """Rotations per second each bucket allows."""
        limits = {
            "Secrets Manager writes": SECRETS_WRITE_TPS / self.writes if self.writes else math.inf,
            "TagResource": TAG_RESOURCE_TPS / self.tags if self.tags else math.inf,
            "IssueCertificate": ISSUE_CERTIFICATE_TPS / self.issues if self.issues else math.inf,
            "RotateSecret": ROTATE_SECRET_TPS / self.rotate_secret if self.rotate_secret else math.inf,
        }
        return limits

    def bound(self) -> float:
        """Q: the most rotations per second the account's quotas allow."""
        return min(self.limits().values())

    def binding(self) -> str:
        limits = self.limits()
        return min(limits, key=lambda k: limits[k])


def rotation_concurrency(per_rotation: PerRotation | None = None, rotation_seconds: float = ROTATION_SECONDS) -> int:
    """The rotation function's reserved concurrency: the instances busy at
    once when rotations start at the quota bound (Little's law: rate x
    time per rotation). A re-key, paced under the bound, is never capped by
    it; a crowded rotation window is held near the bound, not far past it."""
    return math.ceil((per_rotation or PerRotation()).bound() * rotation_seconds)


@dataclass(frozen=True)
class Pacing:
    """At most `concurrency` sets in flight, each slot starting one rotation
    every `wait_seconds` on average (a random 1 to 2W-1 s wait before each):
    `rate` rotations per second on average."""

    concurrency: int
    wait_seconds: int

    @property
    def rate(self) -> float:
        return self.concurrency / self.wait_seconds

    def function_concurrency(self, rotation_seconds: float = ROTATION_SECONDS) -> int:
        """Rotation function instances this pacing keeps busy (at most
        ``rotation_concurrency`` when it stays under the quota bound)."""
        return math.ceil(self.rate * rotation_seconds)


def pacing(
    per_rotation: PerRotation,
    headroom: float = DEFAULT_HEADROOM,
    max_rate: float | None = None,
    wait_seconds: int = PACE_SECONDS,
) -> Pacing:
    """The fastest pacing under (1 - headroom) of every quota and `max_rate`."""
    if not 0 <= headroom < 1:
        raise ValueError("headroom must be in [0, 1)")
    if max_rate is not None and max_rate <= 0:
        raise ValueError("--max-rate must be positive")
    target = per_rotation.bound() * (1 - headroom)
    if max_rate is not None:
        target = min(target, max_rate)
    if target * wait_seconds < 1:
        # Slower than one rotation per wait: one slot, a longer wait.
        return Pacing(concurrency=1, wait_seconds=math.ceil(1 / target))
    return Pacing(concurrency=math.floor(target * wait_seconds + 1e-9), wait_seconds=wait_seconds)

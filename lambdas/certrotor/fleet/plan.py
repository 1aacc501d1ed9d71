"""`certrotor plan`: what a config would change against what is deployed,
the write and issuance budget of that change, and the rotation windows the
schedules crowd, before `cdk deploy`.

Schedules: sets sharing a `rate(N days)` interval would rotate in the same
windows; ``spread_offset`` gives each set a deterministic offset from a
stable hash of its name (SHA-256, never Python's salted hash()), and the plan
reports the peak rotations per second with and without it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from certrotor.config import CertrotorConfig
from certrotor.fleet.quotas import DEFAULT_HEADROOM, PerRotation

# A rate(N days) window: the whole UTC day when no Duration is given.
DAY_SECONDS = 86_400


def spread_offset(set_name: str, slots: int) -> int:
    """A slot in [0, slots) from SHA-256 of the set's name: the same on every
    machine and every run."""
    digest = hashlib.sha256(set_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % slots


def window_seconds(window: str | None, rate_hours: int | None) -> int:
    if window:
        return int(window.rstrip("h")) * 3600
    if rate_hours is not None and rate_hours < 24:
        return 3600
    return DAY_SECONDS


@dataclass
class WindowLoad:
    """Sets sharing one schedule: how they load its windows."""

    expression: str
    sets: int
    window_seconds: int
    windows_per_interval: int
    peak_sets_per_window: int
    peak_rotations_per_second: float
    fits: bool
    # Every set of the group in one window (created together, not spread).
    unspread_rotations_per_second: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Plan:
    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    writes: float = 0.0
    issuances: float = 0.0
    seconds_at_bound: float = 0.0
    bound: float = 0.0
    windows: list[WindowLoad] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.__dict__.items() if k != "windows"},
            "windows": [w.as_json() for w in self.windows],
        }


def schedule_loads(config: CertrotorConfig, bound: float, headroom: float = DEFAULT_HEADROOM) -> list[WindowLoad]:
    """Per schedule expression: the busiest window after spreading each set
    over the interval's windows by its name's hash, and whether its
    rotations fit under the quota bound (less headroom) in that window."""
    groups: dict[tuple[str, str | None], list[str]] = {}
    for cert_set in config.sets:
        groups.setdefault((cert_set.schedule.expression, cert_set.schedule.window), []).append(cert_set.name)
    loads = []
    for (expression, window), names in sorted(groups.items(), key=lambda item: item[0][0]):
        rate_hours = next(s.schedule.rate_hours() for s in config.sets if s.name == names[0])
        seconds = window_seconds(window, rate_hours)
        # Windows one interval holds (a cron() schedule: its own windows, one).
        slots = max(1, (rate_hours * 3600) // seconds) if rate_hours else 1
        per_slot = Counter(spread_offset(name, slots) for name in names)
        peak = max(per_slot.values())
        loads.append(
            WindowLoad(
                expression=expression,
                sets=len(names),
                window_seconds=seconds,
                windows_per_interval=slots,
                peak_sets_per_window=peak,
                peak_rotations_per_second=peak / seconds,
                fits=peak <= bound * (1 - headroom) * seconds,
                unspread_rotations_per_second=len(names) / seconds,
            )
        )
    return loads


def plan(config: CertrotorConfig, deployed: set[str], per_rotation: PerRotation | None = None) -> Plan:
    """Created and removed sets against the names deployed, the budget of
    the first rotations of the created ones, and the schedule windows."""
    per = per_rotation or PerRotation()
    names = [s.name for s in config.sets]
    result = Plan(
        created=sorted(set(names) - deployed),
        removed=sorted(deployed - set(names)),
        kept=sorted(set(names) & deployed),
        bound=per.bound(),
    )
    first_rotations = sum(1 for s in config.sets if s.name in result.created and s.schedule.rotate_immediately)
    result.writes = first_rotations * per.writes
    result.issuances = first_rotations * per.issues
    result.seconds_at_bound = first_rotations / result.bound if result.bound else 0.0
    result.windows = schedule_loads(config, result.bound)
    return result

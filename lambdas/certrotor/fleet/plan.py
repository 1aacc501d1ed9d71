"""`certrotor plan`: what a config would change against what is deployed,
the write and issuance budget of that change, and the rotation windows the
schedules crowd, before `cdk deploy`.

Schedules: each set's schedule is the one it is deployed with
(``certrotor.fleet.spread.deployed_schedule``: a rate spread by a hash of the
set's name). The plan lays every set's rotation windows over a 31-day month,
hour by hour (a rotation falls anywhere in its window, so a set adds 1/W to
each hour of a W-hour window), and reports the busiest hour in rotations per
second: per written schedule, with and without the spread, and for the fleet.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from certrotor.config import CertrotorConfig, Schedule, cron_hours, rotation_window_hours
from certrotor.fleet.quotas import DEFAULT_HEADROOM, PerRotation
from certrotor.fleet.spread import deployed_schedule

# The month the windows are laid over: the longest, hour by hour.
MONTH_HOURS = 31 * 24


@dataclass
class WindowLoad:
    """Sets written with one schedule: how their deployed windows load the busiest hour."""

    expression: str
    window: str | None
    sets: int
    # Distinct schedules they are deployed with (1 when not spread).
    deployed_schedules: int
    peak_rotations_per_second: float
    fits: bool
    # Every set of the group in one window (the schedule as written, created together).
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
    # Set name -> the schedule it is deployed with.
    schedules: dict[str, Schedule] = field(default_factory=dict)
    # Every set's windows together: the busiest hour, rotations per second.
    peak_rotations_per_second: float = 0.0
    fits: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.__dict__.items() if k not in ("windows", "schedules")},
            "windows": [w.as_json() for w in self.windows],
            "schedules": {name: s.rotation_rules() for name, s in sorted(self.schedules.items())},
        }


def _opening_hours(schedule: Schedule) -> list[int]:
    """Hours of a 31-day month at which the schedule's windows open. A rate()
    as written: every set from midnight of the first day, as sets created
    together rotate; a cron() the month can not place: the first day only."""
    rate_hours = schedule.rate_hours()
    if rate_hours is not None:
        return list(range(0, MONTH_HOURS, rate_hours))
    fields = schedule.expression[len("cron(") : -1].split()
    hours = cron_hours(fields[1])
    day_of_month, month, day_of_week = fields[2], fields[3], fields[4]
    if day_of_month in ("*", "?") and day_of_week in ("*", "?") and month in ("*", "?"):
        days = list(range(31))
    elif day_of_month.replace(",", "").isdigit() and day_of_week in ("*", "?"):
        days = [int(day) - 1 for day in day_of_month.split(",")]
    else:
        days = [0]
    return [day * 24 + hour for day in days for hour in hours]


def hourly_load(schedules: Counter[Schedule]) -> list[float]:
    """Expected rotations in each hour of a 31-day month: each set spreads
    one rotation evenly over each of its windows."""
    load = [0.0] * MONTH_HOURS
    for schedule, count in schedules.items():
        width = rotation_window_hours(schedule)
        for opening in _opening_hours(schedule):
            for hour in range(opening, min(opening + width, MONTH_HOURS)):
                load[hour] += count / width
    return load


def peak_per_second(schedules: Counter[Schedule]) -> float:
    return max(hourly_load(schedules)) / 3600 if schedules else 0.0


def deployed_schedules(config: CertrotorConfig) -> dict[str, Schedule]:
    """Each set's schedule as RotatingCertificate deploys it."""
    return {s.name: deployed_schedule(s, config.expiry_alarm_days) for s in config.sets}


def schedule_loads(
    config: CertrotorConfig, bound: float, headroom: float = DEFAULT_HEADROOM
) -> tuple[list[WindowLoad], dict[str, Schedule]]:
    """Per written schedule: the busiest hour of its sets' deployed windows,
    and whether it fits under the quota bound less headroom."""
    deployed = deployed_schedules(config)
    groups: dict[tuple[str, str | None], list[str]] = {}
    for cert_set in config.sets:
        groups.setdefault((cert_set.schedule.expression, cert_set.schedule.window), []).append(cert_set.name)
    loads = []
    for (expression, window), names in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        spread = Counter(deployed[name] for name in names)
        written = Counter({Schedule(expression=expression, window=window): len(names)})
        peak = peak_per_second(spread)
        loads.append(
            WindowLoad(
                expression=expression,
                window=window,
                sets=len(names),
                deployed_schedules=len(spread),
                peak_rotations_per_second=peak,
                fits=peak <= bound * (1 - headroom),
                unspread_rotations_per_second=peak_per_second(written),
            )
        )
    return loads, deployed


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
    result.windows, result.schedules = schedule_loads(config, result.bound)
    result.peak_rotations_per_second = peak_per_second(Counter(result.schedules.values()))
    result.fits = result.peak_rotations_per_second <= result.bound * (1 - DEFAULT_HEADROOM)
    return result

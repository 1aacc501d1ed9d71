"""`certrotor plan`: what a config would change against what is deployed,
the write and issuance budget of that change, and the rotation windows the
schedules crowd, before `cdk deploy`.

Schedules: each set's schedule is the one it is deployed with
(``certrotor.fleet.spread.deployed_schedule``: a rate spread by a hash of the
set's name). The plan lays every set's rotation windows over a 31-day month,
hour by hour (a rotation falls anywhere in its window, so a set adds 1/W to
each hour of a W-hour window), and reports the busiest hour in rotations per
second: per written schedule, with and without the spread, and for the fleet.

Specs: each deployed set's spec is read back from its manifest's description
(``certrotor.spec``), with the RotationRules and issuing CA ListSecrets shows,
and compared field by field with the config's. A deploy by itself rotates a
set only when it is created or its RotationRules change with
``rotate_immediately`` (CloudFormation updates the RotationSchedule, and
Secrets Manager rotates at once); a change to what the certificate says
(``NEW_CERTIFICATE_FIELDS``) or to the CA takes effect at the set's next
rotation, so the plan lists those sets and what re-keying them now costs.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from certrotor.config import CertificateSetConfig, CertrotorConfig, Schedule, cron_hours, rotation_window_hours
from certrotor.errors import ConfigError
from certrotor.fleet.inventory import Pacer, issuer_of, list_sets
from certrotor.fleet.quotas import DEFAULT_HEADROOM, PerRotation
from certrotor.fleet.spread import deployed_schedule
from certrotor.spec import spec_fields, spec_from_description

# The month the windows are laid over: the longest, hour by hour.
MONTH_HOURS = 31 * 24
# Spec fields whose change needs a new certificate (what it names, its key,
# its lifetime, its template) or a new layout of its parts (written only by a
# rotation). The others (services, delivery, redeploy_strict, schedule) apply
# with the deploy.
NEW_CERTIFICATE_FIELDS = frozenset(
    {
        "common_name",
        "dns_names",
        "ip_addresses",
        "key_algorithm",
        "usage",
        "validity_days",
        "chain_parts",
        "value_limit",
    }
)
# The issuing CA is the rotator's, not in the spec: a set issued by another
# CA than the config's needs a new certificate too.
CA_FIELD = "ca"


@dataclass(frozen=True)
class DeployedSet:
    """A set as deployed: its spec (None when unreadable), the RotationRules
    Secrets Manager holds, and the CA of its current certificate."""

    name: str
    spec: CertificateSetConfig | None
    rotation_rules: dict[str, Any] | None = None
    issuer_ca: str | None = None
    problem: str | None = None


@dataclass
class SetChange:
    """A deployed set the config changes."""

    name: str
    # Field -> [deployed value, configured value] (spec fields, plus "ca").
    fields: dict[str, list[Any]]
    # Of those, the ones a new certificate must carry.
    new_certificate: list[str]
    # RotationRules deployed -> to be deployed, when they differ.
    schedule: list[dict[str, Any] | None] | None
    rotates_on_deploy: bool

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


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
    changed: list[SetChange] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    # Deployed sets whose spec could not be read: one line each.
    unreadable: list[str] = field(default_factory=list)
    # The deploy's own rotations (created sets, schedule updates) and their budget.
    rotations_on_deploy: int = 0
    writes: float = 0.0
    issuances: float = 0.0
    seconds_at_bound: float = 0.0
    # Changed sets whose new certificate waits for their next rotation, and
    # what re-keying them now would cost.
    rotations_to_apply: int = 0
    writes_to_apply: float = 0.0
    issuances_to_apply: float = 0.0
    bound: float = 0.0
    windows: list[WindowLoad] = field(default_factory=list)
    # Set name -> the schedule it is deployed with.
    schedules: dict[str, Schedule] = field(default_factory=dict)
    # Every set's windows together: the busiest hour, rotations per second.
    peak_rotations_per_second: float = 0.0
    fits: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.__dict__.items() if k not in ("windows", "schedules", "changed")},
            "changed": [c.as_json() for c in self.changed],
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


def read_deployed(client: Any, rotator: str, pacer: Pacer | None = None) -> dict[str, DeployedSet]:
    """Every set deployed for `rotator`, from ListSecrets pages (specs,
    RotationRules and tags come with them: no call per set)."""
    deployed = {}
    for entry in list_sets(client, rotator, pacer):
        name = entry["Name"]
        tags = {t["Key"]: t["Value"] for t in entry.get("Tags", [])}
        try:
            spec: CertificateSetConfig | None = spec_from_description(name, entry.get("Description", ""))
            problem = None
        except ConfigError as exc:
            spec, problem = None, str(exc)
        deployed[name] = DeployedSet(
            name=name,
            spec=spec,
            rotation_rules=entry.get("RotationRules") if entry.get("RotationEnabled") else None,
            issuer_ca=issuer_of(tags),
            problem=problem,
        )
    return deployed


def _plain(cert_set: CertificateSetConfig) -> dict[str, Any]:
    return dict(json.loads(json.dumps(dataclasses.asdict(cert_set))))


def compare(
    config: CertrotorConfig, cert_set: CertificateSetConfig, before: DeployedSet, schedule: Schedule
) -> SetChange | None:
    """What deploying `cert_set` changes of the set deployed as `before`, or None."""
    assert before.spec is not None
    # A field that differs is off its default on one side at least; show both values in full.
    keys = sorted(spec_fields(before.spec).keys() | spec_fields(cert_set).keys())
    old, new = _plain(before.spec), _plain(cert_set)
    fields = {key: [old[key], new[key]] for key in keys if old[key] != new[key]}
    if config.ca.arn and before.issuer_ca and before.issuer_ca != config.ca.arn:
        fields[CA_FIELD] = [before.issuer_ca, config.ca.arn]
    rules = schedule.rotation_rules()
    old_rules = {k: v for k, v in (before.rotation_rules or {}).items() if k in ("ScheduleExpression", "Duration")}
    schedule_change = None if old_rules == rules else [before.rotation_rules, rules]
    if not fields and schedule_change is None:
        return None
    return SetChange(
        name=cert_set.name,
        fields=fields,
        new_certificate=[key for key in fields if key in NEW_CERTIFICATE_FIELDS or key == CA_FIELD],
        schedule=schedule_change,
        rotates_on_deploy=schedule_change is not None and cert_set.schedule.rotate_immediately,
    )


def plan(config: CertrotorConfig, deployed: Mapping[str, DeployedSet], per_rotation: PerRotation | None = None) -> Plan:
    """Created, changed and removed sets against what is deployed, the
    budget of the rotations the deploy starts and of those the changes
    still need, and the schedule windows."""
    per = per_rotation or PerRotation()
    result = Plan(bound=per.bound())
    result.windows, result.schedules = schedule_loads(config, result.bound)
    on_deploy = to_apply = 0
    for cert_set in config.sets:
        before = deployed.get(cert_set.name)
        if before is None:
            result.created.append(cert_set.name)
            on_deploy += cert_set.schedule.rotate_immediately
            continue
        if before.spec is None:
            result.unreadable.append(before.problem or cert_set.name)
            continue
        change = compare(config, cert_set, before, result.schedules[cert_set.name])
        if change is None:
            result.kept.append(cert_set.name)
            continue
        result.changed.append(change)
        if change.rotates_on_deploy:
            on_deploy += 1
        elif change.new_certificate:
            to_apply += 1
    result.created.sort()
    result.kept.sort()
    configured = {s.name for s in config.sets}
    result.removed = sorted(set(deployed) - configured)
    result.unreadable += [d.problem for d in deployed.values() if d.name not in configured and d.problem]
    result.rotations_on_deploy = on_deploy
    result.writes, result.issuances = on_deploy * per.writes, on_deploy * per.issues
    result.seconds_at_bound = on_deploy / result.bound if result.bound else 0.0
    result.rotations_to_apply = to_apply
    result.writes_to_apply, result.issuances_to_apply = to_apply * per.writes, to_apply * per.issues
    result.peak_rotations_per_second = peak_per_second(Counter(result.schedules.values()))
    result.fits = result.peak_rotations_per_second <= result.bound * (1 - DEFAULT_HEADROOM)
    return result

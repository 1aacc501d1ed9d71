"""The rotation schedule a set is deployed with: its ``rate()`` spread over the
interval by a stable hash of its name.

Secrets Manager opens every ``rate()`` window at midnight UTC, counting days
from the last rotation, so sets created in one deploy rotate in the same
window forever. A ``cron()`` opens its window where it says, so a rate is
deployed as a cron whose day(s) of the month and starting hour come from
SHA-256 of the set's name (never Python's salted ``hash()``): the same on
every machine, in every synth and every plan.

- ``rate(N days)``, N <= 31: ``cron(0 H D1,D2,... * ? *)`` with a window of
  ``window`` (4 hours unless given). D1 is 1 + hash mod N and the days step by
  N up to the 28th (days 29-31 are missing from some months). The gap across
  the month's end can be longer than N: the spread keeps the longest gap plus
  the window within the larger of what the rate needed and validity less
  ``expiry_alarm_days`` (so the expiry alarm does not fire before the next
  rotation), and never beyond the validity; where the month's end would break
  that, one more day goes into the month (one extra rotation a month).
- ``rate(N hours)``, N dividing 24: ``cron(0 H1,H1+N,... * * ? *)``, window 1
  hour unless given, H1 from the hash.
- anything else (a ``cron()`` written by the user, a rate it cannot express
  as a cron with the same longest gap, ``spread: false``): as written.

``deployed_schedule`` is the one function: RotatingCertificate deploys its
result, local provisioning enables it, and ``certrotor plan`` shows it.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from certrotor.config import (
    CertificateSetConfig,
    Schedule,
    longest_gap_hours,
    month_days_gap,
    rotation_window_hours,
)

# Window of a spread day schedule when the config gives none: short windows
# make more distinct windows in an interval (six a day at 4 hours).
DEFAULT_DAY_WINDOW_HOURS = 4
DEFAULT_HOUR_WINDOW_HOURS = 1
# Days that exist in every month.
LAST_COMMON_DAY = 28
# The longest month: the gap across a month's end is counted after one.
LONGEST_MONTH = 31


def _digest(set_name: str) -> bytes:
    return hashlib.sha256(set_name.encode("utf-8")).digest()


def _pick(set_name: str, part: int, choices: int) -> int:
    """A number in [0, choices) from 8 bytes of the name's SHA-256 (part 0-3)."""
    chunk = _digest(set_name)[part * 8 : part * 8 + 8]
    return int.from_bytes(chunk, "big") % choices


def gap_budget_hours(cert_set: CertificateSetConfig, expiry_alarm_days: int) -> int:
    """The most hours a spread schedule may let pass from one rotation to the
    end of the next one's window: what the written schedule needs, or up to
    validity less the alarm days when that is more; never beyond validity."""
    written = longest_gap_hours(cert_set.schedule) + rotation_window_hours(cert_set.schedule)
    before_alarm = (cert_set.validity_days - expiry_alarm_days) * 24
    return min(cert_set.validity_days * 24, max(written, before_alarm))


def _window_hours(schedule: Schedule, default: int) -> int:
    return int(schedule.window.rstrip("h")) if schedule.window else default


def spread_days(set_name: str, every: int, longest_gap_days: int) -> list[int] | None:
    """Days of the month (1-28) for a set rotated every `every` days, from the
    name's hash, no gap longer than `longest_gap_days`; None if none fits."""
    # The first day: late enough first days would leave no room for a day
    # that closes the gap across a 31-day month's end.
    choices = min(every, LAST_COMMON_DAY, longest_gap_days - (LONGEST_MONTH - LAST_COMMON_DAY))
    if choices < 1:
        return None
    first = 1 + _pick(set_name, 0, choices)
    days = list(range(first, LAST_COMMON_DAY + 1, every))
    if month_days_gap(days) > longest_gap_days:
        # One more day, halfway to the next month's first day where it may.
        earliest = LONGEST_MONTH + first - longest_gap_days
        halfway = (days[-1] + LONGEST_MONTH + first) // 2
        days.append(max(earliest, min(LAST_COMMON_DAY, halfway)))
    return days


def deployed_schedule(cert_set: CertificateSetConfig, expiry_alarm_days: int = 7) -> Schedule:
    """The schedule a set is deployed with: its rate spread by its name, or
    the schedule as written (see the module's docstring)."""
    schedule = cert_set.schedule
    rate_hours = schedule.rate_hours()
    if not schedule.spread or rate_hours is None:
        return schedule
    if rate_hours % 24 == 0 and rate_hours // 24 <= LONGEST_MONTH:
        return _spread_rate_in_days(cert_set, rate_hours // 24, expiry_alarm_days)
    if 24 % rate_hours == 0:
        window = _window_hours(schedule, DEFAULT_HOUR_WINDOW_HOURS)
        first = _pick(cert_set.name, 1, rate_hours - window + 1)
        hours = ",".join(str(hour) for hour in range(first, 24, rate_hours))
        return replace(schedule, expression=f"cron(0 {hours} * * ? *)", window=f"{window}h")
    return schedule


def _spread_rate_in_days(cert_set: CertificateSetConfig, every: int, expiry_alarm_days: int) -> Schedule:
    schedule = cert_set.schedule
    window = _window_hours(schedule, DEFAULT_DAY_WINDOW_HOURS)
    # Windows start on a multiple of the window: 24 // window of them a day.
    hour = window * _pick(cert_set.name, 1, 24 // window)
    if every == 1:
        return replace(schedule, expression=f"cron(0 {hour} * * ? *)", window=f"{window}h")
    longest_gap_days = (gap_budget_hours(cert_set, expiry_alarm_days) - window) // 24
    days = spread_days(cert_set.name, every, longest_gap_days)
    if days is None:
        return schedule
    listed = ",".join(map(str, days))
    return replace(schedule, expression=f"cron(0 {hour} {listed} * ? *)", window=f"{window}h")

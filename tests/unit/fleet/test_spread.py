"""Spread schedules: a rate() is deployed as a cron() whose days and hour a
stable hash of the set's name picks, within what validity allows."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest

from certrotor.config import CertificateSetConfig, load_set, longest_gap_hours, rotation_window_hours
from certrotor.fleet.plan import peak_per_second
from certrotor.fleet.spread import deployed_schedule, gap_budget_hours, spread_days


def cert_set(name: str, schedule: Any = "rate(30 days)", validity_days: int = 45) -> CertificateSetConfig:
    return load_set({"name": name, "dns_names": ["a.internal"], "validity_days": validity_days, "schedule": schedule})


def test_two_sets_on_one_rate_get_different_stable_schedules() -> None:
    orders, payments = cert_set("tls/orders"), cert_set("tls/payments")

    assert deployed_schedule(orders) == deployed_schedule(cert_set("tls/orders"))
    assert deployed_schedule(orders) != deployed_schedule(payments)
    # SHA-256 of the name, the same on every machine and in every run.
    assert deployed_schedule(orders).expression == "cron(0 20 2 * ? *)"
    assert deployed_schedule(orders).window == "4h"


def test_ten_thousand_sets_on_rate_30_days_spread_with_a_bounded_peak() -> None:
    sets = [cert_set(f"tls/s{i}") for i in range(10_000)]

    deployed = Counter(deployed_schedule(s) for s in sets)

    # 28 days x 6 four-hour windows: 168 schedules, each with about 60 sets.
    assert len(deployed) == 168
    assert max(deployed.values()) <= 1.4 * 10_000 / 168
    # The busiest hour: 10,000 rotations over 168 windows of 4 hours at most
    # 40% over the even share, where all together would put 10,000 in one day.
    even = 10_000 / 168 / (4 * 3600)
    assert even <= peak_per_second(deployed) <= 1.4 * even
    written = Counter({sets[0].schedule: 10_000})
    assert peak_per_second(written) == pytest.approx(10_000 / 86_400)


@pytest.mark.parametrize(
    ("schedule", "validity_days", "alarm_days"),
    [
        ("rate(1 day)", 3, 1),
        ("rate(5 days)", 7, 2),
        ("rate(10 days)", 20, 7),
        ({"expression": "rate(14 days)", "window": "4h"}, 30, 10),
        ("rate(20 days)", 30, 7),
        ("rate(30 days)", 31, 7),
        ("rate(30 days)", 45, 7),
        ({"expression": "rate(31 days)", "window": "24h"}, 40, 7),
        ("rate(4 hours)", 2, 1),
        ({"expression": "rate(6 hours)", "window": "2h"}, 2, 1),
        ("rate(12 hours)", 2, 1),
    ],
)
def test_a_spread_schedule_is_a_valid_cron_whose_longest_gap_fits_the_budget(
    schedule: Any, validity_days: int, alarm_days: int
) -> None:
    for i in range(200):
        written = cert_set(f"svc/{i}", schedule, validity_days)

        deployed = deployed_schedule(written, alarm_days)

        assert deployed.expression.startswith("cron(0 ")
        # The configuration's own rules accept it, validity check included.
        load_set(
            {
                "name": written.name,
                "dns_names": ["a.internal"],
                "validity_days": validity_days,
                "schedule": {"expression": deployed.expression, "window": deployed.window},
            }
        )
        needed = longest_gap_hours(deployed) + rotation_window_hours(deployed)
        assert needed <= gap_budget_hours(written, alarm_days) <= validity_days * 24


def test_the_budget_is_validity_less_the_alarm_days_when_that_is_more_than_the_rate_needs() -> None:
    assert gap_budget_hours(cert_set("a", "rate(20 days)", 30), 7) == 23 * 24
    # Never less than the written schedule needs (20 days plus its day-long window).
    assert gap_budget_hours(cert_set("a", "rate(20 days)", 22), 7) == 21 * 24


def test_a_month_end_gap_over_the_limit_gets_one_more_day() -> None:
    # Every 30 days with at most 30 days between rotations: one day a month
    # leaves 31 across a long month's end, so a second day closes it.
    days = spread_days("tls/orders", 30, 30)
    assert days is not None and len(days) == 2
    assert 31 - days[-1] + days[0] <= 30


@pytest.mark.parametrize(
    "schedule",
    [
        {"expression": "cron(0 4 ? * MON *)", "window": "2h"},
        {"expression": "rate(30 days)", "spread": False},
        "rate(45 days)",
        "rate(5 hours)",
    ],
)
def test_what_a_cron_cannot_spread_with_the_same_gap_is_deployed_as_written(schedule: Any) -> None:
    written = cert_set("tls/orders", schedule, 60)

    assert deployed_schedule(written) == written.schedule


def test_a_rate_in_hours_keeps_its_interval_from_a_hashed_first_hour() -> None:
    deployed = deployed_schedule(cert_set("tls/orders", "rate(6 hours)", 2), 1)

    hours = [int(h) for h in deployed.expression.split()[1].split(",")]
    assert [b - a for a, b in itertools.pairwise(hours)] == [6, 6, 6]
    assert 0 <= hours[0] <= 5
    assert deployed.window == "1h"

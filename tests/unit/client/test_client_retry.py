"""Retrying transient failures within a deadline, on a fake clock."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError

from certrotor.client.fetch import JitteredBackoff, retry_within
from certrotor.errors import AwsError, DeadlineError, IntegrityError, ThrottledError


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(times: int, error: Exception, result: str = "done"):
    calls = {"n": 0}

    def attempt() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return result

    return attempt, calls


def highest(low: float, high: float) -> float:
    return high


def test_transient_failures_are_retried_until_the_call_succeeds():
    # Given a call that is throttled twice, then answers
    clock = FakeClock()
    attempt, calls = failing(2, ThrottledError("throttled"))
    # When
    result = retry_within(10, attempt, clock=clock, sleep=clock.sleep, jitter=highest)
    # Then
    assert result == "done"
    assert calls["n"] == 3


def test_waits_grow_exponentially_up_to_the_cap():
    # Given a call that fails six times, and jitter at its ceiling
    clock = FakeClock()
    attempt, _ = failing(6, ThrottledError("throttled"))
    backoff = JitteredBackoff(first=0.5, factor=2.0, cap=3.0)
    # When
    retry_within(100, attempt, backoff=backoff, clock=clock, sleep=clock.sleep, jitter=highest)
    # Then
    assert clock.sleeps == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_each_wait_is_drawn_between_zero_and_its_ceiling():
    # Given a jitter that records the range it is asked for
    clock = FakeClock()
    ranges: list[tuple[float, float]] = []

    def recording(low: float, high: float) -> float:
        ranges.append((low, high))
        return low

    attempt, _ = failing(3, ThrottledError("throttled"))
    # When
    retry_within(10, attempt, backoff=JitteredBackoff(0.2, 2.0, 5.0), clock=clock, sleep=clock.sleep, jitter=recording)
    # Then
    assert ranges == [(0.0, 0.2), (0.0, 0.4), (0.0, 0.8)]


def test_when_the_deadline_passes_it_gives_up_with_the_last_error():
    # Given a call that never succeeds
    clock = FakeClock()
    attempt, _ = failing(10_000, ThrottledError("GetSecretValue tls/orders: throttled (ThrottlingException)"))
    # When / Then
    with pytest.raises(DeadlineError, match=r"gave up after 2s .*throttled \(ThrottlingException\)"):
        retry_within(2, attempt, clock=clock, sleep=clock.sleep, jitter=highest)
    assert clock.now == pytest.approx(2.0)


def test_no_wait_runs_past_the_deadline():
    # Given a long backoff and a short deadline
    clock = FakeClock()
    attempt, _ = failing(10_000, ThrottledError("throttled"))
    # When
    with pytest.raises(DeadlineError):
        retry_within(
            1.5, attempt, backoff=JitteredBackoff(first=1.0, cap=10.0), clock=clock, sleep=clock.sleep, jitter=highest
        )
    # Then the waits add up to the deadline, not beyond
    assert clock.sleeps == [1.0, 0.5]


def test_botocore_connection_errors_are_retried():
    # Given a call whose endpoint refuses the first connection
    clock = FakeClock()
    attempt, calls = failing(1, EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    # When
    result = retry_within(10, attempt, clock=clock, sleep=clock.sleep, jitter=highest)
    # Then
    assert (result, calls["n"]) == ("done", 2)


@pytest.mark.parametrize("error", [IntegrityError("tampered"), AwsError("AccessDeniedException")])
def test_failures_that_retrying_cannot_fix_are_raised_at_once(error):
    # Given a call failing with a non-transient error
    clock = FakeClock()
    attempt, calls = failing(1, error)
    # When / Then
    with pytest.raises(type(error)):
        retry_within(10, attempt, clock=clock, sleep=clock.sleep, jitter=highest)
    assert (calls["n"], clock.sleeps) == (1, [])

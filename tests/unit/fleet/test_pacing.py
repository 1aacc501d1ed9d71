"""The quota bound and the re-key's pacing."""

from __future__ import annotations

import pytest

from certrotor.fleet.quotas import ROTATION_SECONDS, PerRotation, pacing, rotation_concurrency


def test_the_bound_is_the_tightest_bucket() -> None:
    # 8 writes: 50 / 8 = 6.25 rotations/s, below IssueCertificate's 25
    per = PerRotation(writes=8, tags=2, issues=1)
    assert per.bound() == pytest.approx(6.25)
    assert per.binding() == "Secrets Manager writes"
    # With few writes the issuance rate binds
    assert PerRotation(writes=1, tags=1, issues=1).binding() == "IssueCertificate"


def test_the_bound_follows_the_measured_calls() -> None:
    per = PerRotation.from_counts({"PutSecretValue": 40, "UpdateSecretVersionStage": 70, "IssueCertificate": 10}, 10)
    assert per.writes == 11
    assert per.bound() == pytest.approx(50 / 11)


def test_pacing_stays_under_the_bound_less_headroom() -> None:
    per = PerRotation(writes=8)
    paced = pacing(per, headroom=0.25)
    assert paced.rate <= 6.25 * 0.75
    assert paced.rate > 6.25 * 0.75 - 1 / paced.wait_seconds


def test_max_rate_caps_the_pacing_even_below_one_slot() -> None:
    assert pacing(PerRotation(), max_rate=2).rate == pytest.approx(2)
    slow = pacing(PerRotation(), max_rate=0.01)
    assert slow.concurrency == 1 and slow.rate <= 0.01


@pytest.mark.parametrize("headroom", [-0.1, 1.0])
def test_a_headroom_outside_zero_to_one_is_refused(headroom: float) -> None:
    with pytest.raises(ValueError, match="headroom"):
        pacing(PerRotation(), headroom=headroom)


def test_the_definition_skips_before_waiting_and_catches_every_error() -> None:
    from certrotor.fleet.state_machine import definition

    child = definition()["States"]["RekeyPage"]["ItemProcessor"]["States"]
    assert child["RotatedSince"]["Choices"][0]["Next"] == "Skipped"
    assert child["RotatedSince"]["Default"] == "Delay"
    assert {c["Next"] for c in child["Rotate"]["Catch"]} == {"InProgress", "Failed"}
    assert child["Rotate"]["Catch"][-1]["ErrorEquals"] == ["States.ALL"]


def test_the_rotation_functions_concurrency_carries_rotations_at_the_quota_bound() -> None:
    # 6.25 rotations/s, each holding one instance for 6 s: 37.5 busy at once.
    assert ROTATION_SECONDS == 6.0
    assert rotation_concurrency(PerRotation(writes=8)) == 38
    assert rotation_concurrency(PerRotation(writes=8), rotation_seconds=2) == 13


@pytest.mark.parametrize("headroom", [0.0, 0.1, 0.25, 0.5])
@pytest.mark.parametrize("writes", [4.0, 8.0, 12.0])
def test_a_rekey_never_needs_more_rotation_instances_than_are_reserved(headroom: float, writes: float) -> None:
    per = PerRotation(writes=writes)

    paced = pacing(per, headroom=headroom)

    assert paced.function_concurrency() <= rotation_concurrency(per)

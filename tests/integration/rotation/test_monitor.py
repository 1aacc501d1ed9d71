"""The monitor handler reports days to expiry from the manifests."""

from __future__ import annotations

from collections.abc import Callable

from certrotor.handlers.monitor import lambda_handler
from certrotor.local.driver import LambdaContext, RotationDriver
from certrotor.local.provision import LocalEnvironment


def test_the_monitor_reports_days_to_expiry_of_a_rotated_set(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a rotated set (the emulator's Private CA always issues for 365 days)
    env = make_env()
    name = env.config.sets[0].name
    RotationDriver(env).rotate(name)
    # When the monitor runs in the function's environment
    with env.emulator.activated(env.lambda_env()):
        result = lambda_handler({}, LambdaContext(function_name="certrotor-monitor"))
    # Then it reports the set with about a year left
    (state,) = result["sets"]
    assert state["name"] == name
    assert 360 < state["days_to_expiry"] <= 366


def test_the_monitor_reports_a_set_not_issued_yet(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a set that was never rotated
    env = make_env()
    # When the monitor runs
    with env.emulator.activated(env.lambda_env()):
        result = lambda_handler({}, LambdaContext(function_name="certrotor-monitor"))
    # Then the set is reported without a figure
    assert result["sets"] == [{"name": env.config.sets[0].name, "days_to_expiry": None, "serial": None}]

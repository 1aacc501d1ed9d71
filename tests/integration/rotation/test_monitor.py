"""The monitor handler reports days to expiry from the manifests."""

from __future__ import annotations

from collections.abc import Callable

from certrotor.handlers.monitor import lambda_handler
from certrotor.local.driver import LambdaContext, RotationDriver
from certrotor.local.provision import LocalEnvironment


def test_the_monitor_reports_days_to_expiry_of_a_rotated_set(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a set rotated with a 45-day certificate
    env = make_env(validity_days=45)
    name = env.config.sets[0].name
    RotationDriver(env).rotate(name)
    # When the monitor runs in the function's environment
    with env.emulator.activated(env.lambda_env()):
        result = lambda_handler({}, LambdaContext(function_name="certrotor-monitor"))
    # Then it reports the set with its 45 days left
    (state,) = result["sets"]
    assert state["name"] == name
    assert 44.9 < state["days_to_expiry"] <= 45


def test_the_monitor_reports_a_set_not_issued_yet(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a set that was never rotated
    env = make_env()
    # When the monitor runs
    with env.emulator.activated(env.lambda_env()):
        result = lambda_handler({}, LambdaContext(function_name="certrotor-monitor"))
    # Then the set is reported without a figure
    assert result["sets"] == [{"name": env.config.sets[0].name, "days_to_expiry": None, "serial": None}]


def test_the_monitor_publishes_the_ca_root_in_an_empty_trust_bundle_once(
    make_env: Callable[..., LocalEnvironment],
) -> None:
    # Given a trust secret still at the stack's initial value
    from certrotor.layout.manifest import INITIAL_VALUE
    from certrotor.local.provision import trust_store

    env = make_env()
    store = trust_store(env.emulator, env.config)
    env.emulator.client("secretsmanager").put_secret_value(
        SecretId=store.name, SecretString=INITIAL_VALUE, VersionStages=["AWSCURRENT"]
    )
    # When the monitor runs twice
    with env.emulator.activated(env.lambda_env()):
        first = lambda_handler({}, LambdaContext(function_name="certrotor-monitor"))
        second = lambda_handler({}, LambdaContext(function_name="certrotor-monitor"))
    # Then the first run wrote the root, the second wrote nothing
    assert first["trust"]["written"] is True
    assert second["trust"]["written"] is False
    assert store.load().pem == env.root.pem
    assert store.load().trusts(env.ca_arn)


def test_a_rotation_names_the_trust_secret_and_the_issuing_ca_in_the_manifest(
    make_env: Callable[..., LocalEnvironment],
) -> None:
    from certrotor.layout import Manifest
    from certrotor.local.provision import trust_store

    # Given a provisioned set, When it is rotated
    env = make_env()
    name = env.config.sets[0].name
    RotationDriver(env).rotate(name)
    # Then its manifest names the rotator's trust secret and the CA
    value = env.emulator.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    manifest = Manifest.from_json(value)
    assert manifest.trust == trust_store(env.emulator, env.config).name
    assert manifest.ca == env.ca_arn

"""Sets whose spec lives on their manifest: rotated, listed and refused by
rotator id, against the emulator through the real handlers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from certrotor.aws.secrets import SecretStore
from certrotor.handlers.monitor import lambda_handler as monitor_handler
from certrotor.local.driver import LambdaContext, RotationDriver, RotationFailed
from certrotor.local.provision import LocalEnvironment, create_sets
from certrotor.spec import ROTATOR_TAG, list_set_specs, load_set_spec


def test_the_functions_environment_holds_no_set(make_env: Callable[..., LocalEnvironment]) -> None:
    env = make_env()
    assert env.config.sets[0].name not in env.lambda_env()["CERTROTOR_CONFIG"]


def test_a_set_is_read_back_from_its_manifest_by_name(make_env: Callable[..., LocalEnvironment]) -> None:
    env = make_env()
    cert_set = env.config.sets[0]
    store = SecretStore(env.emulator.client("secretsmanager"))
    assert load_set_spec(store, cert_set.name, env.config.rotator_id) == cert_set
    specs, problems = list_set_specs(store, env.config.rotator_id)
    assert (specs, problems) == ([cert_set], [])


def test_a_set_of_another_rotator_is_neither_rotated_nor_monitored(
    make_env: Callable[..., LocalEnvironment],
) -> None:
    # Given two environments (two rotators) in one account
    ours, theirs = make_env(), make_env()
    their_set = theirs.config.sets[0].name
    # When our rotation function is asked to rotate their set, then it refuses
    # and writes nothing
    with pytest.raises(RotationFailed, match=f"not a set of rotator '{ours.config.rotator_id}'"):
        RotationDriver(ours, max_attempts=1).rotate(their_set)
    assert ours.emulator.issued_certificates(ours.ca_arn) == 0
    # And our monitor reports only our set
    with ours.emulator.activated(ours.lambda_env()):
        result = monitor_handler({}, LambdaContext(function_name="certrotor-monitor"))
    assert [state["name"] for state in result["sets"]] == [ours.config.sets[0].name]


def test_a_set_added_later_is_rotated_without_touching_the_function(
    make_env: Callable[..., LocalEnvironment],
) -> None:
    # Given a rotator, and a second set whose manifest names it, created afterwards
    env = make_env()
    first = env.config.sets[0]
    later = dataclasses.replace(first, name=first.name + "-later", dns_names=("later.svc.internal",))
    later = dataclasses.replace(later, common_name="later.svc.internal", services=())
    create_sets(env.emulator, dataclasses.replace(env.config, sets=(later,)), env.rotation_function_arn)
    tags = env.emulator.client("secretsmanager").describe_secret(SecretId=later.name)["Tags"]
    assert {"Key": ROTATOR_TAG, "Value": env.config.rotator_id} in tags
    # When it is rotated with the unchanged function environment
    report = RotationDriver(env).rotate(later.name)
    # Then it is issued for its own names
    assert report.results["finishSecret"]["set"] == later.name

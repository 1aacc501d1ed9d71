"""The trust secret has two writers, the monitor (a CA missing from the
bundle) and an operator's CA rotation: on the emulator, each write made
while the other one was between its read and its write keeps both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from certrotor.aws.pca import PrivateCA
from certrotor.aws.secrets import SecretStore
from certrotor.local.ca import LocalCA
from certrotor.local.provision import LocalEnvironment, create_private_ca
from certrotor.local.trigger import LocalRotationTrigger
from certrotor.services.ca_rotation import CaPorts, CaRotation, Paused
from certrotor.services.trust import CaStatus, TrustConflict, TrustStore, ensure_ca


class Interleaved(SecretStore):
    """The real adapter; just before its next move of the trust secret's
    AWSCURRENT (the swap of a write), another writer runs."""

    def __init__(self, client: Any, trust_name: str) -> None:
        super().__init__(client)
        self._trust = trust_name
        self.before_swap: list[Callable[[], object]] = []
        self.swaps = 0

    def move_stage(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        if secret_id == self._trust and stage == "AWSCURRENT":
            self.swaps += 1
            if self.before_swap:
                self.before_swap.pop(0)()
        super().move_stage(secret_id, stage, to_version, from_version)


def new_ca(env: LocalEnvironment, name: str) -> str:
    return create_private_ca(env.emulator, LocalCA.create_root(f"{name} root"), name)


def chain(env: LocalEnvironment, arn: str) -> str:
    return PrivateCA(arn, env.emulator.client("acm-pca")).ca_certificate_chain()


def operator(env: LocalEnvironment, secrets: SecretStore, trigger: Any = None) -> CaRotation:
    pca = env.emulator.client("acm-pca")
    ports = CaPorts(
        secrets=secrets,
        trust=TrustStore(secrets, env.config.rotator_id, sleep=lambda s: None),
        trigger=trigger or LocalRotationTrigger(env),
        ca_chain=lambda arn: PrivateCA(arn, pca).ca_certificate_chain(),
        disable_ca=lambda arn: None,
    )
    return CaRotation(ports, [s.name for s in env.config.sets], poll=0.05, min_interval=0.0, timeout=60)


def plain_store(env: LocalEnvironment) -> TrustStore:
    return TrustStore(SecretStore(env.emulator.client("secretsmanager")), env.config.rotator_id)


def test_the_monitor_writing_between_an_operators_read_and_write_keeps_both_cas(
    make_env: Callable[..., LocalEnvironment],
):
    env = make_env()
    store = plain_store(env)
    target, renewed = new_ca(env, "target"), new_ca(env, "monitor's")
    interleaved = Interleaved(env.emulator.client("secretsmanager"), store.name)
    # Given the monitor adds a CA while the operator is between reading the bundle and swapping it in
    interleaved.before_swap.append(lambda: ensure_ca(store, renewed, chain(env, renewed), dt.datetime.now(dt.UTC)))
    rotation = operator(env, interleaved)
    # When the operator begins a CA rotation (the target CA joins the bundle)
    state = rotation.rotate(target, until="trust")
    # Then the bundle holds the operator's incoming CA and the monitor's CA, and the rotation state
    document = store.load()
    assert {c.arn: c.status for c in document.cas} == {
        env.ca_arn: CaStatus.ACTIVE,
        renewed: CaStatus.ACTIVE,
        target: CaStatus.INCOMING,
    }
    assert all(document.trusts(arn) for arn in (env.ca_arn, renewed, target))
    assert document.ca_rotation is not None and document.ca_rotation["to"] == target
    assert state["stage"] == "trust"
    assert interleaved.swaps == 2  # the first swap lost the race and was done again


def test_an_operator_writing_between_the_monitors_read_and_write_keeps_both(
    make_env: Callable[..., LocalEnvironment],
):
    env = make_env()
    target, renewed = new_ca(env, "target"), new_ca(env, "monitor's")
    interleaved = Interleaved(env.emulator.client("secretsmanager"), plain_store(env).name)
    monitor = TrustStore(interleaved, env.config.rotator_id, sleep=lambda s: None)
    # Given the operator begins a CA rotation while the monitor is between its read and its swap
    interleaved.before_swap.append(
        lambda: operator(env, SecretStore(env.emulator.client("secretsmanager"))).rotate(target, until="trust")
    )
    # When the monitor adds its CA
    document, written = ensure_ca(monitor, renewed, chain(env, renewed), dt.datetime.now(dt.UTC))
    # Then both are there, and the monitor counted one conflict
    assert written and monitor.conflicts == 1
    assert {c.arn for c in document.cas} == {env.ca_arn, renewed, target}
    assert plain_store(env).load().ca_rotation is not None
    assert plain_store(env).load().to_json() == document.to_json()


def test_a_pause_requested_while_the_operation_runs_is_not_overwritten(
    make_env: Callable[..., LocalEnvironment],
):
    env = make_env()
    target = new_ca(env, "target")
    secrets = Interleaved(env.emulator.client("secretsmanager"), plain_store(env).name)
    rotation = operator(env, secrets)
    rotation.rotate(target, until="trust")
    # Given another shell pauses just before the running operation records its next step
    secrets.before_swap += [
        lambda: None,
        lambda: operator(env, SecretStore(env.emulator.client("secretsmanager"))).pause(),
    ]
    # When the operation runs on
    with pytest.raises(Paused):
        rotation.rotate(target)
    # Then it stopped, paused, before moving any set
    state = plain_store(env).load().ca_rotation
    assert state is not None and state["paused"] is True
    assert state["stage"] in ("trust", "move")
    assert not any(s.get("move") for s in state["sets"].values())


def test_writers_that_never_stop_conflicting_end_in_one_clear_error(make_env: Callable[..., LocalEnvironment]):
    env = make_env()
    renewed = new_ca(env, "monitor's")
    other = new_ca(env, "other")
    interleaved = Interleaved(env.emulator.client("secretsmanager"), plain_store(env).name)
    store = TrustStore(interleaved, env.config.rotator_id, sleep=lambda s: None)
    flip = [CaStatus.ACTIVE, CaStatus.INCOMING] * TrustStore.ATTEMPTS

    def another_write() -> None:
        status = flip.pop()
        plain_store(env).update(lambda d: d.with_ca(other, chain(env, other), status, dt.datetime.now(dt.UTC)))

    interleaved.before_swap += [another_write] * TrustStore.ATTEMPTS
    with pytest.raises(TrustConflict, match="run the command again"):
        ensure_ca(store, renewed, chain(env, renewed), dt.datetime.now(dt.UTC))
    assert plain_store(env).load().ca(renewed) is None

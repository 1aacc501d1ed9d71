"""CA rotation on the emulator, stage by stage: two Private CAs under two
roots, two sets, rotations through the real handler started as RotateSecret
would (in the background), and a TLS handshake checked after every stage
between a server holding the set's current material and clients holding the
trust bundle they fetched at each earlier stage."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from certrotor.aws.pca import PrivateCA
from certrotor.aws.secrets import SecretStore
from certrotor.client.trust import fetch_trusted
from certrotor.config import load_config
from certrotor.errors import BundleError
from certrotor.layout import Manifest
from certrotor.local.ca import LocalCA
from certrotor.local.emulator import Emulator
from certrotor.local.provision import DEFAULT_CONFIG, LocalEnvironment, create_private_ca, provision, trust_store
from certrotor.local.trigger import LocalRotationTrigger
from certrotor.pki.handshake import handshake_in_memory
from certrotor.services.ca_rotation import CaPorts, CaRotation, CaRotationError, Paused
from certrotor.services.reader import SetReader
from certrotor.services.trust import CaStatus


@dataclass
class World:
    env: LocalEnvironment
    new_root: LocalCA
    new_arn: str
    trigger: LocalRotationTrigger

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.env.config.sets]

    def secrets(self) -> SecretStore:
        return SecretStore(self.env.emulator.client("secretsmanager"))

    def rotation(self, **kwargs: Any) -> CaRotation:
        pca = self.env.emulator.client("acm-pca")
        ports = CaPorts(
            secrets=self.secrets(),
            trust=trust_store(self.env.emulator, self.env.config),
            trigger=self.trigger,
            ca_chain=lambda arn: PrivateCA(arn, pca).ca_certificate_chain(),
            disable_ca=lambda arn: pca.update_certificate_authority(CertificateAuthorityArn=arn, Status="DISABLED"),
        )
        return CaRotation(ports, self.names, poll=0.05, min_interval=0.0, timeout=120, **kwargs)

    def current(self, name: str) -> Manifest:
        return Manifest.from_json(self.secrets().get(name, stage="AWSCURRENT").value)

    def fetch(self, name: str) -> tuple[Any, str]:
        """What certrotor-fetch does without --ca-file: the set verified
        against the trust bundle, and the bundle (trust.pem)."""
        with self.env.emulator.activated({}):
            fetched = fetch_trusted(SetReader(self.secrets()), name)
        assert fetched.trust_pem, "no trust bundle published"
        return fetched.verified, fetched.trust_pem

    def handshake(self, name: str, client_trust: str) -> None:
        """A server with the set's current material; a client that trusts
        only `client_trust` (a trust.pem fetched earlier). Fails loudly."""
        served, _ = self.fetch(name)
        result = handshake_in_memory(served.key_pem, served.bundle.fullchain_pem, client_trust, "localhost")
        assert result is not None


def build_world(emulator: Emulator, root_ca: LocalCA, tag: str = "ca") -> World:
    """Two sets of a rotator of their own, each issued once, and a second
    CA under a new root."""
    data = copy.deepcopy(DEFAULT_CONFIG)
    prefix = uuid.uuid4().hex[:8]
    data["service_name"] = f"{tag}{prefix}"
    web = data["sets"][0]
    web["name"] = f"{tag}{prefix}/web"
    web["services"] = [{"cluster": f"c{prefix}", "service": "web"}]
    api = {
        **copy.deepcopy(web),
        "name": f"{tag}{prefix}/api",
        "services": [{"cluster": f"c{prefix}", "service": "api"}],
    }
    data["sets"].append(api)
    env = provision(emulator, load_config(data), root_ca)
    new_root = LocalCA.create_root(f"certrotor G2 root {prefix}")
    new_arn = create_private_ca(emulator, new_root, f"certrotor G2 {prefix}")
    trigger = LocalRotationTrigger(env)
    for name in (s.name for s in env.config.sets):
        trigger.start(name)
    trigger.wait()
    return World(env, new_root, new_arn, trigger)


@pytest.fixture
def world(emulator: Emulator, root_ca: LocalCA) -> World:
    return build_world(emulator, root_ca)


def test_each_stage_keeps_every_handshake_working_and_ends_on_the_new_ca(world: World) -> None:
    old_root, old_arn = world.env.root.pem, world.env.ca_arn
    # Before: consumers trust the old root only
    _, before = world.fetch(world.names[0])
    assert before == old_root
    for name in world.names:
        world.handshake(name, before)
    rotation = world.rotation()

    # Stage trust: both roots published, every set rotated once (still the old CA)
    state = rotation.rotate(world.new_arn, disable_old=True, until="move")
    assert state["stage"] == "move"
    _, overlap = world.fetch(world.names[0])
    assert overlap == old_root + world.new_root.pem
    for name in world.names:
        assert world.current(name).ca == old_arn
        world.handshake(name, before)
        world.handshake(name, overlap)

    # Stage move: every set on the new CA; clients holding the overlap bundle accept them
    state = rotation.rotate(world.new_arn, until="prune")
    assert state["stage"] == "prune"
    for name in world.names:
        assert world.current(name).ca == world.new_arn
        world.handshake(name, overlap)
        # A client that never got the new root refuses it: why stage trust waits.
        with pytest.raises(BundleError, match="handshake failed"):
            world.handshake(name, before)

    # Stages prune and disable: the old root leaves the bundle, the old CA is disabled
    state = rotation.rotate(world.new_arn)
    assert state["stage"] == "done"
    _, after = world.fetch(world.names[0])
    assert after == world.new_root.pem
    for name in world.names:
        world.handshake(name, after)
        world.handshake(name, overlap)
    document = trust_store(world.env.emulator, world.env.config).load()
    assert document.ca(old_arn).status == CaStatus.RETIRED  # type: ignore[union-attr]
    assert document.ca(world.new_arn).status == CaStatus.ACTIVE  # type: ignore[union-attr]
    pca = world.env.emulator.client("acm-pca")
    status = pca.describe_certificate_authority(CertificateAuthorityArn=old_arn)["CertificateAuthority"]["Status"]
    assert status == "DISABLED"


def test_a_crash_between_stages_resumes_without_rotating_a_set_twice(world: World) -> None:
    # Given a run that dies right after recording the end of stage trust
    def crash_at_move(line: str) -> None:
        if line == "stage move":
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        world.rotation(say=crash_at_move).rotate(world.new_arn)
    started = len(world.trigger.started)
    _, overlap = world.fetch(world.names[0])
    for name in world.names:
        world.handshake(name, overlap)
    # When a new run resumes
    state = world.rotation().rotate(world.new_arn)
    world.trigger.wait()
    # Then it went on from stage move: one rotation per set, and ended on the new CA
    assert state["stage"] == "done"
    assert len(world.trigger.started) == started + len(world.names)
    _, after = world.fetch(world.names[0])
    for name in world.names:
        assert world.current(name).ca == world.new_arn
        world.handshake(name, after)


def test_a_rollback_before_prune_moves_every_set_back_and_distrusts_the_new_ca(world: World) -> None:
    # Given every set moved to the new CA (stage prune not run)
    rotation = world.rotation()
    rotation.rotate(world.new_arn, until="prune")
    _, overlap = world.fetch(world.names[0])
    # When the operator rolls back
    state = rotation.rollback()
    # Then every set is on the old CA again, the bundle holds the old root only,
    # and handshakes work for clients holding the overlap bundle or the final one
    assert state["stage"] == "rolled_back"
    _, final = world.fetch(world.names[0])
    assert final == world.env.root.pem
    for name in world.names:
        assert world.current(name).ca == world.env.ca_arn
        world.handshake(name, overlap)
        world.handshake(name, final)


def test_no_rollback_once_the_old_ca_left_the_bundle(world: World) -> None:
    rotation = world.rotation()
    rotation.rotate(world.new_arn)
    with pytest.raises(CaRotationError, match="cannot be rolled back"):
        rotation.rollback()


def test_prune_is_refused_while_a_current_certificate_comes_from_the_old_ca(world: World) -> None:
    # Given the move finished, then one set was pointed back at the old CA and rotated
    rotation = world.rotation()
    rotation.rotate(world.new_arn, until="prune")
    straggler = world.names[0]
    world.env.emulator.client("secretsmanager").tag_resource(
        SecretId=straggler, Tags=[{"Key": "certrotor:ca", "Value": world.env.ca_arn}]
    )
    world.trigger.start(straggler)
    world.trigger.wait()
    # When the rotation goes on
    with pytest.raises(CaRotationError, match="not removing"):
        rotation.rotate(world.new_arn)
    # Then the old root is still trusted and the straggler still handshakes
    _, bundle = world.fetch(straggler)
    assert world.env.root.pem in bundle
    world.handshake(straggler, bundle)


def test_a_pause_from_another_shell_stops_the_move_between_sets_and_rotate_resumes(world: World) -> None:
    operator = world.rotation()

    def pause_after_first_set(line: str) -> None:
        if line.startswith("move: 1/"):
            operator.pause()

    # Given a run moving one set at a time, paused after the first set
    with pytest.raises(Paused):
        world.rotation(say=pause_after_first_set, parallel=1).rotate(world.new_arn)
    state = operator.status()
    assert state is not None and state["paused"] is True and state["stage"] == "move"
    moved = [n for n in world.names if world.current(n).ca == world.new_arn]
    assert len(moved) == 1
    _, overlap = world.fetch(world.names[0])
    for name in world.names:
        world.handshake(name, overlap)
    # When rotate runs again, Then it resumes and finishes
    assert world.rotation().rotate(world.new_arn)["stage"] == "done"
    for name in world.names:
        assert world.current(name).ca == world.new_arn


def test_a_second_rotation_to_another_ca_is_refused_while_one_is_in_progress(world: World) -> None:
    rotation = world.rotation()
    rotation.rotate(world.new_arn, until="move")
    with pytest.raises(CaRotationError, match="in progress"):
        rotation.rotate(world.env.ca_arn)


def test_ca_status_and_pause_commands_show_and_pause_the_rotation(world: World, capsys: Any) -> None:
    from certrotor.cli import main

    rotator = world.env.config.service_name
    world.rotation().rotate(world.new_arn, until="move")
    with world.env.emulator.activated({}):
        status_code = main(["ca", "status", "--rotator", rotator])
        status = capsys.readouterr().out
        pause_code = main(["ca", "pause", "--rotator", rotator])
        capsys.readouterr()
        main(["ca", "status", "--rotator", rotator])
        paused = capsys.readouterr().out
    assert status_code == 0 and pause_code == 0
    assert f"CA rotation {world.env.ca_arn} -> {world.new_arn}" in status
    assert "stage: move\n" in status
    assert "stage: move (paused)" in paused


def test_a_set_tagged_for_a_ca_the_function_cannot_reach_is_refused_before_issuing(world: World) -> None:
    from certrotor.local.driver import RotationDriver, RotationFailed
    from certrotor.services.rotation import RotationService

    # Given a rotation service without a factory for other CAs, and a set tagged for the new CA
    name = world.names[0]
    world.env.emulator.client("secretsmanager").tag_resource(
        SecretId=name, Tags=[{"Key": "certrotor:ca", "Value": world.new_arn}]
    )

    def handler(event: dict[str, Any], context: Any) -> Any:
        from certrotor.handlers import rotate

        original = rotate.rotation_service

        def without_other_cas() -> RotationService:
            service = original()
            service._ca_for = None
            return service

        rotate.rotation_service = without_other_cas  # type: ignore[assignment]
        try:
            return rotate.lambda_handler(event, context)
        finally:
            rotate.rotation_service = original  # type: ignore[assignment]

    before = world.current(name).serial
    # When it rotates, Then createSecret fails naming the CA and the set is unchanged
    with pytest.raises(RotationFailed, match="can only issue from its own CA"):
        RotationDriver(world.env, handler=handler, max_attempts=1).rotate(name)
    assert world.current(name).serial == before

"""The demo's CA rotation step: two CAs under two roots, a served
certificate from each, and every TLS client connecting at every stage.

Containers start with `certrotor-fetch` and no --ca-file: they verify
against the rotator's trust bundle and write it as trust.pem, which the
clients below trust (and nothing else).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from certrotor.aws.pca import PrivateCA
from certrotor.aws.secrets import SecretStore
from certrotor.fleet.quotas import Pacing
from certrotor.fleet.rekey import RekeyExecutions
from certrotor.local.ca import LocalCA
from certrotor.local.provision import LocalEnvironment, create_private_ca, trust_store
from certrotor.local.rekey import BackgroundRotations, deploy_state_machine
from certrotor.local.trigger import LocalRotationTrigger
from certrotor.pki.handshake import client_context
from certrotor.services.ca_rotation import CaPorts, CaRotation


def issuer_served(port: int, trust_pem: str, server_name: str) -> tuple[str, str]:
    """(serial, issuer CN) of the certificate a TLS server presents to a
    client that trusts only `trust_pem`; raises if the handshake fails."""
    context = client_context(trust_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise RuntimeError("the server sent no certificate")
    cert = x509.load_der_x509_certificate(der)
    issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return format(cert.serial_number, "x"), str(issuer[0].value) if issuer else cert.issuer.rfc4514_string()


def run_ca_rotation_demo(
    env: LocalEnvironment,
    workdir: Path,
    container: Callable[..., contextlib.AbstractContextManager[tuple[int, dict[str, str]]]],
    say: Callable[[str], None],
) -> None:
    """certrotor ca rotate, stage by stage, with TLS clients after each."""
    emulator = env.emulator
    new_root = LocalCA.create_root("certrotor demo root G2")
    new_arn = create_private_ca(emulator, new_root, "certrotor demo subordinate CA G2")
    say(f"new CA under a new root: {new_arn}")
    pca = emulator.client("acm-pca")
    secrets = SecretStore(emulator.client("secretsmanager"))
    trigger = LocalRotationTrigger(env)
    # The move goes through the re-key state machine, as on AWS when the
    # rotator deploys it (the emulator runs the same definition).
    rotations = BackgroundRotations(env)
    machine = deploy_state_machine(env, rotations)
    rekey = RekeyExecutions(
        emulator.client("stepfunctions"),
        emulator.client("secretsmanager"),
        machine,
        env.config.rotator_id,
        Pacing(concurrency=1, wait_seconds=1),
    )
    ports = CaPorts(
        secrets=secrets,
        trust=trust_store(emulator, env.config),
        trigger=trigger,
        ca_chain=lambda arn: PrivateCA(arn, pca).ca_certificate_chain(),
        disable_ca=lambda arn: pca.update_certificate_authority(CertificateAuthorityArn=arn, Status="DISABLED"),
        rekey=rekey,
    )
    rotation = CaRotation(
        ports,
        [s.name for s in env.config.sets],
        say=lambda line: say(f"ca rotate: {line}"),
        poll=0.05,
        min_interval=0.0,
        parallel=1,
    )
    cert_set = env.config.sets[0]
    name, server_name = cert_set.name, cert_set.common_name
    handshakes = 0

    def client(port: int, trust_pem: str, who: str) -> str:
        nonlocal handshakes
        serial, issuer = issuer_served(port, trust_pem, server_name)
        handshakes += 1
        say(f"{who}: handshake OK, serial {serial} issued by {issuer}")
        return issuer

    rotation.rotate(new_arn, until="move")
    with container(env, name, workdir, "ca-old", None) as (old_port, _):
        overlap = (workdir / "ca-old" / "trust.pem").read_text()
        say(f"stage trust done: trust.pem holds {overlap.count('BEGIN CERTIFICATE')} roots")
        old_issuer = client(old_port, overlap, "task on the old CA, client holding the overlap bundle")
        rotation.rotate(new_arn, until="prune")
        with container(env, name, workdir, "ca-new", None) as (new_port, _):
            new_issuer = client(new_port, overlap, "task on the new CA, same client")
            client(old_port, overlap, "the old task, still running, same client")
            rotation.rotate(new_arn)
        with container(env, name, workdir, "ca-final", None) as (final_port, _):
            final = (workdir / "ca-final" / "trust.pem").read_text()
            say(f"stage prune done: trust.pem holds {final.count('BEGIN CERTIFICATE')} root")
            client(final_port, final, "task started after prune, client holding the new bundle")
            client(final_port, overlap, "same task, client still holding the overlap bundle")
    if old_issuer == new_issuer:
        raise RuntimeError("the certificate did not move to the new CA")
    trigger.wait()
    rotations.wait(120)
    if rotations.failures:
        raise RuntimeError(f"a move through the re-key state machine failed: {rotations.failures}")
    say(f"served by two CAs ({old_issuer}, then {new_issuer}); {handshakes} handshakes, none failed")

"""PrivateCA against the emulated Private CA over HTTP."""

from __future__ import annotations

from collections.abc import Callable

from certrotor.aws.pca import PrivateCA
from certrotor.config import KeyAlgorithm, Usage, template_arn
from certrotor.local.provision import LocalEnvironment
from certrotor.pki.bundle import parse_certificates
from certrotor.pki.csr import build_csr
from certrotor.pki.keys import generate_key


def test_a_csr_is_issued_and_fetched_with_the_cas_signing_algorithm(make_env: Callable[..., LocalEnvironment]) -> None:
    # Given a subordinate CA in the emulated Private CA
    env = make_env()
    ca = PrivateCA(env.ca_arn, env.emulator.client("acm-pca"))
    key = generate_key(KeyAlgorithm.EC_P256)
    csr = build_csr(key, "svc.internal", ["svc.internal"])
    # When a certificate is issued and awaited
    arn = ca.issue(csr, 7, template_arn(Usage.SERVER), "token-1")
    issued = ca.wait(arn, remaining_seconds=lambda: 10.0)
    # Then it certifies our key, and the CA's algorithm came from DescribeCertificateAuthority
    leaf = parse_certificates(issued.certificate_pem)[0]
    assert leaf.public_key() == key.public_key()
    assert ca.signing_algorithm() == "SHA256WITHRSA"


def test_the_ca_chain_leads_to_the_local_root(make_env: Callable[..., LocalEnvironment]) -> None:
    env = make_env()
    chain = parse_certificates(PrivateCA(env.ca_arn, env.emulator.client("acm-pca")).ca_certificate_chain())
    assert chain[-1] == env.root.certificate

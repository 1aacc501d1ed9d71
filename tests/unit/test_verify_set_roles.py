"""verify_set and trust_anchor: which certificate anchors the chain, when a
handshake is proved and with which name, and the exact refusal of a set that
cannot be anchored."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from certrotor.config import CertificateSetConfig, load_config
from certrotor.errors import BundleError
from certrotor.layout import AssembledSet, LayoutSpec, PartValue, assemble, split_bundle
from certrotor.local.ca import LocalCA
from certrotor.pki import handshake
from certrotor.pki.bundle import Bundle, order_bundle
from certrotor.pki.keys import PrivateKey, key_to_pem
from certrotor.services.verify import trust_anchor, verify_set

CA_ARN = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
NAMES = ("a.example.test", "web.example.test")


def _assembled(key: PrivateKey, bundle: Bundle) -> AssembledSet:
    """The set as a reader assembles it from its stored parts."""
    version = str(uuid.uuid4())
    layout = split_bundle(LayoutSpec("tls/web", 2, 4096), version, key_to_pem(key), bundle)
    parts = {name: PartValue(value, version) for name, value in layout.parts.items()}
    return assemble(layout.manifest_value, version, parts)


def _expected(usage: str) -> CertificateSetConfig:
    """A set configured with its common name second among its DNS names."""
    data = {"name": "tls/web", "common_name": NAMES[1], "dns_names": list(NAMES), "usage": usage}
    if usage != "server":
        data["delivery"] = "reload"
    return load_config({"ca": {"arn": CA_ARN}, "sets": [data]}).sets[0]


def _record(monkeypatch: pytest.MonkeyPatch, function: str) -> list[str]:
    checked: list[str] = []
    real = getattr(handshake, function)

    def recording(key_pem: str, fullchain_pem: str, anchor_pem: str, name: str) -> Any:
        checked.append(name)
        return real(key_pem, fullchain_pem, anchor_pem, name)

    monkeypatch.setattr(handshake, function, recording)
    return checked


def test_the_root_of_a_chain_is_its_self_issued_certificate_wherever_it_stands(
    root_ca: LocalCA, intermediate_ca: LocalCA
) -> None:
    assert trust_anchor(intermediate_ca.pem + root_ca.pem) == root_ca.certificate
    assert trust_anchor(root_ca.pem + intermediate_ca.pem) == root_ca.certificate


def test_a_chain_without_its_root_is_anchored_at_its_last_certificate(intermediate_ca: LocalCA) -> None:
    lower = intermediate_ca.create_subordinate("certrotor test lower intermediate")
    lowest = lower.create_subordinate("certrotor test lowest intermediate")
    assert trust_anchor(lowest.pem + lower.pem + intermediate_ca.pem) == intermediate_ca.certificate


def test_no_handshake_unless_asked(issue_set: Callable[..., Bundle], leaf_key: PrivateKey, root_ca: LocalCA) -> None:
    assembled = _assembled(leaf_key, issue_set(leaf_key))
    now = dt.datetime.now(dt.UTC)
    assert verify_set(assembled, now, anchor=root_ca.certificate).handshake is None
    proved = verify_set(assembled, now, anchor=root_ca.certificate, handshake=True).handshake
    assert proved is not None
    assert proved.serial == int(assembled.manifest.serial, 16)


def test_a_set_with_no_chain_and_no_anchor_is_refused(intermediate_ca: LocalCA, leaf_key: PrivateKey) -> None:
    leaf = intermediate_ca.issue_leaf(leaf_key.public_key(), "web.example.test", ("web.example.test",))  # type: ignore[arg-type]
    assembled = _assembled(leaf_key, order_bundle([leaf]))
    with pytest.raises(BundleError) as refused:
        verify_set(assembled, dt.datetime.now(dt.UTC))
    assert str(refused.value) == "the set has no chain and no trust anchor was given"


@pytest.mark.parametrize(
    ("usage", "function"), [("server", "handshake_in_memory"), ("both", "mutual_handshake_in_memory")]
)
def test_a_configured_set_is_proved_against_its_common_name(
    intermediate_ca: LocalCA,
    root_ca: LocalCA,
    leaf_key: PrivateKey,
    monkeypatch: pytest.MonkeyPatch,
    usage: str,
    function: str,
) -> None:
    # Given a set whose common name is not its first DNS name
    leaf = intermediate_ca.issue_leaf(
        leaf_key.public_key(),  # type: ignore[arg-type]
        NAMES[1],
        NAMES,
        client_auth=usage == "both",
    )
    assembled = _assembled(leaf_key, order_bundle([leaf, intermediate_ca.certificate, root_ca.certificate]))
    checked = _record(monkeypatch, function)
    # When it is verified with a handshake as configured
    verify_set(
        assembled, dt.datetime.now(dt.UTC), anchor=root_ca.certificate, expected=_expected(usage), handshake=True
    )
    # Then the handshake checked the configured common name
    assert checked == [NAMES[1]]


def test_a_set_verified_without_a_config_is_proved_as_a_server_of_its_first_name(
    issue_set: Callable[..., Bundle], leaf_key: PrivateKey, root_ca: LocalCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = _record(monkeypatch, "handshake_in_memory")
    bundle = issue_set(leaf_key, common_name=NAMES[1], dns_names=NAMES)
    verify_set(_assembled(leaf_key, bundle), dt.datetime.now(dt.UTC), anchor=root_ca.certificate, handshake=True)
    assert checked == [NAMES[0]]


def test_without_an_anchor_a_set_is_proved_against_the_root_it_carries(
    intermediate_ca: LocalCA, root_ca: LocalCA, leaf_key: PrivateKey
) -> None:
    # Given a set whose chain holds two intermediates and the root
    lower = intermediate_ca.create_subordinate("certrotor test lower intermediate")
    leaf = lower.issue_leaf(leaf_key.public_key(), NAMES[0], NAMES)  # type: ignore[arg-type]
    bundle = order_bundle([leaf, lower.certificate, intermediate_ca.certificate, root_ca.certificate])
    # When it is verified with a handshake and no anchor
    verified = verify_set(_assembled(leaf_key, bundle), dt.datetime.now(dt.UTC), handshake=True)
    # Then the handshake's client trusted the root at the top of the chain
    assert verified.handshake is not None

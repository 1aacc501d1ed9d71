"""Which name a server handshake checks when none is given, a trust
document's revocation state, and the CA rotation's clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from certrotor.config import Usage
from certrotor.errors import BundleError
from certrotor.local.ca import LocalCA
from certrotor.pki import handshake
from certrotor.pki.bundle import Bundle
from certrotor.pki.keys import PrivateKey, key_to_pem
from certrotor.services import ca_rotation, verify
from certrotor.services.trust import TrustDocument


@pytest.mark.parametrize(
    ("dns", "ips", "first"),
    [
        (("b.example.test", "a.example.test"), ("10.0.0.2",), "a.example.test"),
        ((), ("10.0.0.9", "10.0.0.2"), "10.0.0.2"),
    ],
)
def test_without_a_server_name_the_first_dns_name_then_ip_is_checked(
    issue_set: Callable[..., Bundle],
    leaf_key: PrivateKey,
    root_ca: LocalCA,
    monkeypatch: pytest.MonkeyPatch,
    dns: tuple[str, ...],
    ips: tuple[str, ...],
    first: str,
) -> None:
    checked: list[str] = []
    real = handshake.handshake_in_memory

    def recording(key_pem: str, fullchain_pem: str, anchor_pem: str, name: str) -> Any:
        checked.append(name)
        return real(key_pem, fullchain_pem, anchor_pem, name)

    # verify imports the TLS stack only when it proves a handshake (the container client never does)
    monkeypatch.setattr(handshake, "handshake_in_memory", recording)
    bundle = issue_set(leaf_key, common_name="web", dns_names=dns, ip_addresses=ips)
    verify.prove_in_handshake(key_to_pem(leaf_key), bundle, root_ca.pem, Usage.SERVER)
    assert checked == [first]


def test_a_certificate_without_names_cannot_be_proved_as_a_server(
    issue_set: Callable[..., Bundle], leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    bundle = issue_set(leaf_key, common_name="web", dns_names=())
    with pytest.raises(BundleError) as refused:
        verify.prove_in_handshake(key_to_pem(leaf_key), bundle, root_ca.pem, Usage.SERVER)
    assert str(refused.value) == "the certificate has no DNS or IP name to check a handshake against"


def test_the_revocation_state_is_copied_in_and_kept_through_json() -> None:
    state = {"serial": "0a", "state": "requested"}
    document = TrustDocument(rotator="rot").with_revoke(state)
    state["state"] = "changed later"
    assert document.revoke == {"serial": "0a", "state": "requested"}
    assert TrustDocument.from_json(document.to_json(), "rot").revoke == {"serial": "0a", "state": "requested"}


def test_the_ca_rotation_clock_is_utc_now() -> None:
    before = dt.datetime.now(dt.UTC)
    now = ca_rotation._now()
    assert now.tzinfo is dt.UTC
    assert before <= now <= dt.datetime.now(dt.UTC)

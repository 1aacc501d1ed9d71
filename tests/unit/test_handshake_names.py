"""The mutual handshake checks the server name as the one-way one does."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from certrotor.errors import BundleError
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import Bundle
from certrotor.pki.handshake import mutual_handshake_in_memory
from certrotor.pki.keys import PrivateKey, key_to_pem


def test_a_mutual_handshake_for_a_name_the_certificate_lacks_fails(
    issue_set: Callable[..., Bundle], leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    bundle = issue_set(leaf_key, server_auth=True, client_auth=True)
    with pytest.raises(BundleError, match="client side"):
        mutual_handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem, "other.example.test")

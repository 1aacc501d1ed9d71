"""Fixtures for the pure-core unit tests: real CAs and keys made in memory.

CAs are session-scoped because key generation dominates the cost; leaves are
issued per test so each test owns what it changes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from certrotor.config import KeyAlgorithm
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import Bundle, order_bundle
from certrotor.pki.keys import PrivateKey, generate_key


@pytest.fixture(scope="session")
def intermediate_ca(root_ca: LocalCA) -> LocalCA:
    """An intermediate signed by the shared root, as Private CA's subordinate is."""
    return root_ca.create_subordinate("certrotor test intermediate")


@pytest.fixture(scope="session")
def other_root_ca() -> LocalCA:
    """A second, unrelated root: nothing it signs should verify to `root_ca`."""
    return LocalCA.create_root("certrotor unrelated root")


@pytest.fixture
def leaf_key() -> PrivateKey:
    return generate_key(KeyAlgorithm.EC_P256)


@pytest.fixture
def issue_set(intermediate_ca: LocalCA, root_ca: LocalCA) -> Callable[..., Bundle]:
    """Issue a leaf for `key` from the intermediate; the bundle is leaf,
    intermediate, root. Keyword arguments go to LocalCA.issue_leaf."""

    def issue(key: PrivateKey, **options: object) -> Bundle:
        options.setdefault("common_name", "web.example.test")
        options.setdefault("dns_names", ("web.example.test",))
        leaf = intermediate_ca.issue_leaf(key.public_key(), **options)  # type: ignore[arg-type]
        return order_bundle([leaf, intermediate_ca.certificate, root_ca.certificate])

    return issue


@pytest.fixture(scope="session")
def rsa_4096_key() -> PrivateKey:
    """Generated once: RSA-4096 takes a noticeable fraction of a second."""
    return generate_key(KeyAlgorithm.RSA_4096)

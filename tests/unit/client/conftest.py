"""Material for the client's unit tests, made at run time (no committed keys)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from certrotor.config import KeyAlgorithm
from certrotor.layout import LayoutSpec, SecretLayout, split_bundle
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import Bundle
from certrotor.pki.keys import generate_key, key_to_pem

SET_NAME = "tls/orders"


@dataclass(frozen=True)
class Material:
    """A key and its bundle (leaf, intermediate, root), and their layout."""

    key_pem: str
    bundle: Bundle
    root: LocalCA

    def layout(self, version: str, name: str = SET_NAME) -> SecretLayout:
        return split_bundle(LayoutSpec(name, chain_parts=2, value_limit=4096), version, self.key_pem, self.bundle)


def make_material(root: LocalCA, days: int = 30) -> Material:
    intermediate = root.create_subordinate("certrotor test intermediate")
    key = generate_key(KeyAlgorithm.EC_P256)
    leaf = intermediate.issue_leaf(key.public_key(), "orders.internal", ("orders.internal",), days=days)
    return Material(key_to_pem(key), Bundle(leaf, (intermediate.certificate, root.certificate)), root)


@pytest.fixture(scope="session")
def unit_root() -> LocalCA:
    return LocalCA.create_root("certrotor unit root")


@pytest.fixture(scope="session")
def material(unit_root: LocalCA) -> Material:
    return make_material(unit_root)


@pytest.fixture(scope="session")
def other_material(unit_root: LocalCA) -> Material:
    """A second key and certificate from the same CA (another rotation)."""
    return make_material(unit_root)

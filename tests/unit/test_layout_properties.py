"""Properties of split/assemble over key algorithms, chain lengths and limits.

Keys and chains are cached per algorithm in module-level dicts, so each
RSA-4096 key is generated once for the whole run; hypothesis then varies the
limit and the number of chain parts freely.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certrotor.config import MAX_VALUE_LIMIT, MIN_VALUE_LIMIT, KeyAlgorithm
from certrotor.errors import CapacityError
from certrotor.layout import LayoutSpec, PartValue, SecretLayout, assemble, split_bundle
from certrotor.layout.split import UNUSED_PART
from certrotor.pki.bundle import Bundle, parse_bundle
from certrotor.pki.keys import PrivateKey, generate_key, key_to_pem

ChainBuilder = Callable[[PrivateKey, PrivateKey, int], Bundle]

VERSION = "0f0e0d0c-0000-4000-8000-00000000beef"
SET_NAME = "props/web"

_KEYS: dict[KeyAlgorithm, tuple[PrivateKey, PrivateKey]] = {}
_BUNDLES: dict[tuple[KeyAlgorithm, int], Bundle] = {}

limits = st.one_of(
    st.sampled_from([MIN_VALUE_LIMIT, 1536, 2048, 3000, 4096, 8192, MAX_VALUE_LIMIT]),
    st.integers(MIN_VALUE_LIMIT, MAX_VALUE_LIMIT),
)


@pytest.fixture(scope="module")
def material(
    rsa_4096_key: PrivateKey, rsa_4096_ca_key: PrivateKey, chain_builder: ChainBuilder
) -> Callable[[KeyAlgorithm, int], tuple[str, Bundle]]:
    """(key PEM, bundle) for an algorithm and a chain length, built once each."""
    _KEYS.setdefault(KeyAlgorithm.RSA_4096, (rsa_4096_ca_key, rsa_4096_key))

    def get(algorithm: KeyAlgorithm, chain_length: int) -> tuple[str, Bundle]:
        if algorithm not in _KEYS:
            _KEYS[algorithm] = (generate_key(algorithm), generate_key(algorithm))
        ca_key, leaf_key = _KEYS[algorithm]
        if (algorithm, chain_length) not in _BUNDLES:
            _BUNDLES[algorithm, chain_length] = chain_builder(ca_key, leaf_key, chain_length)
        return key_to_pem(leaf_key), _BUNDLES[algorithm, chain_length]

    return get


def _round_trip(layout: SecretLayout, chain_parts: int) -> tuple[str, str]:
    parts = {name: PartValue(value, VERSION) for name, value in layout.parts.items()}
    assembled = assemble(layout.manifest_value, VERSION, parts, chain_parts)
    return assembled.key_pem, assembled.bundle_pem


@settings(max_examples=40, deadline=None)
@given(
    algorithm=st.sampled_from(list(KeyAlgorithm)),
    chain_length=st.integers(1, 4),
    limit=limits,
    chain_parts=st.integers(1, 20),
)
def test_a_set_splits_within_the_limit_and_assembles_back_or_says_which_setting_is_short(
    material: Callable[[KeyAlgorithm, int], tuple[str, Bundle]],
    algorithm: KeyAlgorithm,
    chain_length: int,
    limit: int,
    chain_parts: int,
) -> None:
    # Given a key and chain of this algorithm and length
    key_pem, bundle = material(algorithm, chain_length)
    spec = LayoutSpec(SET_NAME, chain_parts, limit)
    # When it is split
    try:
        layout = split_bundle(spec, VERSION, key_pem, bundle)
    except CapacityError as refused:
        # Then either it is refused naming the setting to raise, and truly so
        message = str(refused)
        if "private key PEM" in message:
            assert len(key_pem) > limit and f"value_limit={limit}" in message
        elif "chain parts" in message:
            needed = re.search(r"needs (\d+) chain parts", message)
            assert needed is not None and int(needed.group(1)) > chain_parts
            assert f"chain_parts={chain_parts}" in message
        else:
            assert "manifest is" in message and f"value_limit={limit}" in message
        return
    # Or every value fits, every provisioned part is written...
    assert len(layout.manifest_value) <= limit
    assert all(len(value) <= limit for value in layout.parts.values())
    assert len(layout.parts) == 1 + chain_parts
    # ...and the set assembles back to the same key and certificates
    again_key, again_bundle = _round_trip(layout, chain_parts)
    assert again_key == key_pem
    assert parse_bundle(again_bundle) == bundle
    assert again_bundle.rstrip("\n") == bundle.fullchain_pem.rstrip("\n")


@settings(max_examples=20, deadline=None)
@given(
    algorithm=st.sampled_from(list(KeyAlgorithm)),
    chain_length=st.integers(1, 4),
    limit=st.integers(4096, MAX_VALUE_LIMIT),
)
def test_a_part_per_certificate_at_4096_or_more_always_fits(
    material: Callable[[KeyAlgorithm, int], tuple[str, Bundle]],
    algorithm: KeyAlgorithm,
    chain_length: int,
    limit: int,
) -> None:
    # Given room for one part per certificate (leaf included) at >= 4,096,
    # which every supported key and certificate fits
    key_pem, bundle = material(algorithm, chain_length)
    chain_parts = chain_length + 1
    # When
    layout = split_bundle(LayoutSpec(SET_NAME, chain_parts, limit), VERSION, key_pem, bundle)
    # Then it is never refused, and parts the chain did not need hold the filler
    used = [v for name, v in layout.parts.items() if "/chain-" in name and v != UNUSED_PART]
    assert 1 <= len(used) <= chain_parts
    assert parse_bundle(_round_trip(layout, chain_parts)[1]) == bundle

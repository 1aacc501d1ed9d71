"""split_bundle at the exact value limit: a manifest of exactly value_limit
characters is kept as it is, one character less moves the oldest superseded
entries out first, then the leaf (which still assembles back), and a
manifest that fits in no way is refused with the setting to raise."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from certrotor.errors import CapacityError
from certrotor.layout import LayoutSpec, PartValue, SecretLayout, assemble, split_bundle
from certrotor.layout.manifest import MAX_SUPERSEDED, SupersededRef
from certrotor.pki.bundle import Bundle, parse_bundle
from certrotor.pki.keys import PrivateKey, key_to_pem
from certrotor.record import replace

VERSION = "a1b2c3d4-0000-4000-8000-000000000001"
CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "c" * 36
HISTORY = tuple(SupersededRef(f"{i:040x}", CA, 9 - i) for i in range(MAX_SUPERSEDED))
CHAIN_PARTS = 4


@pytest.fixture
def ec_set(issue_set: Callable[..., Bundle], leaf_key: PrivateKey) -> tuple[str, Bundle]:
    return key_to_pem(leaf_key), issue_set(leaf_key)


def split(ec_set: tuple[str, Bundle], limit: int, history: Sequence[SupersededRef] = ()) -> SecretLayout:
    key_pem, bundle = ec_set
    return split_bundle(LayoutSpec("team/web", CHAIN_PARTS, limit), VERSION, key_pem, bundle, superseded=history)


def with_leaf(ec_set: tuple[str, Bundle], history: Sequence[SupersededRef] = ()) -> int:
    """The manifest's length with the leaf in it and `history`."""
    return len(split(ec_set, 65536, history).manifest_value)


def without_leaf(ec_set: tuple[str, Bundle], history: Sequence[SupersededRef] = ()) -> int:
    """The manifest's length once the leaf leads the chain (digests are all 64 characters)."""
    manifest = split(ec_set, 65536, history).manifest
    return len(replace(manifest, certificate=None).to_json())


def assembles(ec_set: tuple[str, Bundle], layout: SecretLayout) -> None:
    parts = {name: PartValue(value, VERSION) for name, value in layout.parts.items()}
    assembled = assemble(layout.manifest_value, VERSION, parts, CHAIN_PARTS)
    assert parse_bundle(assembled.bundle_pem) == ec_set[1]


def test_a_manifest_of_exactly_the_limit_keeps_the_leaf_and_one_less_moves_it_to_the_chain(
    ec_set: tuple[str, Bundle],
) -> None:
    size = with_leaf(ec_set)
    at = split(ec_set, size)
    assert len(at.manifest_value) == size
    assert at.manifest.certificate == ec_set[1].leaf_pem
    under = split(ec_set, size - 1)
    assert under.manifest.certificate is None
    assert len(under.manifest_value) <= size - 1
    assembles(ec_set, under)


def test_a_manifest_without_the_leaf_of_exactly_the_limit_fits_and_one_less_is_refused(
    ec_set: tuple[str, Bundle],
) -> None:
    size = without_leaf(ec_set)
    layout = split(ec_set, size)
    assert layout.manifest.certificate is None
    assert len(layout.manifest_value) == size
    assembles(ec_set, layout)
    with pytest.raises(CapacityError) as refused:
        split(ec_set, size - 1)
    assert str(refused.value) == (
        f"set team/web: the manifest is {size} characters, over value_limit={size - 1}; raise value_limit"
    )


@pytest.mark.parametrize("kept", [MAX_SUPERSEDED, MAX_SUPERSEDED - 1, 2, 1])
def test_the_newest_superseded_entries_that_fit_exactly_are_kept_with_the_leaf(
    ec_set: tuple[str, Bundle], kept: int
) -> None:
    limit = with_leaf(ec_set, HISTORY[:kept])
    layout = split(ec_set, limit, HISTORY)
    assert layout.manifest.superseded == HISTORY[:kept]
    assert layout.manifest.certificate == ec_set[1].leaf_pem
    assert len(layout.manifest_value) == limit


def test_the_newest_entry_stays_when_the_leaf_must_leave(ec_set: tuple[str, Bundle]) -> None:
    # A limit that holds the leaf with no history, but not with one entry:
    # the entry for the certificate just replaced is kept; the leaf moves.
    limit = with_leaf(ec_set, HISTORY[:1]) - 1
    assert with_leaf(ec_set) <= limit
    layout = split(ec_set, limit, HISTORY)
    assert layout.manifest.superseded == HISTORY[:1]
    assert layout.manifest.certificate is None
    assembles(ec_set, layout)

"""Split a set into secret values within the limit, and assemble it back or refuse."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from certrotor.config import KeyAlgorithm
from certrotor.errors import CapacityError, IntegrityError, NotIssuedError
from certrotor.layout import LayoutSpec, Manifest, PartValue, SecretLayout, assemble, digest, split_bundle
from certrotor.layout.manifest import INITIAL_VALUE, MAX_SUPERSEDED, SupersededRef, history_after
from certrotor.layout.split import UNUSED_PART, check_capacity
from certrotor.pki.bundle import Bundle, cert_to_pem, fingerprint, parse_bundle
from certrotor.pki.keys import PrivateKey, generate_key, key_to_pem

IssueSet = Callable[..., Bundle]
ChainBuilder = Callable[[PrivateKey, PrivateKey, int], Bundle]

VERSION = "a1b2c3d4-0000-4000-8000-000000000001"
OTHER_VERSION = "a1b2c3d4-0000-4000-8000-000000000002"


def _read_back(layout: SecretLayout, version: str | None = VERSION) -> dict[str, PartValue]:
    """The parts as a reader gets them: each value at the version it was read."""
    return {name: PartValue(value, version) for name, value in layout.parts.items()}


def _all_within(layout: SecretLayout, limit: int) -> bool:
    return len(layout.manifest_value) <= limit and all(len(v) <= limit for v in layout.parts.values())


def _edited_manifest(layout: SecretLayout, **changes: object) -> str:
    data = json.loads(layout.manifest_value)
    data.update(changes)
    return json.dumps(data)


@pytest.fixture
def ec_set(issue_set: IssueSet, leaf_key: PrivateKey) -> tuple[str, Bundle]:
    """An EC P-256 key and its leaf, intermediate and root."""
    return key_to_pem(leaf_key), issue_set(leaf_key)


@pytest.fixture
def ec_layout(ec_set: tuple[str, Bundle]) -> SecretLayout:
    key_pem, bundle = ec_set
    return split_bundle(LayoutSpec("team/web", 2, 4096), VERSION, key_pem, bundle)


@pytest.fixture(scope="module")
def rsa_4096_two_intermediates(
    rsa_4096_key: PrivateKey, rsa_4096_ca_key: PrivateKey, chain_builder: ChainBuilder
) -> tuple[str, Bundle]:
    """RSA-4096 everywhere: leaf, two intermediates and the root."""
    return key_to_pem(rsa_4096_key), chain_builder(rsa_4096_ca_key, rsa_4096_key, 3)


# --------------------------------------------------------------------------
# Split


def test_every_part_and_the_manifest_fit_within_the_limit(ec_layout: SecretLayout) -> None:
    # Given / When the default EC set is split at 4,096
    # Then no value is over the limit, and every provisioned part is written
    assert _all_within(ec_layout, 4096)
    assert set(ec_layout.parts) == {"team/web/key", "team/web/chain-0", "team/web/chain-1"}


def test_the_key_part_is_the_key_pem_alone(ec_set: tuple[str, Bundle], ec_layout: SecretLayout) -> None:
    key_pem, _ = ec_set
    assert ec_layout.parts["team/web/key"] == key_pem


def test_the_leaf_is_in_the_manifest_when_it_fits(ec_set: tuple[str, Bundle], ec_layout: SecretLayout) -> None:
    # Given / When
    _, bundle = ec_set
    # Then the manifest holds the leaf and the chain starts at the intermediate
    assert ec_layout.manifest.certificate == bundle.leaf_pem
    assert ec_layout.parts["team/web/chain-0"] == bundle.chain_pem
    assert ec_layout.parts["team/web/chain-1"] == UNUSED_PART


def test_the_leaf_leads_the_chain_when_it_does_not_fit_the_manifest(ec_set: tuple[str, Bundle]) -> None:
    # Given a limit too small for a manifest holding the leaf
    key_pem, bundle = ec_set
    # When
    layout = split_bundle(LayoutSpec("team/web", 4, 1024), VERSION, key_pem, bundle)
    # Then the manifest names the leaf by fingerprint only, and chain-0 starts with it
    assert layout.manifest.certificate is None
    assert "certificate" not in json.loads(layout.manifest_value)
    assert layout.parts["team/web/chain-0"].startswith(bundle.leaf_pem)
    assert _all_within(layout, 1024)


def test_the_manifest_describes_the_leaf(ec_set: tuple[str, Bundle], ec_layout: SecretLayout) -> None:
    _, bundle = ec_set
    manifest = ec_layout.manifest
    assert manifest.set_name == "team/web"
    assert manifest.version == VERSION
    assert manifest.serial == format(bundle.leaf.serial_number, "x")
    assert manifest.fingerprint == fingerprint(bundle.leaf)
    assert manifest.not_after == bundle.leaf.not_valid_after_utc.isoformat()
    assert manifest.key_algorithm == "EC secp256r1"
    assert [p.name for p in manifest.parts] == ["team/web/key", "team/web/chain-0", "team/web/chain-1"]


def test_the_manifest_round_trips_through_json(ec_layout: SecretLayout) -> None:
    assert Manifest.from_json(ec_layout.manifest_value) == ec_layout.manifest


def test_an_rsa_4096_chain_with_two_intermediates_needs_two_chain_parts_at_4096(
    rsa_4096_two_intermediates: tuple[str, Bundle],
) -> None:
    # Given RSA-4096 everywhere, three CA certificates above the leaf
    key_pem, bundle = rsa_4096_two_intermediates
    # When it is split at 4,096 with room for three chain parts
    layout = split_bundle(LayoutSpec("team/big", 3, 4096), VERSION, key_pem, bundle)
    used = [v for name, v in layout.parts.items() if "/chain-" in name and v != UNUSED_PART]
    # Then at least two chain parts are used, each within the limit
    assert len(used) >= 2
    assert _all_within(layout, 4096)


def test_an_rsa_4096_chain_with_two_intermediates_does_not_fit_one_chain_part(
    rsa_4096_two_intermediates: tuple[str, Bundle],
) -> None:
    key_pem, bundle = rsa_4096_two_intermediates
    with pytest.raises(CapacityError, match="chain_parts=1"):
        split_bundle(LayoutSpec("team/big", 1, 4096), VERSION, key_pem, bundle)


def test_too_few_chain_parts_is_a_capacity_error_naming_chain_parts(ec_set: tuple[str, Bundle]) -> None:
    # Given a chain that needs two parts at 1,024 and one part provisioned
    key_pem, bundle = ec_set
    # When / Then the message names the setting to raise
    with pytest.raises(CapacityError, match=r"needs \d+ chain parts .* but chain_parts=1; raise chain_parts"):
        split_bundle(LayoutSpec("team/web", 1, 1024), VERSION, key_pem, bundle)


def test_a_key_over_the_limit_is_a_capacity_error_naming_value_limit(issue_set: IssueSet) -> None:
    # Given an RSA-2048 key (about 1,700 characters of PEM) and a 1,024 limit
    key = generate_key(KeyAlgorithm.RSA_2048)
    bundle = issue_set(key)
    # When / Then
    with pytest.raises(CapacityError, match=r"private key PEM is \d+ characters, over value_limit=1024") as refused:
        split_bundle(LayoutSpec("team/web", 4, 1024), VERSION, key_to_pem(key), bundle)
    # And the key itself is not in the message
    assert key_to_pem(key).splitlines()[1] not in str(refused.value)


def test_a_manifest_over_the_limit_is_a_capacity_error_naming_value_limit(ec_set: tuple[str, Bundle]) -> None:
    # Given twenty chain parts, whose digests alone outgrow a 1,024 manifest
    key_pem, bundle = ec_set
    # When / Then
    with pytest.raises(CapacityError, match=r"manifest is \d+ characters, over value_limit=1024"):
        split_bundle(LayoutSpec("team/web", 20, 1024), VERSION, key_pem, bundle)


def test_a_certificate_larger_than_the_limit_is_cut_and_still_reassembles(
    rsa_4096_ca_key: PrivateKey, leaf_key: PrivateKey, chain_builder: ChainBuilder
) -> None:
    # Given an EC leaf under RSA-4096 CAs (about 1,900 characters each) and a
    # limit of 1,536 that no CA certificate fits: they must be cut inside
    key_pem, bundle = key_to_pem(leaf_key), chain_builder(rsa_4096_ca_key, leaf_key, 3)
    assert all(len(cert_to_pem(c)) > 1536 for c in bundle.chain)
    # When
    layout = split_bundle(LayoutSpec("team/big", 8, 1536), VERSION, key_pem, bundle)
    assembled = assemble(layout.manifest_value, VERSION, _read_back(layout), 8)
    # Then every value fits and the chain comes back whole
    assert _all_within(layout, 1536)
    assert parse_bundle(assembled.bundle_pem) == bundle


# --------------------------------------------------------------------------
# Assemble


def test_a_split_set_assembles_back_exactly(ec_set: tuple[str, Bundle], ec_layout: SecretLayout) -> None:
    # Given / When
    key_pem, bundle = ec_set
    assembled = assemble(ec_layout.manifest_value, VERSION, _read_back(ec_layout), 2)
    # Then the key is the same text and the bundle the same certificates, leaf first
    assert assembled.key_pem == key_pem
    assert assembled.manifest == ec_layout.manifest
    assert assembled.bundle_pem.rstrip("\n") == bundle.fullchain_pem.rstrip("\n")
    assert parse_bundle(assembled.bundle_pem) == bundle


def test_parts_read_without_a_version_assemble_when_their_digests_match(ec_layout: SecretLayout) -> None:
    # Given parts injected by ECS, whose VersionId the reader cannot know
    assembled = assemble(ec_layout.manifest_value, None, _read_back(ec_layout, version=None))
    # When / Then the digests alone bind them
    assert assembled.key_pem == ec_layout.parts["team/web/key"]


@pytest.mark.parametrize("part", ["team/web/key", "team/web/chain-0", "team/web/chain-1"])
def test_a_tampered_part_is_refused(ec_layout: SecretLayout, part: str) -> None:
    # Given one part with one character added
    parts = _read_back(ec_layout)
    parts[part] = PartValue(parts[part].value + " ", VERSION)
    # When / Then
    with pytest.raises(IntegrityError, match=f"part {part} does not match the manifest's digest"):
        assemble(ec_layout.manifest_value, VERSION, parts)


def test_a_missing_part_is_refused(ec_layout: SecretLayout) -> None:
    parts = _read_back(ec_layout)
    del parts["team/web/chain-0"]
    with pytest.raises(IntegrityError, match="part team/web/chain-0 is missing"):
        assemble(ec_layout.manifest_value, VERSION, parts)


def test_a_part_from_a_different_version_is_refused(ec_layout: SecretLayout) -> None:
    # Given the key part read at another rotation's version, same value
    parts = _read_back(ec_layout)
    parts["team/web/key"] = PartValue(parts["team/web/key"].value, OTHER_VERSION)
    # When / Then
    with pytest.raises(IntegrityError, match=f"part team/web/key is from version {OTHER_VERSION}"):
        assemble(ec_layout.manifest_value, VERSION, parts)


def test_a_key_from_another_rotation_is_refused_even_without_versions(
    ec_layout: SecretLayout, issue_set: IssueSet
) -> None:
    # Given a key part from another rotation, as ECS env injection would give it
    other_key = generate_key(KeyAlgorithm.EC_P256)
    parts = _read_back(ec_layout, version=None)
    parts["team/web/key"] = PartValue(key_to_pem(other_key), None)
    # When / Then the digest refuses it
    with pytest.raises(IntegrityError, match="does not match the manifest's digest"):
        assemble(ec_layout.manifest_value, None, parts)


def test_a_manifest_read_at_another_version_is_refused(ec_layout: SecretLayout) -> None:
    with pytest.raises(IntegrityError, match=f"manifest names version {VERSION} but was read at {OTHER_VERSION}"):
        assemble(ec_layout.manifest_value, OTHER_VERSION, _read_back(ec_layout))


def test_more_chain_parts_than_provisioned_is_refused_naming_chain_parts(ec_layout: SecretLayout) -> None:
    # Given a manifest listing two chain parts and a reader provisioned for one
    # When / Then
    with pytest.raises(CapacityError, match="lists 2 chain parts but only 1 are provisioned; raise chain_parts"):
        assemble(ec_layout.manifest_value, VERSION, _read_back(ec_layout), 1)


def test_a_manifest_whose_fingerprint_does_not_match_the_leaf_is_refused(ec_layout: SecretLayout) -> None:
    # Given a manifest naming another certificate's fingerprint
    manifest = _edited_manifest(ec_layout, fingerprint_sha256="00" * 32)
    # When / Then
    with pytest.raises(IntegrityError, match=r"^the leaf certificate does not match the manifest's fingerprint$"):
        assemble(manifest, VERSION, _read_back(ec_layout))


def test_a_manifest_carrying_another_leaf_is_refused(ec_layout: SecretLayout, issue_set: IssueSet) -> None:
    # Given a manifest whose embedded leaf was swapped for another certificate
    other = issue_set(generate_key(KeyAlgorithm.EC_P256))
    manifest = _edited_manifest(ec_layout, certificate=other.leaf_pem)
    # When / Then
    with pytest.raises(IntegrityError, match=r"^the leaf certificate does not match the manifest's fingerprint$"):
        assemble(manifest, VERSION, _read_back(ec_layout))


def test_a_manifest_with_a_corrupt_leaf_is_an_integrity_error(ec_layout: SecretLayout) -> None:
    # Given a manifest whose embedded leaf PEM was damaged
    pem = ec_layout.manifest.certificate
    assert pem is not None
    manifest = _edited_manifest(ec_layout, certificate=pem[:100] + "!!!!" + pem[104:])
    # When / Then it is refused as a set that does not belong together
    with pytest.raises(IntegrityError, match=r"^the set's certificate text is malformed$"):
        assemble(manifest, VERSION, _read_back(ec_layout))


def test_a_set_with_no_certificate_at_all_is_refused(ec_layout: SecretLayout) -> None:
    # Given a manifest without a leaf whose chain parts are all unused
    manifest = _edited_manifest(ec_layout, certificate=None)
    parts = _read_back(ec_layout)
    data = json.loads(manifest)
    data.pop("certificate")
    for ref in data["parts"]:
        if ref["role"] == "chain":
            ref["sha256"] = digest(UNUSED_PART)
            parts[ref["name"]] = PartValue(UNUSED_PART, VERSION)
    # When / Then
    with pytest.raises(IntegrityError, match="fingerprint"):
        assemble(json.dumps(data), VERSION, parts)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{",
        "[]",
        "null",
        '"a string"',
        "{}",
        '{"format": 1}',
        '{"format": 2, "parts": []}',
    ],
)
def test_malformed_manifest_json_is_refused(ec_layout: SecretLayout, text: str) -> None:
    with pytest.raises(IntegrityError, match="manifest"):
        assemble(text, VERSION, _read_back(ec_layout))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("parts", "not a list"),
        ("parts", [{"name": "team/web/chain-0", "role": "chain", "sha256": "00"}]),
        ("parts", [{"name": "a", "role": "key", "sha256": "00"}, {"name": "b", "role": "key", "sha256": "00"}]),
        ("parts", [{"name": "a", "role": "key", "sha256": "00"}, {"name": "b", "role": "other", "sha256": "00"}]),
        ("parts", [{"name": "a", "role": "key"}]),
        ("certificate", 5),
        ("certificate", ["-----BEGIN CERTIFICATE-----"]),
    ],
)
def test_a_manifest_with_a_malformed_field_is_refused(ec_layout: SecretLayout, field: str, value: object) -> None:
    # Given a manifest with one field of the wrong shape
    manifest = _edited_manifest(ec_layout, **{field: value})
    # When / Then it is an integrity error, never a crash of another kind
    with pytest.raises(IntegrityError):
        assemble(manifest, VERSION, _read_back(ec_layout))


def test_the_initial_placeholder_means_not_issued_yet(ec_layout: SecretLayout) -> None:
    # Given the value the stack creates secrets with / When / Then
    with pytest.raises(NotIssuedError, match="no certificate has been issued"):
        assemble(INITIAL_VALUE, None, _read_back(ec_layout))


@pytest.mark.parametrize(
    "parts",
    [
        [{"name": "other/web/key", "role": "key"}, {"name": "team/web/chain-0", "role": "chain"}],
        [{"name": "team/web/key", "role": "key"}, {"name": "other/web/chain-0", "role": "chain"}],
        [{"name": "team/web/key", "role": "key"}, {"name": "team/web/chain-1", "role": "chain"}],
        [
            {"name": "team/web/key", "role": "key"},
            {"name": "team/web/chain-0", "role": "chain"},
            {"name": "team/web/chain-0", "role": "chain"},
        ],
    ],
)
def test_a_manifest_naming_parts_that_are_not_its_sets_own_is_refused(
    ec_layout: SecretLayout, parts: list[dict[str, str]]
) -> None:
    # Given a manifest that sends the reader to another set's secret, or out of layout order
    manifest = _edited_manifest(ec_layout, parts=[{**p, "sha256": "00"} for p in parts])
    # When / Then it is refused before any part is looked at
    with pytest.raises(IntegrityError, match="lists parts that are not its own"):
        Manifest.from_json(manifest)


CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "c" * 36
HISTORY = tuple(SupersededRef(f"{i:040x}", CA, 9 - i) for i in range(MAX_SUPERSEDED))


def test_the_superseded_list_round_trips_and_is_newest_first_after_a_rotation(ec_set: tuple[str, Bundle]) -> None:
    key_pem, bundle = ec_set
    layout = split_bundle(LayoutSpec("team/web", 2, 65536), VERSION, key_pem, bundle, generation=10, superseded=HISTORY)
    manifest = Manifest.from_json(layout.manifest_value)
    generation, superseded = history_after(manifest)
    assert (manifest.generation, manifest.superseded) == (10, HISTORY)
    assert generation == 11
    assert superseded == (SupersededRef(manifest.serial, None, 10), *HISTORY[: MAX_SUPERSEDED - 1])


def test_a_manifest_from_before_generations_starts_them(ec_layout: SecretLayout) -> None:
    assert history_after(None) == (1, ())
    assert history_after(ec_layout.manifest) == (1, (SupersededRef(ec_layout.manifest.serial, None, 0),))


def test_the_oldest_superseded_entries_go_before_the_leaf_leaves_the_manifest(ec_set: tuple[str, Bundle]) -> None:
    key_pem, bundle = ec_set
    # Given a limit that holds the leaf with two entries but not with eight
    two = split_bundle(LayoutSpec("team/web", 2, 65536), VERSION, key_pem, bundle, superseded=HISTORY[:2])
    limit = len(two.manifest_value) + 10
    # When
    layout = split_bundle(LayoutSpec("team/web", 2, limit), VERSION, key_pem, bundle, superseded=HISTORY)
    # Then the leaf stays and the newest two entries are kept
    assert layout.manifest.certificate == bundle.leaf_pem
    assert layout.manifest.superseded == HISTORY[:2]


@pytest.mark.parametrize("superseded", ["x", [{"serial": "ab"}], [{"serial": "ab", "generation": True}], [{}] * 9])
def test_a_malformed_superseded_list_is_an_integrity_error(ec_layout: SecretLayout, superseded: object) -> None:
    with pytest.raises(IntegrityError):
        Manifest.from_json(_edited_manifest(ec_layout, superseded=superseded))


def test_a_key_exactly_at_the_limit_fits_and_one_character_over_is_refused(ec_set: tuple[str, Bundle]) -> None:
    key_pem, _ = ec_set
    size = len(key_pem)
    check_capacity(LayoutSpec("team/web", 1, size), key_pem, [])
    with pytest.raises(CapacityError) as refused:
        check_capacity(LayoutSpec("team/web", 1, size - 1), key_pem, [])
    assert str(refused.value) == (
        f"set team/web: the private key PEM is {size} characters, over value_limit={size - 1}; "
        "raise value_limit or use a smaller key algorithm"
    )

"""Limits tested at limit - 1, limit and limit + 1, and the checks a small
regression would silently drop (each of these once went unnoticed):
the part-size limit, the manifest's part order, every certificate's validity
(not only the leaf's), the issuer's CA-expiry cap, single-label wildcards and
the key directory's mode."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from certrotor.client.files import MaterialDirectoryError, check_directory
from certrotor.config import IssuerPolicy, KeyAlgorithm
from certrotor.errors import BundleError, IntegrityError
from certrotor.layout import Manifest
from certrotor.layout.split import _pack
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import Bundle, check_chain
from certrotor.pki.keys import PrivateKey, generate_key
from certrotor.pki.policy import RequestRefused, _labels, check_validity, dns_name_allowed

NOW = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.UTC)

# -- the part-size limit ---------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "parts"), [(19, ["a" * 10, "b" * 10]), (20, ["a" * 10 + "b" * 10]), (21, ["a" * 10 + "b" * 10])]
)
def test_two_blocks_share_a_part_exactly_when_they_fit_the_limit(limit: int, parts: list[str]) -> None:
    # Given two 10-character blocks / When packed at limit 19, 20, 21
    packed = _pack(["a" * 10, "b" * 10], limit)
    # Then they share a part only from 20 on, and no part is over the limit
    assert packed == parts
    assert all(len(p) <= limit for p in packed)


@pytest.mark.parametrize(("size", "pieces"), [(9, [9]), (10, [10]), (11, [10, 1]), (25, [10, 10, 5])])
def test_a_block_over_the_limit_is_cut_into_pieces_of_exactly_the_limit(size: int, pieces: list[int]) -> None:
    assert [len(p) for p in _pack(["c" * size], 10)] == pieces


def test_a_block_after_a_cut_block_starts_a_new_part() -> None:
    assert _pack(["x" * 3, "c" * 12, "y" * 3], 10) == ["x" * 3, "c" * 10, "c" * 2, "y" * 3]


# -- the manifest's part order ---------------------------------------------------


def _manifest(parts: list[dict[str, str]]) -> str:
    return (
        Manifest(
            set_name="tls/web",
            version="v" * 36,
            serial="1",
            not_before="2026-01-01T00:00:00+00:00",
            not_after="2026-02-01T00:00:00+00:00",
            fingerprint="0" * 64,
            key_algorithm="EC_prime256v1",
            parts=(),
        )
        .to_json()
        .replace('"parts":[]', '"parts":' + str(parts).replace("'", '"'))
    )


def test_a_manifest_listing_its_chain_parts_out_of_order_is_refused() -> None:
    # Given a manifest whose parts are the set's own, but chain-1 before chain-0
    parts = [
        {"name": "tls/web/key", "role": "key", "sha256": "0"},
        {"name": "tls/web/chain-1", "role": "chain", "sha256": "1"},
        {"name": "tls/web/chain-0", "role": "chain", "sha256": "2"},
    ]
    # When it is parsed / Then it is refused: the order is the layout's
    with pytest.raises(IntegrityError, match="not its own"):
        Manifest.from_json(_manifest(parts))


def test_a_manifest_listing_its_parts_in_layout_order_is_accepted() -> None:
    parts = [
        {"name": "tls/web/key", "role": "key", "sha256": "0"},
        {"name": "tls/web/chain-0", "role": "chain", "sha256": "1"},
        {"name": "tls/web/chain-1", "role": "chain", "sha256": "2"},
    ]
    assert [p.name for p in Manifest.from_json(_manifest(parts)).parts] == [p["name"] for p in parts]


# -- every certificate's validity ------------------------------------------------


def _ca_certificate(
    signer: LocalCA, key: PrivateKey, name: str, not_before: dt.datetime, not_after: dt.datetime
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(signer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer.key, hashes.SHA256())  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(("offset", "valid"), [(-1, False), (0, True), (1, True)])
def test_an_expired_intermediate_fails_the_chain_even_with_a_valid_leaf(
    root_ca: LocalCA, offset: int, valid: bool
) -> None:
    # Given an intermediate that expires one second before, at, or one second after now
    # (while the root is valid), and a leaf it signed that is valid for a year
    now = root_ca.certificate.not_valid_before_utc + dt.timedelta(days=100)
    intermediate_after = now + dt.timedelta(seconds=offset)
    key = generate_key(KeyAlgorithm.EC_P256)
    intermediate = LocalCA(
        _ca_certificate(root_ca, key, "short intermediate", now - dt.timedelta(days=30), intermediate_after), key
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.example.test")]))
        .issuer_name(intermediate.certificate.subject)
        .public_key(generate_key(KeyAlgorithm.EC_P256).public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(intermediate.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    bundle = Bundle(leaf, (intermediate.certificate, root_ca.certificate))
    # When the chain is checked now / Then only an intermediate valid at now passes
    if valid:
        check_chain(bundle, root_ca.certificate, now)
    else:
        with pytest.raises(BundleError, match="short intermediate is not valid at"):
            check_chain(bundle, root_ca.certificate, now)


# -- the issuer's CA-expiry cap -----------------------------------------------


POLICY = IssuerPolicy(principal="orders-task", allowed_dns=("*.svc.internal",), max_validity_days=400)


@pytest.mark.parametrize(("days", "allowed"), [(9, True), (10, True), (11, False)])
def test_a_validity_up_to_the_cas_own_expiry_is_allowed_and_one_day_more_is_refused(days: int, allowed: bool) -> None:
    # Given a CA that expires exactly 10 days from now
    ca_not_after = NOW + dt.timedelta(days=10)
    # When 9, 10 or 11 days are asked for / Then up to 10 are allowed
    if allowed:
        assert check_validity(POLICY, days, ca_not_after, NOW, False) == days
    else:
        with pytest.raises(RequestRefused) as refused:
            check_validity(POLICY, days, ca_not_after, NOW, False)
        assert refused.value.rule == "validity_exceeds_ca"


# -- wildcards ------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["*.internal", "*", "*.*.internal", "a.*.internal"])
def test_a_wildcard_pattern_needs_two_labels_after_the_star(pattern: str) -> None:
    # A pattern "*.internal" would allow a name under a whole top-level domain
    assert _labels(pattern) is None
    assert not dns_name_allowed("svc.internal", [pattern])


def test_a_two_label_wildcard_allows_exactly_one_label_in_its_place() -> None:
    assert dns_name_allowed("a.svc.internal", ["*.svc.internal"])
    assert not dns_name_allowed("svc.internal", ["*.svc.internal"])
    assert not dns_name_allowed("a.b.svc.internal", ["*.svc.internal"])


# -- the key directory's mode -----------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "allowed"),
    [(0o700, True), (0o710, False), (0o740, False), (0o750, False), (0o770, False), (0o701, False), (0o705, False)],
)
def test_a_key_directory_with_any_group_or_other_access_is_refused(tmp_path: Path, mode: int, allowed: bool) -> None:
    target = tmp_path / "tls"
    target.mkdir()
    os.chmod(target, mode)
    if allowed:
        check_directory(target)
    else:
        with pytest.raises(MaterialDirectoryError, match=f"has mode {mode:04o}; it must be 0700"):
            check_directory(target)

"""Manifest.from_json field by field: what a well-formed manifest yields, the
exact line each malformed one is refused with, and the bounds at their
limits (no certificates needed: the manifest is parsed before any part)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from certrotor.errors import IntegrityError, NotIssuedError
from certrotor.layout.manifest import (
    INITIAL_VALUE,
    MAX_MANIFEST_CHARS,
    MAX_PARTS,
    MAX_SUPERSEDED,
    Manifest,
    PartRef,
    SupersededRef,
    check_belongs,
    digest,
    history_after,
)

SET = "team/web"
VERSION = "a1b2c3d4-0000-4000-8000-000000000001"
CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "c" * 36
TRUST = "team/trust"


def manifest_data(chain_parts: int = 2, **changes: Any) -> dict[str, Any]:
    """A well-formed manifest of SET as JSON data, with `changes` applied."""
    parts = [{"name": f"{SET}/key", "role": "key", "sha256": "aa"}]
    parts += [{"name": f"{SET}/chain-{i}", "role": "chain", "sha256": f"c{i}"} for i in range(chain_parts)]
    data: dict[str, Any] = {
        "format": 1,
        "set": SET,
        "version": VERSION,
        "serial": "0a1b",
        "not_before": "2026-01-01T00:00:00+00:00",
        "not_after": "2026-04-01T00:00:00+00:00",
        "fingerprint_sha256": "f" * 64,
        "key_algorithm": "EC_prime256v1",
        "parts": parts,
    }
    data.update(changes)
    return data


def refusal(data: Any) -> str:
    text: Any = data if isinstance(data, str | bytes) else json.dumps(data)
    with pytest.raises(IntegrityError) as refused:
        Manifest.from_json(text)
    return str(refused.value)


def test_a_minimal_manifest_yields_each_field_and_leaves_the_optional_ones_unset() -> None:
    manifest = Manifest.from_json(json.dumps(manifest_data()))
    assert manifest == Manifest(
        set_name=SET,
        version=VERSION,
        serial="0a1b",
        not_before="2026-01-01T00:00:00+00:00",
        not_after="2026-04-01T00:00:00+00:00",
        fingerprint="f" * 64,
        key_algorithm="EC_prime256v1",
        parts=(
            PartRef(f"{SET}/key", "key", "aa"),
            PartRef(f"{SET}/chain-0", "chain", "c0"),
            PartRef(f"{SET}/chain-1", "chain", "c1"),
        ),
    )
    assert manifest.key_part == PartRef(f"{SET}/key", "key", "aa")
    assert [p.name for p in manifest.chain_parts] == [f"{SET}/chain-0", f"{SET}/chain-1"]


def test_a_full_manifest_round_trips_and_writes_only_the_fields_it_has() -> None:
    superseded = [{"serial": "09", "generation": 4, "ca": CA}, {"serial": "08", "generation": 3}]
    data = manifest_data(certificate="PEM", trust=TRUST, ca=CA, generation=5, superseded=superseded)
    manifest = Manifest.from_json(json.dumps(data))
    assert (manifest.certificate, manifest.trust, manifest.ca, manifest.generation) == ("PEM", TRUST, CA, 5)
    assert manifest.superseded == (SupersededRef("09", CA, 4), SupersededRef("08", None, 3))
    # Compact JSON, the same keys back (an older manifest's absent ones stay absent).
    assert json.loads(manifest.to_json()) == data
    assert " " not in manifest.to_json()
    minimal = Manifest.from_json(json.dumps(manifest_data()))
    assert json.loads(minimal.to_json()) == manifest_data()


def test_the_initial_value_says_not_issued_yet_with_what_to_do() -> None:
    with pytest.raises(NotIssuedError) as raised:
        Manifest.from_json(INITIAL_VALUE)
    assert str(raised.value) == "no certificate has been issued for this set yet; rotate it (certrotor issue-now)"


def test_a_value_that_is_not_text_is_refused() -> None:
    assert refusal(b"{}") == "manifest is malformed: not text"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "manifest is malformed: manifest is not JSON"),
        ("[]", "manifest is malformed: manifest is not a JSON object"),
        ("x" * (MAX_MANIFEST_CHARS + 1), "manifest is malformed: manifest is 65,537 characters, at most 65,536"),
        ('{"a": [{"b": [1]}]}', "manifest is malformed: manifest is nested more than 3 levels deep"),
    ],
)
def test_text_that_is_not_a_bounded_json_object_is_refused(text: str, message: str) -> None:
    assert refusal(text).startswith(message)


@pytest.mark.parametrize(("value", "shown"), [(2, "2"), ("1", "'1'"), (None, "None")])
def test_another_format_is_refused_naming_it(value: object, shown: str) -> None:
    data = manifest_data(format=value)
    if value is None:
        del data["format"]
    assert refusal(data) == f"manifest format {shown} is not 1"


def test_up_to_max_parts_are_accepted_and_one_more_is_refused() -> None:
    assert MAX_PARTS == 21
    assert len(Manifest.from_json(json.dumps(manifest_data(chain_parts=MAX_PARTS - 1))).parts) == MAX_PARTS
    assert refusal(manifest_data(chain_parts=MAX_PARTS)) == "manifest is malformed: parts is not a list of at most 21"
    assert refusal(manifest_data(parts="team/web/key")) == "manifest is malformed: parts is not a list of at most 21"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"parts": [{"name": "team/web/key", "role": "key"}]}, "manifest is malformed: KeyError"),
        ({"parts": ["team/web/key"]}, "manifest is malformed: TypeError"),
        ({"superseded": [{"serial": "09"}]}, "manifest is malformed: KeyError"),
        ({"superseded": ["09"]}, "manifest is malformed: TypeError"),
    ],
)
def test_a_missing_or_misshapen_entry_is_refused_naming_the_kind_of_fault(
    changes: dict[str, Any], message: str
) -> None:
    assert refusal(manifest_data(**changes)) == message


@pytest.mark.parametrize(
    "field", ["set", "version", "serial", "not_before", "not_after", "fingerprint_sha256", "key_algorithm", "parts"]
)
def test_each_required_field_missing_is_refused(field: str) -> None:
    data = manifest_data()
    del data[field]
    assert refusal(data) == "manifest is malformed: KeyError"


@pytest.mark.parametrize("certificate", [5, ["-----BEGIN CERTIFICATE-----"]])
def test_a_certificate_that_is_not_text_is_refused(certificate: object) -> None:
    assert refusal(manifest_data(certificate=certificate)) == "manifest is malformed: certificate is not PEM text"


@pytest.mark.parametrize(
    "changes",
    [{"trust": 5}, {"ca": ["x"]}, {"superseded": [{"serial": "09", "generation": 1, "ca": 7}]}],
)
def test_a_trust_or_ca_that_is_not_a_name_is_refused(changes: dict[str, Any]) -> None:
    assert refusal(manifest_data(**changes)) == "manifest is malformed: trust and ca must be names"


@pytest.mark.parametrize("field", ["not_before", "not_after"])
def test_times_must_be_iso_8601_with_a_time_zone(field: str) -> None:
    wrong: dict[str, Any] = {field: "yesterday"}
    assert refusal(manifest_data(**wrong)) == f"manifest is malformed: {field} is not an ISO 8601 time"
    naive: dict[str, Any] = {field: "2026-01-01T00:00:00"}
    assert refusal(manifest_data(**naive)) == f"manifest is malformed: {field} has no time zone"


@pytest.mark.parametrize(
    "parts",
    [
        [{"name": f"{SET}/chain-0", "role": "chain", "sha256": "c0"}],
        [
            {"name": f"{SET}/key", "role": "key", "sha256": "aa"},
            {"name": f"{SET}/chain-0", "role": "key", "sha256": "c"},
        ],
    ],
)
def test_exactly_one_key_part_is_required(parts: list[dict[str, str]]) -> None:
    assert refusal(manifest_data(parts=parts)) == "manifest must list exactly one key part"


def test_a_part_with_an_unknown_role_is_refused() -> None:
    parts = manifest_data()["parts"]
    parts[1]["role"] = "bundle"
    assert refusal(manifest_data(parts=parts)) == "manifest lists a part with an unknown role"


@pytest.mark.parametrize(
    "names",
    [
        ["other/web/key", "team/web/chain-0"],
        ["team/web/key", "team/web/chain-1"],
        ["team/web/key", "team/web/chain-1", "team/web/chain-0"],
    ],
)
def test_parts_of_another_set_or_out_of_order_are_refused(names: list[str]) -> None:
    roles = ["key"] + ["chain"] * (len(names) - 1)
    parts = [{"name": n, "role": r, "sha256": "00"} for n, r in zip(names, roles, strict=True)]
    assert refusal(manifest_data(parts=parts)) == "manifest of team/web lists parts that are not its own"


def test_a_key_part_listed_after_the_chain_is_still_its_own() -> None:
    data = manifest_data(chain_parts=1)
    data["parts"].reverse()
    assert Manifest.from_json(json.dumps(data)).key_part.name == f"{SET}/key"


@pytest.mark.parametrize("generation", [0, 1, 10**6])
def test_a_generation_is_a_count_from_zero(generation: int) -> None:
    assert Manifest.from_json(json.dumps(manifest_data(generation=generation))).generation == generation


@pytest.mark.parametrize("generation", [-1, True, "3", 2.5])
def test_a_generation_that_is_not_a_count_is_refused(generation: object) -> None:
    assert refusal(manifest_data(generation=generation)) == "manifest is malformed: generation is not a count"


def test_up_to_max_superseded_entries_are_accepted_and_one_more_is_refused() -> None:
    assert MAX_SUPERSEDED == 8
    entries = [{"serial": f"{i:02x}", "generation": i} for i in range(MAX_SUPERSEDED + 1)]
    kept = Manifest.from_json(json.dumps(manifest_data(superseded=entries[:MAX_SUPERSEDED])))
    assert [r.serial for r in kept.superseded] == [f"{i:02x}" for i in range(MAX_SUPERSEDED)]
    message = "manifest is malformed: superseded is not a list of at most 8"
    assert refusal(manifest_data(superseded=entries)) == message
    assert refusal(manifest_data(superseded={"serial": "09", "generation": 1})) == message


@pytest.mark.parametrize("generation", [True, "1", None])
def test_a_superseded_generation_that_is_not_a_number_is_refused(generation: object) -> None:
    data = manifest_data(superseded=[{"serial": "09", "generation": generation}])
    assert refusal(data) == "manifest is malformed: a superseded generation is not a number"


def test_the_next_history_keeps_the_previous_certificate_with_its_ca_newest_first() -> None:
    older = [{"serial": "08", "generation": 3, "ca": "old-ca"}]
    previous = Manifest.from_json(json.dumps(manifest_data(ca=CA, generation=4, superseded=older)))
    assert history_after(previous) == (5, (SupersededRef("0a1b", CA, 4), SupersededRef("08", "old-ca", 3)))


def test_the_history_lists_the_previous_serial_once_and_at_most_max_superseded() -> None:
    full = [{"serial": f"{i:02x}", "generation": 9 - i} for i in range(MAX_SUPERSEDED)]
    full[2]["serial"] = "0a1b"  # the previous certificate is already listed
    previous = Manifest.from_json(json.dumps(manifest_data(generation=10, superseded=full)))
    generation, history = history_after(previous)
    assert generation == 11
    assert [r.serial for r in history] == ["0a1b", "00", "01", "03", "04", "05", "06", "07"]


def test_a_part_digest_is_the_sha256_of_its_utf8_text_in_lowercase_hex() -> None:
    assert digest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert digest("é") == "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c"


def test_a_manifest_belongs_only_to_the_set_it_names() -> None:
    manifest = Manifest.from_json(json.dumps(manifest_data()))
    check_belongs(manifest, SET)
    with pytest.raises(IntegrityError) as refused:
        check_belongs(manifest, "team/api")
    assert str(refused.value) == "the manifest is for set team/web, not team/api"

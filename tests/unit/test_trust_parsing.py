"""A trust secret's value that cannot be trusted is refused with one line
naming what is wrong (operators read it in the monitor's and the CLI's errors)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from certrotor.errors import IntegrityError
from certrotor.local.ca import LocalCA
from certrotor.services.trust import MAX_TRUST_DEPTH, TrustDocument

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "a" * 36


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    root = LocalCA.create_root("parsing root")
    doc = TrustDocument(rotator="r").with_ca(ARN, root.create_subordinate("parsing").pem + root.pem, "active", NOW)
    loaded: dict[str, Any] = json.loads(doc.to_json())
    return loaded


def refusal(value: str) -> str:
    with pytest.raises(IntegrityError) as refused:
        TrustDocument.from_json(value, "r")
    return str(refused.value)


def changed(document: dict[str, Any], **fields: Any) -> str:
    return json.dumps({**document, **fields})


def test_a_value_that_is_not_an_object_is_malformed() -> None:
    assert refusal("[]") == "trust bundle is malformed: trust bundle is not a JSON object"


def test_another_format_is_named(document: dict[str, Any]) -> None:
    assert refusal(changed(document, format="certrotor-trust/2")) == (
        "trust bundle format 'certrotor-trust/2' is not certrotor-trust/1"
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"anchors": None}, "TypeError"),
        ({"revision": "first"}, "ValueError"),
        ({"cas": [{"arn": ARN}]}, "KeyError"),
        ({"anchors": ["not an object"]}, "TypeError"),
    ],
)
def test_a_missing_or_mistyped_field_names_the_kind_of_error(
    document: dict[str, Any], fields: dict[str, Any], error: str
) -> None:
    assert refusal(changed(document, **fields)) == f"trust bundle is malformed: {error}"


def test_an_anchor_that_is_not_one_certificate_is_refused(document: dict[str, Any]) -> None:
    two = document["anchors"][0]["pem"] * 2
    for pem in ("not a certificate", two):
        anchors = [{**document["anchors"][0], "pem": pem}]
        assert refusal(changed(document, anchors=anchors)) == (
            "trust bundle holds an anchor that is not one PEM certificate"
        )


def test_an_anchor_whose_fingerprint_differs_names_its_subject(document: dict[str, Any]) -> None:
    anchors = [{**document["anchors"][0], "fingerprint_sha256": "0" * 64}]
    subject = document["anchors"][0]["subject"]
    assert refusal(changed(document, anchors=anchors)) == (
        f"trust bundle anchor {subject} does not match its fingerprint"
    )


def test_a_document_nested_deeper_than_its_shape_is_refused(document: dict[str, Any]) -> None:
    nested: Any = "x"
    for _ in range(MAX_TRUST_DEPTH):
        nested = [nested]
    assert refusal(changed(document, ca_rotation={"deep": nested})).startswith("trust bundle is malformed: ")


def test_the_revoke_state_round_trips_and_an_older_writers_document_reads_with_defaults(
    document: dict[str, Any],
) -> None:
    revoking = TrustDocument.from_json(json.dumps(document), "r").with_revoke({"serials": ["0a"], "stage": "asked"})
    assert TrustDocument.from_json(revoking.to_json(), "r").revoke == {"serials": ["0a"], "stage": "asked"}
    older = {k: v for k, v in document.items() if k not in ("updated", "revoke", "ca_rotation")}
    parsed = TrustDocument.from_json(json.dumps(older), "r")
    assert (parsed.updated, parsed.revoke, parsed.ca_rotation) == ("", {}, None)


def test_the_stored_value_is_compact_with_sorted_keys_so_an_equal_document_is_never_rewritten(
    document: dict[str, Any],
) -> None:
    parsed = TrustDocument.from_json(json.dumps(document), "r")
    one = parsed.with_rotation({"stage": "trust", "to": ARN}).with_revoke({"b": 1, "a": 2})
    other = parsed.with_rotation({"to": ARN, "stage": "trust"}).with_revoke({"a": 2, "b": 1})
    assert one.to_json() == other.to_json()
    value = one.to_json()
    assert value == json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"))

"""The trust document: anchors per CA, revisions, retirement, parsing."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from certrotor.errors import IntegrityError, NotFoundError
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import fingerprint
from certrotor.services.trust import CaStatus, TrustDocument, anchor_of, trust_pem_of

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ARN_A = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "a" * 36
ARN_B = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "b" * 36


def chain_of(sub: LocalCA, root: LocalCA) -> str:
    return sub.pem + root.pem


@pytest.fixture(scope="module")
def roots() -> tuple[LocalCA, LocalCA]:
    return LocalCA.create_root("root one"), LocalCA.create_root("root two")


def test_the_anchor_of_a_ca_chain_is_its_root(roots):
    root, _ = roots
    sub = root.create_subordinate("issuing")
    assert fingerprint(anchor_of(chain_of(sub, root))) == fingerprint(root.certificate)


def test_two_cas_under_one_root_share_one_anchor_and_one_revision(roots):
    root, _ = roots
    doc = TrustDocument(rotator="r").with_ca(ARN_A, chain_of(root.create_subordinate("a"), root), "active", NOW)
    again = doc.with_ca(ARN_B, chain_of(root.create_subordinate("b"), root), "incoming", NOW)
    assert len(again.anchors) == 1
    assert again.revision == doc.revision == 1
    assert again.trusts(ARN_A) and again.trusts(ARN_B)


def test_a_ca_under_a_new_root_adds_an_anchor_and_a_revision(roots):
    one, two = roots
    doc = TrustDocument(rotator="r").with_ca(ARN_A, chain_of(one.create_subordinate("a"), one), "active", NOW)
    doc = doc.with_ca(ARN_B, chain_of(two.create_subordinate("b"), two), "incoming", NOW)
    assert doc.revision == 2
    assert doc.pem == one.pem + two.pem


def test_retiring_a_ca_removes_its_root_only_when_no_other_ca_uses_it(roots):
    one, two = roots
    doc = TrustDocument(rotator="r").with_ca(ARN_A, chain_of(one.create_subordinate("a"), one), "active", NOW)
    shared = doc.with_ca(ARN_B, chain_of(one.create_subordinate("b"), one), "active", NOW)
    assert shared.with_status(ARN_A, CaStatus.RETIRED, NOW).pem == one.pem
    separate = doc.with_ca(ARN_B, chain_of(two.create_subordinate("b"), two), "active", NOW)
    retired = separate.with_status(ARN_A, CaStatus.RETIRED, NOW)
    assert retired.pem == two.pem
    assert not retired.trusts(ARN_A)
    assert retired.revision == separate.revision + 1


def test_retiring_an_unknown_ca_is_refused(roots):
    with pytest.raises(NotFoundError):
        TrustDocument(rotator="r").with_status(ARN_A, CaStatus.RETIRED, NOW)


def test_the_document_round_trips_through_json(roots):
    one, _ = roots
    doc = TrustDocument(rotator="r").with_ca(ARN_A, chain_of(one.create_subordinate("a"), one), "active", NOW)
    doc = doc.with_rotation({"stage": "trust", "to": ARN_B})
    assert TrustDocument.from_json(doc.to_json(), "r") == doc
    assert trust_pem_of(doc.to_json()) == one.pem


def test_the_stacks_initial_value_is_an_empty_bundle():
    assert TrustDocument.from_json(INITIAL_VALUE, "r") == TrustDocument(rotator="r")
    assert trust_pem_of(INITIAL_VALUE) == ""


def test_an_anchor_that_does_not_match_its_fingerprint_is_refused(roots):
    one, two = roots
    doc = TrustDocument(rotator="r").with_ca(ARN_A, chain_of(one.create_subordinate("a"), one), "active", NOW)
    data = json.loads(doc.to_json())
    data["anchors"][0]["pem"] = two.pem
    with pytest.raises(IntegrityError, match="does not match its fingerprint"):
        TrustDocument.from_json(json.dumps(data), "r")


@pytest.mark.parametrize("value", ["{}", "[]", "not json", '{"format": "certrotor-trust/1"}'])
def test_a_malformed_document_is_refused(value):
    with pytest.raises(IntegrityError):
        TrustDocument.from_json(value, "r")

"""Which certificate of a CA chain consumers pin, whatever the chain's order,
and when the trust document says it last changed its anchors."""

from __future__ import annotations

import datetime as dt

import pytest

from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import fingerprint
from certrotor.services.trust import CaStatus, TrustDocument, anchor_of

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=3)
ARN_A = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "a" * 36
ARN_B = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "b" * 36


@pytest.fixture(scope="module")
def cas() -> tuple[LocalCA, LocalCA, LocalCA, LocalCA]:
    """A root, an intermediate under it, an issuing CA under that, and another root."""
    root = LocalCA.create_root("anchors root")
    middle = root.create_subordinate("anchors intermediate")
    issuing = middle.create_subordinate("anchors issuing")
    return root, middle, issuing, LocalCA.create_root("anchors other root")


def test_the_self_issued_root_is_the_anchor_wherever_it_sits_in_the_chain(cas: tuple[LocalCA, ...]) -> None:
    root, middle, issuing, _ = cas
    for chain in (issuing.pem + middle.pem + root.pem, root.pem + issuing.pem + middle.pem):
        assert fingerprint(anchor_of(chain)) == fingerprint(root.certificate)


def test_a_chain_without_its_root_is_anchored_at_its_last_certificate(cas: tuple[LocalCA, ...]) -> None:
    _root, middle, issuing, other = cas
    # Three certificates, none self-issued: the last one, not the second.
    unrelated = other.create_subordinate("anchors unrelated")
    assert fingerprint(anchor_of(issuing.pem + middle.pem + unrelated.pem)) == fingerprint(unrelated.certificate)
    assert fingerprint(anchor_of(issuing.pem + middle.pem)) == fingerprint(middle.certificate)
    assert fingerprint(anchor_of(issuing.pem)) == fingerprint(issuing.certificate)


def test_updated_is_when_the_anchors_last_moved(cas: tuple[LocalCA, ...]) -> None:
    root, middle, issuing, other = cas
    doc = TrustDocument(rotator="r").with_ca(ARN_A, issuing.pem + middle.pem + root.pem, CaStatus.ACTIVE, NOW)
    assert (doc.revision, doc.updated) == (1, NOW.isoformat())
    # A CA under the same root moves no anchor: the time stays.
    same = doc.with_ca(ARN_B, middle.pem + root.pem, CaStatus.INCOMING, LATER)
    assert (same.revision, same.updated) == (1, NOW.isoformat())
    # A new root, then its removal, each move it.
    added = doc.with_ca(ARN_B, other.pem, CaStatus.INCOMING, LATER)
    assert (added.revision, added.updated) == (2, LATER.isoformat())
    removed = added.with_status(ARN_B, CaStatus.RETIRED, LATER + dt.timedelta(hours=1))
    assert (removed.revision, removed.updated) == (3, (LATER + dt.timedelta(hours=1)).isoformat())

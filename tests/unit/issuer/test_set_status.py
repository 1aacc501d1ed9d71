"""GET /sets/{name} through ManagedSets over the in-memory secret store: a
set not issued yet, issued, with a rotation in progress, with a current
manifest that does not parse; and who may ask (the deploying account's
roles only, known sets only)."""

from __future__ import annotations

import pytest

from certrotor.config import load_config
from certrotor.layout import Manifest
from certrotor.layout.manifest import INITIAL_VALUE, PartRef
from certrotor.local.provision import DEFAULT_CONFIG
from certrotor.pki.policy import RequestRefused
from certrotor.services.issuance import ManagedSets, SetStatus
from tests.unit.issuer.test_issuer_service import ORDERS, CountingTrigger
from tests.unit.rotation.fakes import FakeSecrets

HOME = "123456789012"
CONFIG = load_config(
    {**DEFAULT_CONFIG, "issuer_policies": [{"principal": "orders-task", "sets": ["demo/*"], "rate_per_minute": 5}]}
)
NOT_AFTER = "2030-02-01T00:00:00+00:00"
PENDING_TOKEN = "p" * 36


def manifest_value() -> str:
    parts = (PartRef("demo/web/key", "key", "0" * 64), PartRef("demo/web/chain-0", "chain", "0" * 64))
    manifest = Manifest(
        "demo/web", "v", "0a1b", "2030-01-01T00:00:00+00:00", NOT_AFTER, "f" * 64, "EC_prime256v1", parts
    )
    return manifest.to_json()


def managed(value: str, pending: bool = False) -> tuple[ManagedSets, str]:
    secrets = FakeSecrets()
    version = secrets.create_secret("demo/web", value)
    if pending:
        secrets.stage_pending("demo/web", PENDING_TOKEN)
    return ManagedSets(CONFIG, secrets, CountingTrigger(), home_account=HOME), version


def test_a_set_not_issued_yet() -> None:
    sets, version = managed(INITIAL_VALUE)
    assert sets.status(ORDERS, "demo/web") == SetStatus("demo/web", version, None, None, False, None)


def test_an_issued_set_with_a_rotation_in_progress() -> None:
    sets, version = managed(manifest_value(), pending=True)
    assert sets.status(ORDERS, "demo/web") == SetStatus("demo/web", version, "0a1b", NOT_AFTER, True, PENDING_TOKEN)


def test_an_issued_set_at_rest() -> None:
    sets, version = managed(manifest_value())
    assert sets.status(ORDERS, "demo/web") == SetStatus("demo/web", version, "0a1b", NOT_AFTER, False, None)


@pytest.mark.parametrize("pending", [False, True])
def test_a_current_manifest_that_does_not_parse_is_still_an_answer_with_the_problem(pending: bool) -> None:
    sets, version = managed('{"format": "not a manifest"}', pending=pending)
    status = sets.status(ORDERS, "demo/web")
    assert status.problem is not None and "manifest" in status.problem
    assert status == SetStatus(
        "demo/web", version, None, None, pending, PENDING_TOKEN if pending else None, status.problem
    )


def test_a_not_issued_set_with_a_rotation_in_progress() -> None:
    sets, version = managed(INITIAL_VALUE, pending=True)
    assert sets.status(ORDERS, "demo/web") == SetStatus("demo/web", version, None, None, True, PENDING_TOKEN)


def test_a_role_of_the_same_name_in_another_account_is_refused() -> None:
    sets, _ = managed(manifest_value())
    stranger = ORDERS.replace(HOME, "210987654321")
    with pytest.raises(RequestRefused) as refused:
        sets.status(stranger, "demo/web")
    assert refused.value.rule == "unknown_principal"
    assert str(refused.value) == "arn:aws:iam::210987654321:role/orders-task has no issuer policy"
    with pytest.raises(RequestRefused):
        sets.issue_now(stranger, "demo/web")


def test_a_set_the_policy_allows_but_nobody_manages_is_refused_by_name() -> None:
    sets, _ = managed(manifest_value())
    with pytest.raises(RequestRefused) as refused:
        sets.status(ORDERS, "demo/other")
    assert refused.value.rule == "unknown_set"
    assert str(refused.value) == "no managed set named 'demo/other'"

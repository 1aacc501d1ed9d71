"""app.py builds the stack from cdk.json's context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from certrotor_cdk.stack import CertrotorStack

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cdk_json() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())


def test_cdk_json_runs_app_py(cdk_json: dict) -> None:
    assert cdk_json["app"].endswith("app.py")


def test_app_builds_the_certrotor_stack_from_cdk_json_context(
    cdk_json: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import app as entry_point

    monkeypatch.delenv("CDK_OUTDIR", raising=False)
    monkeypatch.setattr(
        entry_point,
        "_cdk_json_context",
        lambda: {**cdk_json["context"], "certrotor:skip_bundling": "true"},
    )

    _, stack = entry_point.build_app(outdir=str(tmp_path))

    assert isinstance(stack, CertrotorStack)
    assert stack.stack_name == "Certrotor"
    assert [c.certificate_set.name for c in stack.certrotor.certificates] == [
        "tls/orders",
        "tls/payments",
    ]


def test_example_configuration_in_cdk_json_names_the_documented_sets(cdk_json: dict) -> None:
    config = cdk_json["context"]["certrotor"]

    assert config["ca"]["arn"].startswith("arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/")
    assert {s["name"] for s in config["sets"]} == {"tls/orders", "tls/payments"}

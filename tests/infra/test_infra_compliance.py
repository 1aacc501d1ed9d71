"""cdk-nag (AwsSolutions) and cfn-lint pass on the synthesized templates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from certrotor_cdk.rekey import child_executions_nag
from certrotor_cdk.rotator import TAGGED_RESOURCES_REGEX

NAG_RULE = Match.string_like_regexp("AwsSolutions-.*")
# CDK's Function adds DependsOn its role although Role is already a GetAtt;
# harmless, and not ours to change.
CFN_LINT_IGNORED = ["W3005"]


@pytest.fixture(scope="module", params=["main", "created_ca", "platform"])
def synth(request: pytest.FixtureRequest, infra_app: Any) -> Any:
    """Each stack: ours, with a created CA, and certrotor inside another app's stack."""
    if request.param == "platform":
        return infra_app.platform.synth
    return getattr(infra_app, request.param)


def test_cdk_nag_reports_no_unsuppressed_errors(synth: Any) -> None:
    errors = Annotations.from_stack(synth.stack).find_error("*", NAG_RULE)

    assert [(e.id, e.entry.data) for e in errors] == []


def test_cdk_nag_reports_no_unsuppressed_warnings(synth: Any) -> None:
    warnings = Annotations.from_stack(synth.stack).find_warning("*", NAG_RULE)

    assert [(w.id, w.entry.data) for w in warnings] == []


def nag_suppressions(synth: Any) -> list[dict[str, Any]]:
    found = []
    for resource in synth.resources.values():
        rules = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        found.extend(rules)
    return found


def test_every_suppression_states_its_reason(synth: Any) -> None:
    suppressions = nag_suppressions(synth)

    assert suppressions
    for suppression in suppressions:
        assert len(suppression["reason"]) >= 60, suppression


def test_only_the_reviewed_rules_are_suppressed(synth: Any) -> None:
    rules = {s["id"] for s in nag_suppressions(synth)}

    assert rules <= {
        "AwsSolutions-IAM5",
        "AwsSolutions-L1",
        "AwsSolutions-S1",
        "AwsSolutions-SMG4",
        "HIPAA.Security-SecretsManagerRotationEnabled",
        "NIST.800.53.R5-SecretsManagerRotationEnabled",
    }


def test_wildcard_resource_suppression_covers_only_resource_star_or_tagged_names(synth: Any) -> None:
    # Besides Resource::*: names conditioned on the rotator's tag, and the
    # re-key state machine's own child executions.
    children = child_executions_nag(synth.stack, f"{synth.config.service_name}-rekey")
    allowed = (["Resource::*"], [{"regex": TAGGED_RESOURCES_REGEX}], [children])
    for suppression in nag_suppressions(synth):
        if suppression["id"] == "AwsSolutions-IAM5":
            assert suppression["applies_to"] in allowed, suppression


def test_cfn_lint_finds_nothing(infra_app: Any) -> None:
    templates = [str(synth.template_path) for synth in (infra_app.main, infra_app.created_ca, infra_app.platform.synth)]
    cfn_lint = Path(sys.executable).with_name("cfn-lint")

    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", "--ignore-checks", *CFN_LINT_IGNORED, "--", *templates],
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

"""The cdk-nag packs certrotor is checked against, and how it records an
accepted finding.

Three packs run on every certrotor template (app.py, the tests,
bench/fleet_synth.py): AWS Solutions, HIPAA Security and NIST 800-53 rev 5.
The last two share rule names (``HIPAA.Security-LambdaDLQ`` and
``NIST.800.53.R5-LambdaDLQ`` check the same thing), so a finding accepted
for one is accepted for both with one reason, on one named resource.
docs/DEPLOY.md lists every accepted finding and its reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NagPack, NagSuppressions, NIST80053R5Checks
from constructs import IConstruct

# The rule-id prefixes of the packs that share rule names.
SHARED_RULE_PACKS = ("HIPAA.Security", "NIST.800.53.R5")


def compliance_packs(*, verbose: bool = False) -> list[NagPack]:
    """The packs every certrotor app runs: add each with ``Aspects.of(app).add``."""
    return [
        AwsSolutionsChecks(verbose=verbose),
        HIPAASecurityChecks(verbose=verbose),
        NIST80053R5Checks(verbose=verbose),
    ]


def accept(construct: IConstruct, rules: Sequence[str], reason: str) -> None:
    """Record that ``construct``'s resource (its default child for an L2
    construct, nothing below it) knowingly breaks ``rules`` of the HIPAA and
    NIST packs, for ``reason``.

    ``rules`` are bare rule names (``LambdaInsideVPC``); each becomes one
    suppression per pack.
    """
    NagSuppressions.add_resource_suppressions(
        construct,
        [{"id": f"{pack}-{rule}", "reason": reason} for rule in rules for pack in SHARED_RULE_PACKS],
    )


INLINE_POLICY_REASON = (
    "An inline policy is deliberate: it grants one role the least privilege that role needs, lives "
    "and is deleted with it, and cannot be attached to any other principal, which a managed policy could."
)


def accept_inline_policy(policy: IConstruct) -> None:
    """Accept IAMNoInlinePolicy on one ``iam.Policy``."""
    accept(policy, ["IAMNoInlinePolicy"], INLINE_POLICY_REASON)


def accept_default_policy(role: IConstruct, policy_id: str = "DefaultPolicy") -> None:
    """Accept IAMNoInlinePolicy on the policy CDK's grants add to ``role``
    (``DefaultPolicy`` for a role of this app, ``Policy`` for an imported one).

    Call it after the grants: the policy exists from the first one on.
    """
    policy = role.node.try_find_child(policy_id)
    if policy is None:
        raise ValueError(f"{role.node.path} has no {policy_id}: accept the finding after the grants")
    accept_inline_policy(policy)

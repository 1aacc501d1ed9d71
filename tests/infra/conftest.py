"""One synthesis shared by every infra test.

Three stacks in one app, synthesized once per session with bundling skipped:
- ``main``: a CA referenced by ARN and three sets covering the options
  (readers, key readers, ECS services, cron and rate schedules, usages);
- ``created_ca``: a short-lived-mode CA created by the stack, one set, an
  alarm email;
- ``platform``: the ``Certrotor`` construct in a plain stack of another app,
  with a task role granted in code.
cdk-nag's three packs (certrotor_cdk.compliance) run on the app, as app.py does.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii prints a banner for the Node version on this machine at every start.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aws_cdk import App, Aspects, Stack  # noqa: E402
from aws_cdk import aws_iam as iam  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from certrotor.config import CertrotorConfig, load_config  # noqa: E402
from certrotor_cdk.bundling import BundleTarget, lambda_code  # noqa: E402
from certrotor_cdk.certrotor_construct import Certrotor  # noqa: E402
from certrotor_cdk.compliance import accept_default_policy, compliance_packs  # noqa: E402
from certrotor_cdk.stack import CertrotorStack  # noqa: E402

CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
NEXT_CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/66666666-7777-8888-9999-000000000000"
PREVIOUS_CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/55555555-7777-8888-9999-000000000000"
ORDERS_READER = "arn:aws:iam::123456789012:role/orders-task"
LEDGER_READER = "arn:aws:iam::210987654321:role/ledger-task"
LEDGER_KEY_READER = "arn:aws:iam::210987654321:role/ledger-tls-terminator"

MAIN_CONFIG: dict[str, Any] = {
    "ca": {"arn": CA_ARN},
    "expiry_alarm_days": 10,
    "log_retention_days": 45,
    "sets": [
        {
            "name": "tls/orders",
            "dns_names": ["orders.internal"],
            "key_algorithm": "EC_prime256v1",
            "schedule": {"expression": "rate(14 days)", "window": "4h"},
            "services": [{"cluster": "main", "service": "orders"}],
            "reader_role_arns": [ORDERS_READER],
        },
        {
            "name": "tls/payments",
            "dns_names": ["payments.internal"],
            "key_algorithm": "RSA_2048",
        },
        {
            "name": "mtls/ledger",
            "dns_names": ["ledger.internal"],
            "ip_addresses": ["10.0.0.7"],
            "usage": "both",
            "chain_parts": 3,
            "value_limit": 65536,
            "schedule": {
                "expression": "cron(0 4 ? * MON *)",
                "window": "2h",
                "rotate_immediately": False,
            },
            "services": [
                {"cluster": "main", "service": "ledger"},
                {"cluster": "batch", "service": "ledger-worker"},
            ],
            "reader_role_arns": [LEDGER_READER],
            "key_reader_role_arns": [LEDGER_KEY_READER],
        },
    ],
}

CREATED_CA_CONFIG: dict[str, Any] = {
    "ca": {
        "create": True,
        "usage_mode": "SHORT_LIVED_CERTIFICATE",
        "common_name": "Example Root CA",
        "next_arn": NEXT_CA_ARN,
        "previous_arns": [PREVIOUS_CA_ARN],
    },
    "alarm_email": "oncall@example.com",
    # Below the 7-day validity, or the alarm would fire on every new certificate.
    "expiry_alarm_days": 2,
    "sets": [
        {
            "name": "tls/edge",
            "dns_names": ["edge.internal"],
            "validity_days": 7,
            "schedule": "rate(5 days)",
        }
    ],
}


POLICY_DOCUMENT_PROPERTIES = {
    "AWS::IAM::Policy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::SecretsManager::ResourcePolicy": "ResourcePolicy",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
}


PLATFORM_CONFIG: dict[str, Any] = {"ca": {"arn": CA_ARN}, "sets": [MAIN_CONFIG["sets"][0]]}


@dataclass(frozen=True)
class Synthesized:
    """A synthesized stack and ways to look into it."""

    stack: Stack
    config: CertrotorConfig
    template: Template
    template_path: Path

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template.to_json()["Resources"])

    def resolve(self, value: Any) -> Any:
        """A construct attribute (token) as it appears in the template."""
        return Stack.of(self.stack).resolve(value)

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.get_logical_id(construct.node.default_child))

    def role_statements(self, role: Any) -> list[dict[str, Any]]:
        """Every identity-policy statement attached to ``role``."""
        role_id = self.logical_id(role)
        resources = self.resources
        statements: list[dict[str, Any]] = []
        for resource in resources.values():
            if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
                statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
        for policy in resources[role_id]["Properties"].get("Policies", []):
            statements.extend(policy["PolicyDocument"]["Statement"])
        return [_normalized(statement) for statement in statements]

    def policy_statements(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(logical id, resource type, statement) for every policy in the template."""
        found: list[tuple[str, str, dict[str, Any]]] = []
        for logical_id, resource in self.resources.items():
            prop = POLICY_DOCUMENT_PROPERTIES.get(resource["Type"])
            if prop is not None:
                found.extend(
                    (logical_id, resource["Type"], _normalized(statement))
                    for statement in resource["Properties"][prop]["Statement"]
                )
        return found

    def resources_of_type(self, resource_type: str) -> dict[str, Any]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}


def _normalized(statement: dict[str, Any]) -> dict[str, Any]:
    """Action and Resource always as lists (IAM allows a lone value)."""
    normalized = dict(statement)
    for key in ("Action", "Resource"):
        if key in normalized and not isinstance(normalized[key], list):
            normalized[key] = [normalized[key]]
    return normalized


@dataclass(frozen=True)
class PlatformApp:
    """certrotor added to someone else's stack, as docs/DEPLOY.md shows."""

    synth: Synthesized
    certrotor: Certrotor
    task_role: iam.Role


@dataclass(frozen=True)
class InfraApp:
    main: Synthesized
    created_ca: Synthesized
    platform: PlatformApp
    outdir: Path


def add_platform_stack(app: App, config: CertrotorConfig) -> tuple[Stack, Certrotor, iam.Role]:
    """An existing app's stack with certrotor and a task role granted in code."""
    platform = Stack(app, "Platform")
    certrotor = Certrotor(
        platform,
        "Certificates",
        config=config,
        code=lambda_code(BundleTarget.for_lambda(), skip_bundling=True),
    )
    task_role = iam.Role(platform, "OrdersTask", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    certrotor.certificates[0].grant_read(task_role)
    certrotor.certificates[0].grant_private_key_read(task_role)
    certrotor.trust.grant_read(task_role)
    # The app's own role: its grants are inline, as CDK's grants always are.
    accept_default_policy(task_role)
    return platform, certrotor, task_role


@pytest.fixture(scope="session")
def infra_app(tmp_path_factory: pytest.TempPathFactory) -> InfraApp:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(outdir=str(outdir))
    main_config = load_config(copy.deepcopy(MAIN_CONFIG))
    created_config = load_config(copy.deepcopy(CREATED_CA_CONFIG))
    main = CertrotorStack(app, "Certrotor", config=main_config, skip_bundling=True)
    created = CertrotorStack(app, "CertrotorCreatedCa", config=created_config, skip_bundling=True)
    platform_config = load_config(copy.deepcopy(PLATFORM_CONFIG))
    platform, platform_certrotor, task_role = add_platform_stack(app, platform_config)
    for pack in compliance_packs():
        Aspects.of(app).add(pack)
    assembly = app.synth()

    def synthesized(stack: Stack, config: CertrotorConfig) -> Synthesized:
        path = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
        return Synthesized(
            stack=stack,
            config=config,
            template=Template.from_json(json.loads(path.read_text())),
            template_path=path,
        )

    return InfraApp(
        main=synthesized(main, main_config),
        created_ca=synthesized(created, created_config),
        platform=PlatformApp(
            synth=synthesized(platform, platform_config),
            certrotor=platform_certrotor,
            task_role=task_role,
        ),
        outdir=outdir,
    )


@pytest.fixture(scope="session")
def main(infra_app: InfraApp) -> Synthesized:
    return infra_app.main


@pytest.fixture(scope="session")
def created_ca(infra_app: InfraApp) -> Synthesized:
    return infra_app.created_ca


@pytest.fixture(scope="session")
def platform(infra_app: InfraApp) -> PlatformApp:
    return infra_app.platform

"""Synthesize one rotator and service stacks holding N sets; lint them.

    python bench/fleet_synth.py --sets 1000

One rotator stack (CertificateRotator, bundling skipped) and service stacks
of ``--per-stack`` sets each (a set is 9 resources; CloudFormation allows 500
per stack), each set with an imported ECS service and reader role, as service
teams declare them. Every template goes through cfn-lint and the app through
cdk-nag's AWS Solutions, HIPAA Security and NIST 800-53 rev 5 packs (nag
counts the unsuppressed errors of all three). The last line is:

    fleet synth: <sets> sets in <stacks> stacks, cfn-lint <findings>, nag <errors>, <seconds> s
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, Aspects, Environment, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam

from certrotor_cdk import CertificateRotator, RotatingCertificate
from certrotor_cdk.compliance import accept_default_policy, compliance_packs

ACCOUNT = "123456789012"
REGION = "eu-west-1"
CA_ARN = f"arn:aws:acm-pca:{REGION}:{ACCOUNT}:certificate-authority/11111111-2222-3333-4444-555555555555"
NAG_PACKS = ("AwsSolutions-", "HIPAA.Security-", "NIST.800.53.R5-")
# CDK's Function adds DependsOn its role although Role is already a GetAtt.
CFN_LINT_IGNORED = ["W3005"]


def build(sets: int, per_stack: int, outdir: Path) -> tuple[App, int]:
    app = App(outdir=str(outdir))
    env = Environment(account=ACCOUNT, region=REGION)
    platform = Stack(app, "Platform", env=env)
    rotator = CertificateRotator(
        platform, "Rotator", rotator_id="platform", certificate_authority=CA_ARN, skip_bundling=True
    )
    stacks = 1
    for first in range(0, sets, per_stack):
        team = Stack(app, f"Services{first // per_stack:03d}", env=env)
        stacks += 1
        for index in range(first, min(first + per_stack, sets)):
            name = f"svc{index:05d}"
            service = ecs.FargateService.from_service_arn_with_cluster(
                team, f"Service{index}", f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/main/{name}"
            )
            role = iam.Role.from_role_arn(team, f"Task{index}", f"arn:aws:iam::{ACCOUNT}:role/{name}-task")
            RotatingCertificate(
                team,
                f"Tls{index}",
                rotator=rotator,
                set_name=f"tls/{name}",
                dns_names=[f"{name}.internal"],
                services=[service],
                readers=[role],
            )
            # The team's role: the grant adds an inline policy, as CDK's grants do.
            accept_default_policy(role, "Policy")
    for pack in compliance_packs():
        Aspects.of(app).add(pack)
    return app, stacks


def nag_errors(outdir: Path) -> list[str]:
    """Unsuppressed cdk-nag errors in the assembly's metadata (in the manifest
    or, as CDK writes it now, in each stack's ``additionalMetadataFile``)."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    found = []
    for artifact in manifest["artifacts"].values():
        metadata = dict(artifact.get("metadata", {}))
        if "additionalMetadataFile" in artifact:
            metadata.update(json.loads((outdir / artifact["additionalMetadataFile"]).read_text()))
        for path, entries in metadata.items():
            for entry in entries:
                if entry["type"] == "aws:cdk:error" and str(entry["data"]).startswith(NAG_PACKS):
                    found.append(f"{path}: {str(entry['data'])[:200]}")
    return found


def cfn_lint(templates: list[Path]) -> list[str]:
    binary = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(binary), "--format", "parseable", "--ignore-checks", *CFN_LINT_IGNORED, "--", *map(str, templates)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 2, 4, 6, 8, 10, 12, 14) and result.stderr:
        raise SystemExit(f"cfn-lint failed to run: {result.stderr[-2000:]}")
    return [line for line in result.stdout.splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", type=int, default=1000, help="certificate sets in all (default 1000)")
    parser.add_argument("--per-stack", type=int, default=40, help="sets per service stack (default 40)")
    args = parser.parse_args(argv)
    if args.sets < 1 or args.per_stack < 1:
        parser.error("--sets and --per-stack must be at least 1")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fleet-synth-") as tmp:
        outdir = Path(tmp) / "cdk.out"
        print(f"building {args.sets} sets, {args.per_stack} per service stack ...", flush=True)
        app, stacks = build(args.sets, args.per_stack, outdir)
        app.synth()
        print(f"synthesized {stacks} stacks in {time.perf_counter() - started:.1f} s", flush=True)
        templates = sorted(outdir.glob("*.template.json"))
        resources = sum(len(json.loads(t.read_text())["Resources"]) for t in templates)
        largest = max(len(json.loads(t.read_text())["Resources"]) for t in templates)
        print(f"{resources} resources, at most {largest} in one stack (limit 500)", flush=True)
        errors = nag_errors(outdir)
        for line in errors[:20]:
            print(f"nag: {line}")
        findings = cfn_lint(templates)
        for line in findings[:20]:
            print(f"cfn-lint: {line}")
    elapsed = time.perf_counter() - started
    summary = f"cfn-lint {len(findings)}, nag {len(errors)}, {elapsed:.0f} s"
    print(f"fleet synth: {args.sets} sets in {stacks} stacks, {summary}")
    return 0 if not findings and not errors and largest <= 500 else 1


if __name__ == "__main__":
    sys.exit(main())

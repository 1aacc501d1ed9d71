"""The CDK CLI as users run it: cdk.json carries the feature flags a new
`cdk init` app gets, and the real `cdk synth` (aws-cdk from npm, installed
by the Makefile) synthesizes the default app."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import aws_cdk

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_CLI = REPO_ROOT / ".cdk-cli" / "node_modules" / ".bin" / "cdk"


def recommended_flags() -> dict[str, object]:
    """The flags aws-cdk-lib recommends for new projects (what `cdk init` writes)."""
    (assembly,) = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(assembly) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        return dict(json.load(member))


def test_cdk_json_carries_every_flag_a_new_app_gets() -> None:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    flags = recommended_flags()
    assert len(flags) > 50
    assert {key: context.get(key) for key in flags} == flags


def test_the_real_cdk_synth_synthesizes_the_default_app(tmp_path: Path) -> None:
    assert CDK_CLI.exists(), "the CDK CLI is missing: run make install"
    env = {
        **os.environ,
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    out = tmp_path / "cdk.out"
    result = subprocess.run(
        [
            str(CDK_CLI),
            "synth",
            "--quiet",
            "--no-notices",
            "--output",
            str(out),
            # The pip bundle is built by the bundling tests; here the CLI's part.
            "-c",
            "certrotor:skip_bundling=true",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    template = json.loads((out / "Certrotor.template.json").read_text())
    assert any(r["Type"] == "AWS::Lambda::Function" for r in template["Resources"].values())
    manifest = json.loads((out / "manifest.json").read_text())
    # Metadata sits in the manifest or in each stack's additionalMetadataFile.
    metadata = [
        artifact.get("metadata", {})
        if "additionalMetadataFile" not in artifact
        else json.loads((out / artifact["additionalMetadataFile"]).read_text())
        for artifact in manifest["artifacts"].values()
    ]
    assert any(entries for found in metadata for entries in found.values())
    errors = [
        entry
        for found in metadata
        for entries in found.values()
        for entry in entries
        if entry["type"] == "aws:cdk:error"
    ]
    assert errors == []

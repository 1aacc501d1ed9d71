"""The constructs as a user installs them: the wheel built from this checkout,
installed with ``[cdk]`` into a fresh virtualenv outside it, synthesizing an
outside app that adds a set to an existing stack (imported ECS service,
imported task role, a rotator imported from attributes whose CA ARN is a
token from an SSM parameter)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

OUTSIDE_APP = textwrap.dedent(
    """
    import sys
    from aws_cdk import App, Environment, Stack
    from aws_cdk import aws_ecs as ecs
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_ssm as ssm
    from aws_cdk import aws_sqs as sqs

    from certrotor_cdk import CertificateRotator, RotatingCertificate

    app = App(outdir=sys.argv[1])
    env = Environment(account="123456789012", region="eu-west-1")

    # The platform team's rotator, in its own stack (asset from the installed package).
    platform = Stack(app, "Platform", env=env)
    CertificateRotator(
        platform,
        "Rotator",
        rotator_id="platform",
        certificate_authority=ssm.StringParameter.value_for_string_parameter(platform, "/pki/ca-arn"),
        skip_bundling=True,
    )

    # A service team's existing stack, which already holds its own resources.
    orders = Stack(app, "Orders", env=env)
    sqs.Queue(orders, "Jobs")
    def parameter(name):
        return ssm.StringParameter.value_for_string_parameter(orders, "/certrotor/platform/" + name)
    rotator = CertificateRotator.from_rotator_attributes(
        orders,
        "Rotator",
        rotator_id="platform",
        rotation_function_arn=parameter("rotation-function-arn"),
        rotation_role_arn=parameter("rotation-role-arn"),
        certificate_authority_arn=ssm.StringParameter.value_for_string_parameter(orders, "/pki/ca-arn"),
    )
    service = ecs.FargateService.from_service_arn_with_cluster(
        orders, "Service", "arn:aws:ecs:eu-west-1:123456789012:service/main/orders"
    )
    task_role = iam.Role.from_role_arn(orders, "TaskRole", "arn:aws:iam::123456789012:role/orders-task")
    certificate = RotatingCertificate(
        orders,
        "Tls",
        rotator=rotator,
        set_name="tls/orders",
        dns_names=["orders.internal"],
        services=[service],
    )
    assert certificate.grant_read(task_role).success
    app.synth()
    """
)


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel, and a fresh virtualenv outside the checkout holding it with [cdk]."""
    root = tmp_path_factory.mktemp("outside")
    # Built from a copy of the sources: a build writes build/ and egg-info next to them.
    source = root / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for part in ("lambdas", "infra"):
        shutil.copytree(REPO_ROOT / part, source / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / part, source / part)
    dist = root / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(source)], cwd=root)
    (wheel,) = dist.glob("certrotor-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    python = venv / "bin" / "python"
    # Dependencies come from the package index (pip's HTTP cache keeps repeat runs fast).
    run([str(python), "-m", "pip", "install", "--quiet", f"certrotor[cdk] @ {wheel.as_uri()}"], cwd=root)
    return {"root": root, "wheel": wheel, "python": python}


def test_the_wheel_holds_both_packages_and_the_asset_requirements_and_nothing_named_infra(
    installed: dict[str, Path],
) -> None:
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert "certrotor_cdk/__init__.py" in names
    assert "certrotor_cdk/lambda-requirements.txt" in names
    assert "certrotor/handlers/rotate.py" in names
    assert not any(name.startswith("infra/") for name in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(installed["wheel"]).read(metadata).decode()
    assert 'Requires-Dist: aws-cdk-lib<3,>=2.275.0; extra == "cdk"' in text
    assert 'Requires-Dist: constructs<11,>=10.8.1; extra == "cdk"' in text


def test_an_outside_app_adds_a_set_to_its_existing_stack(installed: dict[str, Path]) -> None:
    root = installed["root"]
    app = root / "app.py"
    app.write_text(OUTSIDE_APP, encoding="utf-8")
    out = root / "cdk.out"
    cache = root / "cache"
    # Outside the checkout, with no path leading back to it.
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(root),
        "XDG_CACHE_HOME": str(cache),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    run([str(installed["python"]), str(app), str(out)], cwd=root, env=env)

    orders = json.loads((out / "Orders.template.json").read_text())
    kinds = [r["Type"] for r in orders["Resources"].values()]
    assert kinds.count("AWS::SecretsManager::Secret") == 4 and "AWS::SQS::Queue" in kinds
    schedule = next(r for r in orders["Resources"].values() if r["Type"] == "AWS::SecretsManager::RotationSchedule")
    assert "Ref" in schedule["Properties"]["RotationLambdaARN"]  # the SSM parameter
    assert any("/pki/ca-arn" in json.dumps(p) for p in orders["Parameters"].values())
    policies = json.dumps([r for r in orders["Resources"].values() if r["Type"] == "AWS::IAM::Policy"])
    assert "orders-task" in policies and "secretsmanager:GetSecretValue" in policies
    # The asset is the installed package, copied through the user cache dir.
    manifest = json.loads((out / "Platform.assets.json").read_text())
    (asset,) = [a for a in manifest["files"].values() if a["source"].get("packaging") == "zip"]
    asset_dir = out / asset["source"]["path"]
    assert (asset_dir / "certrotor" / "handlers" / "rotate.py").exists()
    assert not (asset_dir / "lambdas").exists()
    assert list(cache.glob("certrotor/source-*/certrotor/handlers/rotate.py"))
    assert str(REPO_ROOT) not in (out / "Platform.template.json").read_text()


def test_nothing_importable_is_named_infra(installed: dict[str, Path]) -> None:
    result = subprocess.run(
        [str(installed["python"]), "-c", "import infra"],
        capture_output=True,
        text=True,
        cwd=installed["root"],
        check=False,
    )
    assert "No module named 'infra'" in result.stderr

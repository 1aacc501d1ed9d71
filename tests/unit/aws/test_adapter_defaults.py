"""The adapters against botocore's Stubber: the client each makes when none is
given, what a sparse DescribeSecret answer becomes, and errors that name the
call and the secret (a user reads them in the rotation's log)."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from certrotor.aws.ecs import EcsServices
from certrotor.aws.pca import PrivateCA
from certrotor.aws.rotation_trigger import SecretsManagerRotationTrigger
from certrotor.aws.secrets import SecretStore
from certrotor.errors import AwsError, NotFoundError

V1 = "a1b2c3d4-0000-4000-8000-000000000001"
V2 = "a1b2c3d4-0000-4000-8000-000000000002"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tls/web-AbCdEf"


@pytest.fixture
def region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.mark.parametrize(
    ("make", "service"),
    [
        (EcsServices, "ecs"),
        (SecretStore, "secretsmanager"),
        (SecretsManagerRotationTrigger, "secretsmanager"),
        (lambda: PrivateCA("arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/x"), "acm-pca"),
    ],
)
def test_an_adapter_given_no_client_makes_one_for_its_service(region: None, make: Any, service: str) -> None:
    client = make()._client
    assert client.meta.service_model.service_name == service
    assert client.meta.region_name == "eu-west-1"


def secrets_client() -> Any:
    return botocore.session.get_session().create_client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_a_secret_described_without_versions_rotation_or_description_reads_as_none_of_them() -> None:
    client = secrets_client()
    with Stubber(client) as stub:
        stub.add_response("describe_secret", {"ARN": ARN, "Name": "tls/web"}, {"SecretId": "tls/web"})
        info = SecretStore(client).describe("tls/web")
    assert (info.arn, info.name) == (ARN, "tls/web")
    assert info.rotation_enabled is False
    assert info.versions == {}
    assert info.tags == {}
    assert info.description == ""


def test_a_described_secret_yields_its_rotation_versions_tags_and_description() -> None:
    client = secrets_client()
    answer = {
        "ARN": ARN,
        "Name": "tls/web",
        "RotationEnabled": True,
        "VersionIdsToStages": {V1: ["AWSCURRENT"], V2: ["AWSPENDING", "AWSPREVIOUS"]},
        "Tags": [{"Key": "certrotor:set", "Value": "web"}],
        "Description": "web's manifest",
    }
    with Stubber(client) as stub:
        stub.add_response("describe_secret", answer, {"SecretId": "tls/web"})
        info = SecretStore(client).describe("tls/web")
    assert info.rotation_enabled is True
    assert info.versions == {V1: ("AWSCURRENT",), V2: ("AWSPENDING", "AWSPREVIOUS")}
    assert info.tags == {"certrotor:set": "web"}
    assert info.description == "web's manifest"


def refused(call: Any) -> str:
    with pytest.raises(AwsError) as raised:
        call()
    return str(raised.value)


def test_errors_name_the_call_and_the_secret() -> None:
    client = secrets_client()
    store = SecretStore(client)
    with Stubber(client) as stub:
        stub.add_client_error("describe_secret", "ResourceNotFoundException", expected_params={"SecretId": "tls/web"})
        stub.add_client_error(
            "update_secret_version_stage",
            "InvalidParameterException",
            expected_params={
                "SecretId": "tls/web",
                "VersionStage": "AWSCURRENT",
                "MoveToVersionId": V2,
                "RemoveFromVersionId": V1,
            },
        )
        stub.add_client_error(
            "tag_resource",
            "AccessDeniedException",
            expected_params={"SecretId": "tls/web", "Tags": [{"Key": "k", "Value": "v"}]},
        )
        assert refused(lambda: store.describe("tls/web")) == (
            "DescribeSecret tls/web: not found (ResourceNotFoundException)"
        )
        assert refused(lambda: store.move_stage("tls/web", "AWSCURRENT", V2, V1)) == (
            "UpdateSecretVersionStage tls/web AWSCURRENT: InvalidParameterException"
        )
        assert refused(lambda: store.tag("tls/web", "k", "v")) == "TagResource tls/web: AccessDeniedException"
        stub.assert_no_pending_responses()


def test_a_missing_secret_described_is_not_found() -> None:
    client = secrets_client()
    with Stubber(client) as stub:
        stub.add_client_error("describe_secret", "ResourceNotFoundException")
        with pytest.raises(NotFoundError):
            SecretStore(client).describe("tls/web")

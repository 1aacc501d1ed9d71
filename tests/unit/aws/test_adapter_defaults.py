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
from certrotor.errors import AwsError, IntegrityError, NotFoundError
from certrotor.ports import SecretValue

V1 = "a1b2c3d4-0000-4000-8000-000000000001"
V2 = "a1b2c3d4-0000-4000-8000-000000000002"
ROTATION_TOKEN = "rotation-token-" + "0" * 40
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


def test_a_version_is_written_with_its_token_value_stages_and_rotation_token() -> None:
    client = secrets_client()
    with Stubber(client) as stub:
        stub.add_response(
            "put_secret_value",
            {},
            {"SecretId": "tls/web", "ClientRequestToken": V1, "SecretString": "text", "VersionStages": ["AWSPENDING"]},
        )
        stub.add_response(
            "put_secret_value",
            {},
            {
                "SecretId": "tls/web",
                "ClientRequestToken": V2,
                "SecretString": "text",
                "VersionStages": ["AWSCURRENT", "X"],
                "RotationToken": ROTATION_TOKEN,
            },
        )
        SecretStore(client).put("tls/web", "text", V1)
        SecretStore(client).put("tls/web", "text", V2, ("AWSCURRENT", "X"), rotation_token=ROTATION_TOKEN)
        stub.assert_no_pending_responses()


def test_another_value_under_an_existing_version_is_an_integrity_error() -> None:
    client = secrets_client()
    with Stubber(client) as stub:
        stub.add_client_error("put_secret_value", "ResourceExistsException")
        stub.add_client_error("put_secret_value", "LimitExceededException")
        with pytest.raises(IntegrityError) as conflict:
            SecretStore(client).put("tls/web", "text", V1)
        assert str(conflict.value) == f"tls/web already holds a different value for version {V1}"
        assert refused(lambda: SecretStore(client).put("tls/web", "text", V1)) == (
            "PutSecretValue tls/web: LimitExceededException"
        )


def test_a_version_token_botocore_refuses_is_named_without_the_value() -> None:
    client = secrets_client()
    with Stubber(client) as stub:
        stub.add_response("put_secret_value", {}, None)
        message = refused(lambda: SecretStore(client).put("tls/web", "secret text", "short"))
    assert message == "PutSecretValue tls/web: invalid parameters (ParamValidationError)"


def test_a_value_is_read_by_version_or_stage_and_errors_name_the_secret() -> None:
    client = secrets_client()
    answer = {"Name": "tls/web", "SecretString": "text", "VersionId": V1, "VersionStages": ["AWSPENDING"]}
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", answer, {"SecretId": "tls/web", "VersionId": V1})
        stub.add_response("get_secret_value", answer, {"SecretId": "tls/web", "VersionStage": "AWSPENDING"})
        stub.add_client_error("get_secret_value", "ResourceNotFoundException")
        store = SecretStore(client)
        assert store.get("tls/web", version=V1) == SecretValue("tls/web", "text", V1, ("AWSPENDING",))
        assert store.get("tls/web", stage="AWSPENDING").version == V1
        assert refused(lambda: store.get("tls/web")) == "GetSecretValue tls/web: not found (ResourceNotFoundException)"

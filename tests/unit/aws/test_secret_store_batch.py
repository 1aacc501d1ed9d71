"""SecretStore.get_current_many and the stage calls against a recording
client: batches of BatchGetSecretValue's limit, what each answer becomes,
and errors that name the call and the secret."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from certrotor.aws.secrets import BATCH_LIMIT, SecretStore
from certrotor.errors import AwsError, NotFoundError
from certrotor.ports import SecretValue


class Client:
    def __init__(self, values: dict[str, dict[str, Any]], errors: list[dict[str, str]] | None = None) -> None:
        self.values = values
        self.errors = errors
        self.batches: list[list[str]] = []
        self.refusal: ClientError | None = None

    def batch_get_secret_value(self, SecretIdList: list[str]) -> dict[str, Any]:
        self.batches.append(list(SecretIdList))
        if self.refusal is not None:
            raise self.refusal
        answer: dict[str, Any] = {
            "SecretValues": [self.values[s] for s in SecretIdList if s in self.values],
        }
        if self.errors is not None:
            answer["Errors"] = self.errors
        return answer

    def update_secret_version_stage(self, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "InvalidParameterException", "Message": "no"}}, "UpdateSecretVersionStage")


def item(name: str, stages: list[str] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"Name": name, "SecretString": f"value of {name}", "VersionId": f"v-{name}"}
    if stages is not None:
        found["VersionStages"] = stages
    return found


def test_many_secrets_are_read_in_batches_of_the_limit() -> None:
    names = [f"tls/s{i:02d}" for i in range(2 * BATCH_LIMIT + 1)]
    client = Client({n: item(n, ["AWSCURRENT"]) for n in names})
    found = SecretStore(client).get_current_many(names)
    assert BATCH_LIMIT == 20
    assert client.batches == [names[:20], names[20:40], names[40:]]
    assert found == {n: SecretValue(n, f"value of {n}", f"v-{n}", ("AWSCURRENT",)) for n in names}


def test_an_answer_without_stages_reads_as_no_stages() -> None:
    client = Client({"tls/a": item("tls/a")}, errors=[])
    assert SecretStore(client).get_current_many(["tls/a"])["tls/a"].stages == ()


def test_an_error_in_the_answer_names_the_secret_and_its_code() -> None:
    client = Client(
        {"tls/a": item("tls/a")},
        errors=[
            {"SecretId": "tls/b", "ErrorCode": "ResourceNotFoundException"},
            {"SecretId": "tls/c", "ErrorCode": "DecryptionFailure"},
        ],
    )
    with pytest.raises(NotFoundError) as failed:
        SecretStore(client).get_current_many(["tls/a", "tls/b", "tls/c"])
    assert str(failed.value) == "BatchGetSecretValue tls/b: ResourceNotFoundException"


def test_secrets_missing_from_the_answer_are_named() -> None:
    client = Client({"tls/a": item("tls/a")})
    with pytest.raises(NotFoundError) as failed:
        SecretStore(client).get_current_many(["tls/a", "tls/b", "tls/c"])
    assert str(failed.value) == "BatchGetSecretValue: no value for tls/b, tls/c"


def test_a_refused_batch_names_the_call_and_its_size() -> None:
    client = Client({})
    client.refusal = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "BatchGetSecretValue")
    with pytest.raises(AwsError) as failed:
        SecretStore(client).get_current_many(["tls/a", "tls/b"])
    assert str(failed.value) == "BatchGetSecretValue 2 secrets: AccessDeniedException"


def test_a_refused_stage_removal_names_the_secret_and_the_stage() -> None:
    with pytest.raises(AwsError) as failed:
        SecretStore(Client({})).remove_stage("tls/a", "AWSPENDING", "v1")
    assert str(failed.value) == "UpdateSecretVersionStage tls/a remove AWSPENDING: InvalidParameterException"


def test_tagged_secrets_are_listed_over_every_page_with_exact_pairs_only() -> None:
    class Listing:
        def __init__(self) -> None:
            self.requests: list[dict[str, Any]] = []

        def list_secrets(self, **kwargs: Any) -> dict[str, Any]:
            self.requests.append(kwargs)
            if "NextToken" not in kwargs:
                return {
                    "SecretList": [
                        {"ARN": "arn:a", "Name": "tls/a", "Tags": [{"Key": "certrotor:rotator", "Value": "rot"}]},
                        # The filters match a key and a value on different tags too.
                        {
                            "ARN": "arn:x",
                            "Name": "tls/x",
                            "Tags": [{"Key": "certrotor:rotator", "Value": "other"}, {"Key": "owner", "Value": "rot"}],
                        },
                    ],
                    "NextToken": "page-2",
                }
            return {
                "SecretList": [
                    {
                        "ARN": "arn:b",
                        "Name": "tls/b",
                        "Tags": [{"Key": "certrotor:rotator", "Value": "rot"}],
                        "SecretVersionsToStages": {"v1": ["AWSCURRENT"]},
                    }
                ]
            }

    client = Listing()
    found = SecretStore(client).list_tagged("certrotor:rotator", "rot")
    assert [(i.name, i.versions) for i in found] == [("tls/a", {}), ("tls/b", {"v1": ("AWSCURRENT",)})]
    filters = [{"Key": "tag-key", "Values": ["certrotor:rotator"]}, {"Key": "tag-value", "Values": ["rot"]}]
    assert client.requests == [
        {"Filters": filters, "MaxResults": 100},
        {"Filters": filters, "MaxResults": 100, "NextToken": "page-2"},
    ]


def test_a_page_without_a_list_and_a_refused_listing() -> None:
    class Empty:
        def list_secrets(self, **kwargs: Any) -> dict[str, Any]:
            return {}

    assert SecretStore(Empty()).list_tagged("k", "v") == []

    class Refusing:
        def list_secrets(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListSecrets")

    with pytest.raises(AwsError) as failed:
        SecretStore(Refusing()).list_tagged("k", "v")
    assert str(failed.value) == "ListSecrets tagged k=v: AccessDeniedException"

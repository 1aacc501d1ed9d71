"""certrotor.aws.codes and errors: each AWS error code family becomes its
certrotor error with the line a user reads, GetSecretValue's parameters, and
the batch reader's answers, shared by the botocore adapters and by
certrotor-fetch's start."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError

from certrotor.aws.codes import BATCH_LIMIT, error_for_code, get_params, read_current_many, secret_value
from certrotor.aws.errors import aws_call, error_code, translate
from certrotor.errors import AwsError, NotFoundError, NotReadyError, RetryableError, ThrottledError
from certrotor.ports import SecretValue


@pytest.mark.parametrize(
    ("code", "kind", "message"),
    [
        ("RequestInProgressException", NotReadyError, "GetCertificate: not ready yet"),
        ("ResourceNotFoundException", NotFoundError, "GetCertificate: not found (ResourceNotFoundException)"),
        ("ServiceNotFoundException", NotFoundError, "GetCertificate: not found (ServiceNotFoundException)"),
        ("ServiceNotActiveException", NotFoundError, "GetCertificate: not found (ServiceNotActiveException)"),
        ("ClusterNotFoundException", NotFoundError, "GetCertificate: not found (ClusterNotFoundException)"),
        ("NotFoundException", NotFoundError, "GetCertificate: not found (NotFoundException)"),
        ("ThrottlingException", ThrottledError, "GetCertificate: throttled (ThrottlingException)"),
        ("TooManyRequestsException", ThrottledError, "GetCertificate: throttled (TooManyRequestsException)"),
        ("RequestLimitExceeded", ThrottledError, "GetCertificate: throttled (RequestLimitExceeded)"),
        ("Throttling", ThrottledError, "GetCertificate: throttled (Throttling)"),
        ("ThrottledException", ThrottledError, "GetCertificate: throttled (ThrottledException)"),
        ("InternalServiceError", RetryableError, "GetCertificate: InternalServiceError"),
        ("InternalServiceErrorException", RetryableError, "GetCertificate: InternalServiceErrorException"),
        ("ServiceUnavailable", RetryableError, "GetCertificate: ServiceUnavailable"),
        ("ServerException", RetryableError, "GetCertificate: ServerException"),
        ("AccessDeniedException", AwsError, "GetCertificate: AccessDeniedException"),
        ("", AwsError, "GetCertificate: "),
    ],
)
def test_each_error_code_becomes_its_certrotor_error(code: str, kind: type[AwsError], message: str) -> None:
    error = error_for_code(code, "GetCertificate")
    assert type(error) is kind
    assert str(error) == message
    # The same through botocore's ClientError.
    translated = translate(ClientError({"Error": {"Code": code, "Message": "m"}}, "GetCertificate"), "GetCertificate")
    assert (type(translated), str(translated)) == (kind, message)


def test_an_error_code_is_read_from_the_answer_or_empty() -> None:
    assert error_code(ClientError({"Error": {"Code": "ThrottlingException"}}, "Op")) == "ThrottlingException"
    assert error_code(ClientError({"Error": {"Message": "no code"}}, "Op")) == ""
    assert error_code(ClientError({}, "Op")) == ""


def test_a_refused_parameter_names_only_the_call_never_the_value() -> None:
    secret = "-----BEGIN PRIVATE" + " KEY-----"
    exc = ParamValidationError(report=f"Invalid length for parameter SecretString, value: {secret}")
    error = translate(exc, "PutSecretValue tls/web")
    assert type(error) is AwsError
    assert str(error) == "PutSecretValue tls/web: invalid parameters (ParamValidationError)"
    with pytest.raises(AwsError) as raised, aws_call("PutSecretValue tls/web"):
        raise exc
    assert str(raised.value) == "PutSecretValue tls/web: invalid parameters (ParamValidationError)"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_another_botocore_failure_names_the_call_and_its_kind() -> None:
    error = translate(NoCredentialsError(), "DescribeSecret tls/web")
    assert type(error) is AwsError
    assert str(error) == "DescribeSecret tls/web: NoCredentialsError"


def test_get_params_read_by_version_by_stage_or_the_current_one() -> None:
    assert get_params("tls/web", None, None) == {"SecretId": "tls/web"}
    assert get_params("tls/web", "v1", None) == {"SecretId": "tls/web", "VersionId": "v1"}
    assert get_params("tls/web", None, "AWSPENDING") == {"SecretId": "tls/web", "VersionStage": "AWSPENDING"}
    assert get_params("tls/web", "v1", "AWSPENDING") == {
        "SecretId": "tls/web",
        "VersionId": "v1",
        "VersionStage": "AWSPENDING",
    }


def test_a_secret_value_keeps_its_name_text_version_and_stages() -> None:
    item = {"Name": "tls/web", "SecretString": "text", "VersionId": "v1", "VersionStages": ["AWSCURRENT", "X"]}
    assert secret_value(item) == SecretValue("tls/web", "text", "v1", ("AWSCURRENT", "X"))
    del item["VersionStages"]
    assert secret_value(item) == SecretValue("tls/web", "text", "v1", ())


def entry(name: str) -> dict[str, Any]:
    return {"Name": name, "SecretString": f"value of {name}", "VersionId": f"v-{name}", "VersionStages": ["AWSCURRENT"]}


class Batches:
    def __init__(self, answer: Any = None) -> None:
        self.asked: list[list[str]] = []
        self.answer = answer

    def __call__(self, chunk: list[str]) -> Any:
        self.asked.append(chunk)
        if self.answer is not None:
            return self.answer
        return {"SecretValues": [entry(n) for n in chunk]}


@pytest.mark.parametrize("count", [1, BATCH_LIMIT - 1, BATCH_LIMIT, BATCH_LIMIT + 1, 2 * BATCH_LIMIT + 1])
def test_many_secrets_are_read_in_batches_of_at_most_the_limit(count: int) -> None:
    names = [f"tls/s{i:02d}" for i in range(count)]
    batches = Batches()
    found = read_current_many(names, batches)
    assert found == {n: SecretValue(n, f"value of {n}", f"v-{n}", ("AWSCURRENT",)) for n in names}
    assert batches.asked == [names[i : i + BATCH_LIMIT] for i in range(0, count, BATCH_LIMIT)]
    assert all(isinstance(chunk, list) for chunk in batches.asked)


def test_no_secrets_need_no_batch() -> None:
    batches = Batches()
    assert read_current_many([], batches) == {}
    assert batches.asked == []


def test_the_first_error_a_batch_reports_is_not_found_naming_its_secret_and_code() -> None:
    errors = [
        {"SecretId": "tls/a", "ErrorCode": "ResourceNotFoundException"},
        {"SecretId": "tls/b", "ErrorCode": "AccessDeniedException"},
    ]
    batches = Batches({"SecretValues": [], "Errors": errors})
    with pytest.raises(NotFoundError) as raised:
        read_current_many(["tls/a", "tls/b"], batches)
    assert str(raised.value) == "BatchGetSecretValue tls/a: ResourceNotFoundException"


def test_secrets_a_batch_leaves_out_are_not_found_naming_each() -> None:
    batches = Batches({"SecretValues": [entry("tls/b")], "Errors": []})
    with pytest.raises(NotFoundError) as raised:
        read_current_many(["tls/a", "tls/b", "tls/c"], batches)
    assert str(raised.value) == "BatchGetSecretValue: no value for tls/a, tls/c"

"""certrotor-fetch's awscrt reader, without the network: which environments
it takes (and which it leaves to botocore), the endpoint it derives, its
SigV4 signature against botocore's for the same request, and how it reads
error codes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import botocore.auth
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from certrotor.client.crt_reader import (
    CONTENT_TYPE,
    CrtSecretReader,
    Route,
    _error_code,
    endpoint_for,
    route,
)
from certrotor.client.crt_reader import Credentials as CrtCredentials

KEYS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
REGION = {"AWS_DEFAULT_REGION": "eu-west-1"}


@pytest.fixture(autouse=True)
def _no_aws_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A home without ~/.aws, whatever the machine running the tests has."""
    monkeypatch.setenv("HOME", str(tmp_path))


def test_keys_and_a_region_in_the_environment_take_the_crt_path() -> None:
    # Given a container's environment: keys, a session token and a region
    environ = {**KEYS, **REGION, "AWS_SESSION_TOKEN": "token"}
    # When the route is decided
    chosen = route(environ)
    # Then awscrt signs with those credentials for the region's endpoint
    assert chosen == Route(
        "eu-west-1",
        "https://secretsmanager.eu-west-1.amazonaws.com",
        CrtCredentials(KEYS["AWS_ACCESS_KEY_ID"], KEYS["AWS_SECRET_ACCESS_KEY"], "token"),
    )


def test_the_ecs_relative_uri_is_fetched_from_the_task_metadata_address() -> None:
    environ = {**REGION, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc"}
    chosen = route(environ)
    assert chosen is not None and chosen.credentials is None
    assert chosen.credentials_url == "http://169.254.170.2/v2/credentials/abc"
    assert chosen.authorization is None


def test_a_full_uri_carries_the_authorization_token_from_its_file(tmp_path: Path) -> None:
    # Given EKS Pod Identity's variables: a full URI and a token file
    token = tmp_path / "token"
    token.write_text("pod-token")
    environ = {
        **REGION,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token),
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "ignored: the file wins, as in botocore",
    }
    chosen = route(environ)
    assert chosen is not None
    assert chosen.credentials_url == "http://169.254.170.23/v1/credentials"
    assert chosen.authorization == "pod-token"


@pytest.mark.parametrize(
    "full_uri, accepted",
    [
        ("http://127.0.0.1:8080/creds", True),
        ("http://localhost/creds", True),
        ("https://creds.example.com/creds", True),
        ("http://10.0.0.5/creds", False),  # botocore refuses plain http to other hosts
        ("ftp://127.0.0.1/creds", False),
    ],
)
def test_full_uri_hosts_are_those_botocore_accepts(full_uri: str, accepted: bool) -> None:
    chosen = route({**REGION, "AWS_CONTAINER_CREDENTIALS_FULL_URI": full_uri})
    assert (chosen is not None) is accepted


@pytest.mark.parametrize(
    "extra",
    [
        {"AWS_PROFILE": "prod"},
        {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/r"},
        {"AWS_USE_FIPS_ENDPOINT": "true"},
        {"AWS_USE_DUALSTACK_ENDPOINT": "true"},
        {"HTTPS_PROXY": "http://proxy:3128"},
        {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
        {"AWS_SECRET_ACCESS_KEY": ""},  # partial keys: botocore reports them
        {"AWS_DEFAULT_REGION": ""},  # botocore may find one in a config file, or say none is set
        {"AWS_DEFAULT_REGION": "us-iso-east-1"},  # a partition this reader does not know
    ],
)
def test_what_the_environment_alone_does_not_decide_goes_to_botocore(extra: dict[str, str]) -> None:
    assert route({**KEYS, **REGION, **extra}) is None


def test_a_shared_config_file_goes_to_botocore(tmp_path: Path) -> None:
    # Given a config file, which may set a region, an endpoint or credentials
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-1\n")
    # Then botocore reads it
    assert route({**KEYS, **REGION, "AWS_CONFIG_FILE": str(config)}) is None
    assert route({**KEYS, **REGION, "AWS_CONFIG_FILE": str(tmp_path / "absent")}) is not None


def test_no_credentials_in_the_environment_goes_to_botocore() -> None:
    # (instance metadata, SSO and the rest of the chain are botocore's)
    assert route({**REGION}) is None


def test_an_endpoint_url_is_honoured_service_specific_first() -> None:
    environ = {
        **KEYS,
        **REGION,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:5000/",
    }
    chosen = route(environ)
    assert chosen is not None and chosen.endpoint == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    "region",
    ["us-east-1", "eu-central-2", "ap-southeast-5", "il-central-1", "mx-central-1", "us-gov-west-1", "cn-north-1"],
)
def test_the_endpoint_is_the_one_botocore_resolves(region: str) -> None:
    # Given botocore's own endpoint rules for Secrets Manager in the region
    client = botocore.session.Session().create_client(
        "secretsmanager", region_name=region, aws_access_key_id="a", aws_secret_access_key="b"
    )
    # Then the reader derives the same endpoint
    assert endpoint_for(region) == client.meta.endpoint_url


@pytest.mark.parametrize("region", ["us-iso-east-1", "us-isob-east-1", "eusc-de-east-1", "local", "us-east"])
def test_regions_of_other_partitions_are_left_to_botocore(region: str) -> None:
    assert endpoint_for(region) is None


def _botocore_signature(
    url: str, target: str, body: bytes, region: str, credentials: BotoCredentials
) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": f"secretsmanager.{target}",
            "Content-Length": str(len(body)),
        },
    )
    botocore.auth.SigV4Auth(credentials, "secretsmanager", region).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzEXAMPLE//token+with/slashes="])
@pytest.mark.parametrize("endpoint", ["https://secretsmanager.eu-west-1.amazonaws.com", "http://127.0.0.1:4566"])
def test_the_signature_is_the_one_botocore_computes_for_the_same_request(
    token: str | None, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one request, one instant and one set of credentials
    when = dt.datetime(2026, 11, 30, 4, 5, 6, tzinfo=dt.UTC)
    body = b'{"SecretId":"tls/orders","VersionStage":"AWSCURRENT"}'
    credentials = CrtCredentials(KEYS["AWS_ACCESS_KEY_ID"], KEYS["AWS_SECRET_ACCESS_KEY"], token)
    reader = CrtSecretReader(Route("eu-west-1", endpoint, credentials), 60, now=lambda: when)
    # When awscrt signs it, and botocore's SigV4Auth signs it too (at the same instant)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None))
    ours = {k.lower(): v for k, v in reader.signed_headers("GetSecretValue", body).items()}
    theirs = _botocore_signature(
        endpoint + "/",
        "GetSecretValue",
        body,
        "eu-west-1",
        BotoCredentials(credentials.access_key, credentials.secret_key, token),
    )
    # Then both give the same signature over the same headers
    assert ours["x-amz-date"] == theirs["x-amz-date"] == "20261130T040506Z"
    assert ours["authorization"] == theirs["authorization"]
    assert ours.get("x-amz-security-token") == theirs.get("x-amz-security-token") == token
    assert ours["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/eu-west-1/secretsmanager/aws4_request, "
    )


def test_a_different_body_gives_a_different_signature() -> None:
    when = dt.datetime(2026, 11, 30, 4, 5, 6, tzinfo=dt.UTC)
    reader = CrtSecretReader(
        Route("eu-west-1", "http://127.0.0.1:4566", CrtCredentials("AKID", "secret")), 60, now=lambda: when
    )
    one = reader.signed_headers("GetSecretValue", b'{"SecretId":"a"}')["Authorization"]
    other = reader.signed_headers("GetSecretValue", b'{"SecretId":"b"}')["Authorization"]
    assert one != other


@pytest.mark.parametrize(
    "status, body, code",
    [
        (400, b'{"__type":"ResourceNotFoundException","message":"no such secret"}', "ResourceNotFoundException"),
        (400, b'{"__type":"com.amazonaws.secretsmanager#ThrottlingException"}', "ThrottlingException"),
        (400, b'{"__type":"AccessDeniedException:http://internal.amazon.com/"}', "AccessDeniedException"),
        (503, b"<html>Service Unavailable</html>", "503"),
        (500, b"", "500"),
    ],
)
def test_error_codes_are_read_as_botocore_reads_them(status: int, body: bytes, code: str) -> None:
    assert _error_code(status, body) == code

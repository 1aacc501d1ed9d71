"""Secrets Manager reads for certrotor-fetch's start without botocore: the
AWS Common Runtime's SigV4 signer (awscrt, the signer botocore's own `crt`
extra uses), the AWS JSON 1.1 protocol over http.client.

Importing botocore and making a client costs a container start about 200 ms
of CPU; awscrt's import costs about 50. The two reads a start makes
(GetSecretValue of the manifest, BatchGetSecretValue of the parts, or
GetSecretValue by VersionId of each) are small enough to send directly.

This path is taken only when the environment alone decides the region, the
endpoint and the credentials, as in a container (`route`); anything else, a
shared config or credentials file, a profile, web identity, a proxy, FIPS or
dual-stack endpoints, a partition other than aws, aws-us-gov and aws-cn, no
awscrt installed, goes through botocore's full chain as before. Both paths
behave alike: the same error codes become the same certrotor errors (a
throttled batch still falls back to reading each part), retry_within retries
transient failures, and every request ends within the deadline.

Credentials, in botocore's order for these sources: AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN); else the container credentials
endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI on ECS, or
AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN
or _TOKEN_FILE, as EKS Pod Identity sets), fetched once per start.
"""

from __future__ import annotations

import datetime as dt
import http.client
import io
import ipaddress
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

from certrotor.aws.codes import error_for_code, get_params, read_current_many, secret_value
from certrotor.errors import AwsError, DeadlineError, NotFoundError, RetryableError
from certrotor.ports import SecretValue
from certrotor.record import record

SERVICE = "secretsmanager"
TARGET_PREFIX = "secretsmanager."
CONTENT_TYPE = "application/x-amz-json-1.1"
USER_AGENT = "certrotor-fetch awscrt-sigv4"
# No Secrets Manager answer a start asks for comes near this (20 values of at
# most 65,536 characters); a larger one is refused, not read into memory.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_CREDENTIALS_BYTES = 64 * 1024
ECS_CREDENTIALS_HOST = "169.254.170.2"
# The hosts botocore accepts for AWS_CONTAINER_CREDENTIALS_FULL_URI over
# plain http, besides loopback addresses (ECS, EKS Pod Identity).
CONTAINER_CREDENTIALS_HOSTS = frozenset({ECS_CREDENTIALS_HOST, "169.254.170.23", "fd00:ec2::23", "localhost"})
# Regions of the partitions whose Secrets Manager endpoint is
# secretsmanager.<region>.<suffix> (botocore's partition patterns and
# endpoint rules, without FIPS or dual-stack).
_PARTITIONS = (
    (re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$"), "amazonaws.com"),
    (re.compile(r"^us\-gov\-\w+\-\d+$"), "amazonaws.com"),
    (re.compile(r"^cn\-\w+\-\d+$"), "amazonaws.com.cn"),
)
# Any of these set (to anything but false) means botocore decides something
# this reader does not: the endpoint, the credentials, the way to the network.
_BOTOCORE_ONLY = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)
# One call's connection attempt may take at most this long, and its wait for
# an answer at most READ_TIMEOUT (both shrink as the deadline nears), as on
# the botocore path (certrotor.client.fetch.secrets_client).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
MIN_CALL_SECONDS = 0.05
CREDENTIALS_TIMEOUT = 2.0  # botocore's for the container endpoint


@record
class Credentials:
    access_key: str
    secret_key: str = ""
    token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r})"


@record
class Route:
    """Where and as whom to read: decided by the environment alone."""

    region: str
    endpoint: str  # scheme://host[:port], no path
    credentials: Credentials | None  # None: from the container endpoint
    credentials_url: str | None = None
    authorization: str | None = None  # the container endpoint's token
    ca_bundle: str | None = None


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() not in ("", "false")


def endpoint_for(region: str) -> str | None:
    """Secrets Manager's endpoint in `region`, for the partitions this reader knows."""
    for pattern, suffix in _PARTITIONS:
        if pattern.match(region):
            return f"https://{SERVICE}.{region}.{suffix}"
    return None


def _configured_endpoint(environ: Mapping[str, str]) -> str | None:
    return environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or environ.get("AWS_ENDPOINT_URL") or None


def _files_exist(environ: Mapping[str, str]) -> bool:
    """A shared config or credentials file may set anything (region, endpoint,
    credentials, FIPS): botocore reads it."""
    home = os.path.expanduser("~")
    config = environ.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config")
    shared = environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home, ".aws", "credentials")
    return os.path.exists(os.path.expanduser(config)) or os.path.exists(os.path.expanduser(shared))


def _container_url(environ: Mapping[str, str]) -> str | None:
    relative = environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    if relative:
        return f"http://{ECS_CREDENTIALS_HOST}{relative}"
    full = environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not full:
        return None
    parts = urlsplit(full)
    if parts.scheme == "https":
        return full
    if parts.scheme != "http" or not parts.hostname:
        return None
    if parts.hostname in CONTAINER_CREDENTIALS_HOSTS:
        return full
    try:
        return full if ipaddress.ip_address(parts.hostname).is_loopback else None
    except ValueError:
        return None


def _authorization(environ: Mapping[str, str]) -> str | None:
    path = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if path:
        with open(path, encoding="utf-8") as token_file:
            return token_file.read()
    return environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")


def route(environ: Mapping[str, str]) -> Route | None:
    """The route when the environment alone decides region, endpoint and
    credentials; None sends the caller to botocore."""
    if any(_flag(environ, name) for name in _BOTOCORE_ONLY) or _files_exist(environ):
        return None
    region = environ.get("AWS_DEFAULT_REGION", "").strip()  # botocore's only region variable
    if not region:
        return None
    endpoint = _configured_endpoint(environ) or endpoint_for(region)
    if endpoint is None:
        return None
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    ca_bundle = environ.get("AWS_CA_BUNDLE") or None
    access_key = environ.get("AWS_ACCESS_KEY_ID", "")
    if access_key:
        secret_key = environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not secret_key:
            return None  # botocore reports the partial credentials
        token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
        return Route(region, endpoint.rstrip("/"), Credentials(access_key, secret_key, token), ca_bundle=ca_bundle)
    url = _container_url(environ)
    if url is None:
        return None
    try:
        authorization = _authorization(environ)
    except OSError:
        return None  # botocore reports the unreadable token file
    if authorization is not None and ("\r" in authorization or "\n" in authorization):
        return None
    return Route(region, endpoint.rstrip("/"), None, url, authorization, ca_bundle)


def crt_available() -> bool:
    """awscrt is installed (a declared dependency; absent, botocore is used)."""
    import importlib.util

    return importlib.util.find_spec("awscrt") is not None


def _default_ca_bundle() -> str | None:
    """The CA bundle botocore verifies AWS with: certifi's if installed, else its own."""
    import importlib.util

    for package in ("certifi", "botocore"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            path = os.path.join(next(iter(spec.submodule_search_locations)), "cacert.pem")
            if os.path.exists(path):
                return path
    return None


class _Connection:
    """One keep-alive connection to one origin, every request bounded by the deadline."""

    def __init__(
        self, url: str, ca_bundle: str | None, give_up_at: float, clock: Callable[[], float], deadline: float
    ) -> None:
        parts = urlsplit(url)
        self.secure = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.netloc = parts.netloc
        self._ca_bundle = ca_bundle
        self._give_up_at = give_up_at
        self._deadline = deadline
        self._clock = clock
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self, connect_timeout: float) -> http.client.HTTPConnection:
        if self._connection is not None:
            return self._connection
        if self.secure:
            import ssl

            context = ssl.create_default_context(cafile=self._ca_bundle or _default_ca_bundle())
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=connect_timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=connect_timeout)
        self._connection = connection
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def send(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        what: str,
        limit: int,
        timeout_cap: float = READ_TIMEOUT,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, body); connection failures are RetryableError,
        a request that cannot finish in time is DeadlineError."""
        left = self._give_up_at - self._clock()
        connect_timeout = max(MIN_CALL_SECONDS, min(CONNECT_TIMEOUT, timeout_cap, left / 4))
        read_timeout = min(timeout_cap, left - connect_timeout)
        if read_timeout < MIN_CALL_SECONDS:
            raise DeadlineError(f"gave up: the {self._deadline:g}s deadline passed")
        connection = self._connect(connect_timeout)
        if connection.sock is None:
            try:
                connection.connect()
            except OSError as exc:
                self._fail(
                    what, "ConnectTimeoutError" if isinstance(exc, TimeoutError) else "EndpointConnectionError", exc
                )
        try:
            connection.sock.settimeout(read_timeout)
            connection.request(method, path, body=body, headers=dict(headers))
            response = connection.getresponse()
            data = response.read(limit + 1)
        except (OSError, http.client.HTTPException) as exc:
            self._fail(what, "ReadTimeoutError" if isinstance(exc, TimeoutError) else "ConnectionClosedError", exc)
        if len(data) > limit:
            self.close()
            raise AwsError(f"{what}: the answer is larger than {limit} bytes")
        if response.will_close:
            self.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def _fail(self, what: str, kind: str, exc: BaseException) -> NoReturn:
        """A connection failure, named as botocore names it (both paths say the same)."""
        self.close()
        raise RetryableError(f"{what}: connection failed ({kind})") from exc


def fetch_container_credentials(
    url: str,
    authorization: str | None,
    give_up_at: float,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> Credentials:
    """The task role's credentials from the container credentials endpoint."""
    what = "container credentials"
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    connection = _Connection(url, None, give_up_at, clock, deadline)
    try:
        status, _, body = connection.send(
            "GET", path, headers, None, what, MAX_CREDENTIALS_BYTES, timeout_cap=CREDENTIALS_TIMEOUT
        )
    finally:
        connection.close()
    if status != 200:
        # botocore retries every non-200 answer of this endpoint too.
        raise RetryableError(f"{what}: HTTP {status}")
    try:
        document = json.loads(body)
        return Credentials(document["AccessKeyId"], document["SecretAccessKey"], document.get("Token"))
    except (ValueError, KeyError, TypeError):
        raise RetryableError(f"{what}: the answer is not a credentials document") from None


def _error_code(status: int, body: bytes) -> str:
    """The error code as botocore's JSON parser reads it: the body's __type
    (without a namespace before '#' or a suffix after ':'), else the HTTP status."""
    code = str(status)
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        document = {}
    if isinstance(document, dict) and isinstance(document.get("__type"), str):
        code = document["__type"]
    return code.split(":", 1)[0].rsplit("#", 1)[-1]


class CrtSecretReader:
    """The reads of SecretPort a container start makes (get, find,
    get_current_many), signed by awscrt, sent with http.client."""

    def __init__(
        self,
        route: Route,
        deadline_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.route = route
        self._clock = clock
        self._now = now
        self._give_up_at = clock() + deadline_seconds
        self._deadline = deadline_seconds
        self._credentials = route.credentials
        self._connection = _Connection(route.endpoint, route.ca_bundle, self._give_up_at, clock, deadline_seconds)
        self.calls = 0

    def credentials(self) -> Credentials:
        if self._credentials is None:
            assert self.route.credentials_url is not None
            self._credentials = fetch_container_credentials(
                self.route.credentials_url, self.route.authorization, self._give_up_at, self._deadline, self._clock
            )
        return self._credentials

    def signed_headers(self, target: str, body: bytes) -> dict[str, str]:
        """The request's headers, signed with SigV4 by awscrt."""
        from awscrt.auth import (
            AwsCredentialsProvider,
            AwsSignatureType,
            AwsSigningAlgorithm,
            AwsSigningConfig,
            aws_sign_request,
        )
        from awscrt.http import HttpHeaders, HttpRequest

        credentials = self.credentials()
        headers = HttpHeaders(
            [
                ("Host", self._connection.netloc),
                ("Content-Type", CONTENT_TYPE),
                ("X-Amz-Target", TARGET_PREFIX + target),
                ("Content-Length", str(len(body))),
            ]
        )
        request = HttpRequest("POST", "/", headers, io.BytesIO(body))
        config = AwsSigningConfig(
            algorithm=AwsSigningAlgorithm.V4,
            signature_type=AwsSignatureType.HTTP_REQUEST_HEADERS,
            credentials_provider=AwsCredentialsProvider.new_static(
                credentials.access_key, credentials.secret_key, credentials.token
            ),
            region=self.route.region,
            service=SERVICE,
            date=self._now() if self._now else None,
        )
        aws_sign_request(request, config).result()
        return {**dict(request.headers), "User-Agent": USER_AGENT}

    def call(self, target: str, params: Mapping[str, Any], what: str) -> dict[str, Any]:
        """One Secrets Manager action; its answer, or the certrotor error for its failure."""
        body = json.dumps(params, separators=(",", ":")).encode("utf-8")
        headers = self.signed_headers(target, body)
        self.calls += 1
        status, _, data = self._connection.send("POST", "/", headers, body, what, MAX_RESPONSE_BYTES)
        if status != 200:
            raise error_for_code(_error_code(status, data), what)
        try:
            answer = json.loads(data)
        except ValueError:
            raise AwsError(f"{what}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise AwsError(f"{what}: the answer is not a JSON object")
        return answer

    def get(self, secret_id: str, version: str | None = None, stage: str | None = None) -> SecretValue:
        """One secret value, by VersionId or by stage (AWSCURRENT if neither)."""
        what = f"GetSecretValue {secret_id}"
        try:
            return secret_value(self.call("GetSecretValue", get_params(secret_id, version, stage), what))
        except KeyError:
            raise AwsError(f"{what}: the answer holds no string value") from None

    def find(self, secret_id: str, version: str) -> SecretValue | None:
        try:
            return self.get(secret_id, version=version)
        except NotFoundError:
            return None

    def get_current_many(self, secret_ids: Sequence[str]) -> dict[str, SecretValue]:
        """AWSCURRENT of many secrets in as few calls as BatchGetSecretValue allows."""

        def batch(chunk: list[str]) -> dict[str, Any]:
            return self.call(
                "BatchGetSecretValue", {"SecretIdList": chunk}, f"BatchGetSecretValue {len(chunk)} secrets"
            )

        try:
            return read_current_many(secret_ids, batch)
        except KeyError:
            raise AwsError("BatchGetSecretValue: the answer holds no string values") from None

    def close(self) -> None:
        self._connection.close()

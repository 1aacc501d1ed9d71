"""A loopback stand-in for the issuer's Lambda Function URL (AWS_IAM auth).

`IssuerGateway` serves HTTP on 127.0.0.1, checks each request's SigV4
signature as the Function URL does (service "lambda"; unknown access key,
unsigned or wrongly signed -> 403 JSON), turns it into a Function URL event
(payload version 2.0, the caller's ARN in requestContext.authorizer.iam)
and calls the real `certrotor.handlers.issuer.lambda_handler` in the
emulator's environment. The real client and the real handler meet here
exactly as they would in AWS.

`identities` maps access key ids to (secret key, principal ARN), so tests
can act as several task roles; by default the emulator's own credentials
act as `DEFAULT_PRINCIPAL`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from certrotor.local.driver import LambdaContext
from certrotor.local.emulator import ACCOUNT, Emulator
from certrotor.local.provision import LocalEnvironment
from certrotor.local.trigger import LocalRotationTrigger

ISSUER_FUNCTION = "certrotor-issuer"
DEFAULT_PRINCIPAL = f"arn:aws:sts::{ACCOUNT}:assumed-role/certrotor-local-task/local"
# The demo's policy: the local task role may ask for localhost names and
# issue-now the demo set.
# Function URLs take request bodies up to 6 MB; bigger ones never reach the code.
MAX_BODY_BYTES = 6 * 1024 * 1024
READ_TIMEOUT_SECONDS = 30
# SigV4: AWS refuses a signature more than 15 minutes from its clock.
MAX_CLOCK_SKEW = dt.timedelta(minutes=15)
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/"
    r"(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Identity:
    """Who a SigV4 access key stands for in local mode."""

    secret_key: str
    principal_arn: str


class SignatureRejected(Exception):
    """The request's SigV4 signature is missing, stale or does not verify."""


@dataclass(frozen=True)
class IssuerTables:
    ledger: str
    idempotency: str


_dynamodb_lock = threading.Lock()
_dynamodb_serialized = False


def _serialize_emulated_dynamodb() -> None:
    """moto 5.2's TransactWriteItems deep-copies every table to roll back on
    failure, while other requests change them: under concurrency it fails
    with a 500 ("dictionary changed size during iteration") and its rollback
    can undo other requests' writes. DynamoDB itself is atomic per request;
    serializing the emulated DynamoDB's requests makes moto so too."""
    global _dynamodb_serialized
    with _dynamodb_lock:
        if _dynamodb_serialized:
            return
        from moto.dynamodb.responses import DynamoHandler

        original = DynamoHandler.call_action
        request_lock = threading.Lock()

        def call_action(self: Any) -> Any:
            with request_lock:
                return original(self)

        DynamoHandler.call_action = call_action  # type: ignore[method-assign]
        _dynamodb_serialized = True


def create_issuer_tables(emulator: Emulator, prefix: str | None = None) -> IssuerTables:
    """The ledger and idempotency tables, as the IssuerApi construct makes them."""
    from certrotor.aws.ledger import ledger_table_definition

    _serialize_emulated_dynamodb()

    prefix = prefix or f"certrotor-{uuid.uuid4().hex[:8]}"
    tables = IssuerTables(ledger=f"{prefix}-ledger", idempotency=f"{prefix}-idempotency")
    dynamodb = emulator.client("dynamodb")
    dynamodb.create_table(**ledger_table_definition(tables.ledger))
    dynamodb.create_table(
        TableName=tables.idempotency,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return tables


def verify_sigv4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    identities: Mapping[str, Identity],
    region: str,
    now: dt.datetime,
) -> tuple[str, Identity]:
    """Recompute the request's signature with botocore; return (access key, identity).

    `headers` keys are lowercase. Only the headers the client signed are
    used, as AWS does; the signature must cover host and x-amz-date.
    """
    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if match is None:
        raise SignatureRejected("the request is not signed with AWS Signature Version 4")
    access_key = match.group("key")
    identity = identities.get(access_key)
    if identity is None:
        raise SignatureRejected("the access key is not known")
    if match.group("service") != "lambda" or match.group("region") != region:
        raise SignatureRejected(f"the signature is not for service lambda in {region}")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise SignatureRejected("x-amz-date is missing or malformed") from None
    if abs(now - signed_at) > MAX_CLOCK_SKEW or match.group("date") != amz_date[:8]:
        raise SignatureRejected("the signature is too old or from the future")
    signed = match.group("headers").split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        raise SignatureRejected("the signature must cover host and x-amz-date")
    # botocore's canonical request takes a signed x-amz-content-sha256 as the
    # payload hash without hashing the body: hold it to the body received.
    claimed = headers.get("x-amz-content-sha256")
    if claimed is not None and claimed != hashlib.sha256(body).hexdigest():
        raise SignatureRejected("x-amz-content-sha256 does not match the body")
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers.get(name, "") for name in signed})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(
        Credentials(access_key, identity.secret_key, headers.get("x-amz-security-token")),
        "lambda",
        region,
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, match.group("signature")):
        raise SignatureRejected("the signature does not match")
    return access_key, identity


class BadRequest(ValueError):
    """The HTTP request's framing is unusable; `status` and `error` answer it."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


_DIGITS = re.compile(r"^[0-9]{1,10}$")


def body_length(values: list[str], headers: Any) -> int:
    """The body's length from Content-Length (RFC 9110 section 8.6: one
    non-negative decimal number), at most MAX_BODY_BYTES. A chunked body
    (which Function URLs accept but this gateway does not read) and a
    missing length on a request with Transfer-Encoding are refused."""
    if headers.get("Transfer-Encoding"):
        raise BadRequest(411, "length_required", "send the body with a Content-Length, not Transfer-Encoding")
    if not values:
        return 0
    if len(set(values)) > 1 or not _DIGITS.match(values[0].strip()):
        raise BadRequest(400, "bad_request", "Content-Length must be one non-negative whole number")
    length = int(values[0])
    if length > MAX_BODY_BYTES:
        raise BadRequest(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
    return length


def function_url_event(
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    principal_arn: str,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """A Lambda Function URL event (payload format 2.0) for an IAM-signed request."""
    content_type = headers.get("content-type", "")
    text = content_type.startswith(("application/json", "text/"))
    try:
        body_text = body.decode("utf-8") if text else None
    except UnicodeDecodeError:
        body_text = None
    now = time.time()
    request_id = str(uuid.uuid4())
    account = principal_arn.split(":")[4] if principal_arn.count(":") >= 5 else ACCOUNT
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": dict(headers),
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "certrotorlocal",
            "authorizer": {
                "iam": {
                    "accessKey": access_key,
                    "accountId": account,
                    "callerId": principal_arn.rsplit("/", 1)[-1],
                    "userArn": principal_arn,
                    "userId": access_key,
                }
            },
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "certrotorlocal",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": body_text is None and bool(body),
    }
    if body:
        event["body"] = body_text if body_text is not None else base64.b64encode(body).decode("ascii")
    return event


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class _LoopbackServer(ThreadingHTTPServer):
    # socketserver's default backlog of 5 resets bursts of concurrent clients.
    request_queue_size = 128
    daemon_threads = True


def _default_handler() -> Handler:
    from certrotor.handlers.issuer import lambda_handler

    return lambda_handler  # type: ignore[no-any-return]


@dataclass
class GatewayStats:
    requests: int = 0
    rejected: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class IssuerGateway:
    """The issuer behind a loopback Function URL; use as a context manager."""

    def __init__(
        self,
        environment: LocalEnvironment,
        identities: Mapping[str, Identity] | None = None,
        tables: IssuerTables | None = None,
        handler: Handler | None = None,
        trigger: LocalRotationTrigger | None = None,
        function_timeout: float = 30.0,
    ) -> None:
        self.environment = environment
        self.emulator = environment.emulator
        credentials = self.emulator.env()
        self.identities = dict(
            identities
            or {credentials["AWS_ACCESS_KEY_ID"]: Identity(credentials["AWS_SECRET_ACCESS_KEY"], DEFAULT_PRINCIPAL)}
        )
        self.tables = tables or create_issuer_tables(self.emulator)
        self.trigger = trigger or LocalRotationTrigger(environment)
        self.stats = GatewayStats()
        self._handler = handler
        self._timeout = function_timeout
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stack = contextlib.ExitStack()
        self._stats_lock = threading.Lock()
        self.url = ""

    def function_env(self) -> dict[str, str]:
        """The issuer function's environment, as the IssuerApi construct sets it."""
        return {
            **self.environment.lambda_env(),
            "CERTROTOR_LEDGER_TABLE": self.tables.ledger,
            "CERTROTOR_IDEMPOTENCY_TABLE": self.tables.idempotency,
        }

    def with_identity(self, access_key: str, secret_key: str, principal_arn: str) -> IssuerGateway:
        """Add a caller (tests acting as another task role)."""
        self.identities[access_key] = Identity(secret_key, principal_arn)
        return self

    def start(self) -> IssuerGateway:
        from certrotor.handlers import issuer

        # Set once for the gateway's life: handler threads share os.environ.
        self._stack.enter_context(self.emulator.activated(self.function_env()))
        issuer.use_rotation_trigger(self.trigger)
        self._stack.callback(issuer.use_rotation_trigger, None)
        handler = self._handler or _default_handler()
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A client that stops sending mid-request is dropped, not waited for.
            timeout = READ_TIMEOUT_SECONDS

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests and the benchmark print their own figures."""

            def _answer(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
                with gateway._stats_lock:
                    gateway.stats.requests += 1
                    gateway.stats.statuses[status] = gateway.stats.statuses.get(status, 0) + 1
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _refuse(self, status: int, error: str, message: str) -> None:
                with gateway._stats_lock:
                    gateway.stats.rejected += 1
                body = json.dumps({"error": error, "message": message}).encode()
                self._answer(status, body, {"Content-Type": "application/json"})

            def _serve(self) -> None:
                try:
                    length = body_length(self.headers.get_all("Content-Length") or [], self.headers)
                except BadRequest as exc:
                    # The body's end is unknown: the connection cannot be reused.
                    self.close_connection = True
                    self._refuse(exc.status, exc.error, str(exc))
                    return
                body = self.rfile.read(length) if length else b""
                if len(body) < length:
                    self.close_connection = True
                    self._refuse(400, "bad_request", f"the body ended after {len(body)} of {length} bytes")
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                raw_path, _, query = self.path.partition("?")
                url = f"http://{headers.get('host', '127.0.0.1')}{self.path}"
                try:
                    access_key, identity = verify_sigv4(
                        self.command,
                        url,
                        headers,
                        body,
                        gateway.identities,
                        gateway.emulator.region,
                        dt.datetime.now(dt.UTC),
                    )
                except SignatureRejected as exc:
                    self._refuse(403, "forbidden", str(exc))
                    return
                event = function_url_event(
                    self.command,
                    raw_path,
                    query,
                    headers,
                    body,
                    access_key,
                    identity.principal_arn,
                    self.client_address[0],
                )
                context = LambdaContext(
                    timeout_seconds=gateway._timeout,
                    function_name=ISSUER_FUNCTION,
                    invoked_function_arn=f"arn:aws:lambda:{gateway.emulator.region}:{ACCOUNT}:function:{ISSUER_FUNCTION}",
                )
                try:
                    result = handler(event, context)
                except Exception as exc:
                    self._refuse(502, "function_error", type(exc).__name__)
                    return
                payload = result.get("body") or ""
                data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
                self._answer(int(result.get("statusCode", 200)), data, result.get("headers") or {})

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self._server = _LoopbackServer(("127.0.0.1", 0), RequestHandler)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="issuer-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.trigger.wait(timeout=60)
        self._stack.close()

    def __enter__(self) -> IssuerGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_issuer_demo(environment: LocalEnvironment, say: Callable[[str], None] = print) -> None:
    """The issuer's part of `make demo`: one CSR issuance with the request
    client's steps, and one issue-now of the first set followed to the end.
    `environment` needs an issuer policy for DEFAULT_PRINCIPAL (the demo
    config has one)."""
    from botocore.credentials import Credentials

    from certrotor.client.request import FunctionUrlClient, request_certificate
    from certrotor.operator import issue_now

    credentials = environment.emulator.env()
    with IssuerGateway(environment) as gateway:
        client = FunctionUrlClient(
            gateway.url,
            Credentials(credentials["AWS_ACCESS_KEY_ID"], credentials["AWS_SECRET_ACCESS_KEY"]),
            region=environment.emulator.region,
        )
        say(f"issuer: Function URL (local, SigV4 checked) at {gateway.url}")
        requested = request_certificate(client, ["localhost"], ["127.0.0.1"], say=lambda line: say(f"issuer: {line}"))
        say(
            f"issuer: CSR issued: serial {requested.serial}, valid until {requested.not_after};"
            " the key never left the client"
        )
        issue_now(client, environment.config.sets[0].name, timeout=120, say=lambda line: say(f"issuer: {line}"))

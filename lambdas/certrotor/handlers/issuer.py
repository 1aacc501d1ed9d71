"""On-demand issuer Lambda, behind a Function URL with AWS_IAM auth.

Routes (a Function URL router, handlers/function_url.py):
- POST /certificates          {"csr": PEM, "validity_days": N} -> 201
- POST /sets/{name}/issue     start a rotation of a managed set now -> 202
- GET  /sets/{name}           version, serial, not_after, rotation_in_progress

Set names contain "/" and travel URL-encoded ("demo%2Fweb"). The caller is
`requestContext.authorizer.iam.userArn`. Every refusal is a JSON body
{"error": "<rule>", "message": "..."} with a 4xx status, mapped in one
place below; nothing is issued for a refused request.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrotor.aws.ledger import Ledger
from certrotor.aws.pca import PrivateCA
from certrotor.aws.rotation_trigger import RotationInProgressError, SecretsManagerRotationTrigger
from certrotor.aws.secrets import SecretStore
from certrotor.bounded_json import JsonRefused, parse_json_object
from certrotor.errors import (
    CertrotorError,
    ConfigError,
    NotFoundError,
    RetryableError,
    ThrottledError,
)
from certrotor.handlers.function_url import BadBody, Invocation, Response, Router
from certrotor.handlers.runtime import Settings, client
from certrotor.handlers.tracing import make_tracer
from certrotor.pki.policy import MAX_REQUEST_BYTES, PolicyDecision, RequestRefused, Rule, check_size
from certrotor.services.issuance import CertificateIssuer, ManagedSets, RotationTriggerPort

logger = Logger()
tracer = make_tracer()

LEDGER_TABLE_ENV = "CERTROTOR_LEDGER_TABLE"
IDEMPOTENCY_TABLE_ENV = "CERTROTOR_IDEMPOTENCY_TABLE"
METRICS_NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
DEFAULT_METRICS_NAMESPACE = "certrotor"
METRIC_ISSUED = "IssuedCertificates"
METRIC_QUOTA_USED = "QuotaUsedPercent"
# A retry within this window returns the stored response; afterwards the
# ledger's request item still maps the same request to the same certificate.
IDEMPOTENCY_SECONDS = 24 * 3600
SAFETY_MARGIN_SECONDS = 3.0
# Private CA gives no rate to wait for; a short pause then a retry is what
# its throttling guidance asks for.
THROTTLED_RETRY_AFTER = 2

_STATUS = {
    Rule.TOO_LARGE: 413,
    Rule.UNKNOWN_PRINCIPAL: 403,
    Rule.SET_NOT_ALLOWED: 403,
    Rule.UNKNOWN_SET: 404,
    Rule.RATE_LIMITED: 429,
    Rule.INVALID_REQUEST: 400,
    Rule.NOT_PEM: 400,
}
_DEFAULT_REFUSAL_STATUS = 422


@dataclass(frozen=True)
class IssuerSettings:
    """The issuer's settings: the shared ones plus its two tables."""

    base: Settings
    ledger_table: str
    idempotency_table: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IssuerSettings:
        base = Settings.from_env(env)
        missing = [name for name in (LEDGER_TABLE_ENV, IDEMPOTENCY_TABLE_ENV) if not env.get(name)]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not set")
        return cls(base, env[LEDGER_TABLE_ENV], env[IDEMPOTENCY_TABLE_ENV])


@dataclass(frozen=True)
class IssuerWiring:
    settings: IssuerSettings
    issuer: CertificateIssuer
    home_account: str
    ledger: Ledger
    pca_client: Any
    """The Private CA boto3 client (its event hooks are where tests inject faults)."""
    secrets: SecretStore
    trigger: RotationTriggerPort
    idempotency: IdempotencyConfig
    issue_once: Callable[..., dict[str, Any]]


@functools.lru_cache(maxsize=8)
def _wiring_for(env_items: tuple[tuple[str, str], ...]) -> IssuerWiring:
    settings = IssuerSettings.from_env(dict(env_items))
    config = settings.base.config
    pca_client = client("acm-pca")
    ca = PrivateCA(settings.base.ca_arn, pca_client)
    # Role-name patterns in the policies name roles of this account; which
    # account that is, STS says (GetCallerIdentity needs no permission).
    home_account = str(client("sts").get_caller_identity()["Account"])  # type: ignore[attr-defined]
    ledger = Ledger(settings.ledger_table, client("dynamodb"))
    issuer = CertificateIssuer(
        config,
        ca,
        ledger,
        logger=logger,  # type: ignore[arg-type]
        home_account=home_account,
    )  # type: ignore[arg-type]
    idempotency = IdempotencyConfig(
        event_key_jmespath="[principal, csr_sha256, validity_days]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_SECONDS,
    )
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=client("dynamodb"))  # type: ignore[arg-type]

    # Inside the idempotent function: an exception (throttling, deadline,
    # rate limit) deletes the in-progress record, so it is never replayed as
    # a success, and the retry runs again and finds the ARN in the ledger.
    def issue_once(
        *,
        request: dict[str, Any],
        decision: PolicyDecision,
        request_id: str,
        remaining: Callable[[], float],
    ) -> dict[str, Any]:
        result = issuer.issue(decision, request_id, remaining)
        if result.newly_recorded:
            publish_issuance(result.quota_used_percent)
        return result.response()

    return IssuerWiring(
        settings=settings,
        home_account=home_account,
        ledger=ledger,
        issuer=issuer,
        pca_client=pca_client,
        secrets=SecretStore(client("secretsmanager")),
        trigger=SecretsManagerRotationTrigger(client("secretsmanager")),
        idempotency=idempotency,
        issue_once=idempotent_function(
            issue_once,
            data_keyword_argument="request",
            persistence_store=persistence,
            config=idempotency,
        ),
    )


def publish_issuance(quota_used_percent: float) -> None:
    """IssuedCertificates and QuotaUsedPercent, as one EMF record now.

    Its own provider, not the shared Metrics object: Metrics keeps its
    values on the class, which concurrent invocations in local mode would
    mix, and reads its namespace when the module is imported."""
    emf = AmazonCloudWatchEMFProvider(
        namespace=os.environ.get(METRICS_NAMESPACE_ENV) or DEFAULT_METRICS_NAMESPACE,
        service=os.environ.get("POWERTOOLS_SERVICE_NAME"),
    )
    emf.add_metric(name=METRIC_ISSUED, unit=MetricUnit.Count, value=1)
    emf.add_metric(name=METRIC_QUOTA_USED, unit=MetricUnit.Percent, value=quota_used_percent)
    emf.flush_metrics()


_ENV_KEYS = ("CERTROTOR_CONFIG", "CERTROTOR_CA_ARN", LEDGER_TABLE_ENV, IDEMPOTENCY_TABLE_ENV)
_trigger_override: RotationTriggerPort | None = None


def wiring() -> IssuerWiring:
    """Adapters and services for the current settings, built once (never at import)."""
    return _wiring_for(tuple((key, os.environ.get(key, "")) for key in _ENV_KEYS))


def use_rotation_trigger(trigger: RotationTriggerPort | None) -> None:
    """Local mode only: moto cannot run the rotation Lambda that RotateSecret
    would invoke, so the gateway substitutes a trigger that drives the same
    rotation handler itself. None restores RotateSecret."""
    global _trigger_override
    _trigger_override = trigger


def managed_sets() -> ManagedSets:
    wired = wiring()
    return ManagedSets(  # type: ignore[arg-type]
        wired.settings.base.config,
        wired.secrets,
        _trigger_override or wired.trigger,
        wired.home_account,
        wired.ledger,
    )


# --------------------------------------------------------------------------
# Routes


def _user_arn(app: Invocation) -> str:
    iam = (app.current_event.request_context.get("authorizer") or {}).get("iam") or {}
    return str(iam.get("userArn") or "")


# A request body is one flat object: {"csr": PEM, "validity_days": N}.
MAX_BODY_DEPTH = 2


def _json_body(app: Invocation) -> dict[str, Any]:
    try:
        raw = app.current_event.decoded_body or ""
    except BadBody as exc:
        raise RequestRefused(Rule.INVALID_REQUEST, str(exc)) from None
    check_size(raw, MAX_REQUEST_BYTES)
    try:
        return parse_json_object(raw, max_chars=MAX_REQUEST_BYTES, max_depth=MAX_BODY_DEPTH, what="the body")
    except JsonRefused as exc:
        raise RequestRefused(
            Rule.INVALID_REQUEST, f'{exc}; send a JSON object {{"csr": PEM, "validity_days": N}}'
        ) from None


def _json(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    return Response.json(status, body, headers)


@tracer.capture_method(capture_response=False)
def post_certificate(app: Invocation) -> Response:
    body = _json_body(app)
    wired = wiring()
    decision = wired.issuer.approve(_user_arn(app), body.get("csr"), body.get("validity_days"))
    context = app.lambda_context
    response = wired.issue_once(
        request={
            "principal": decision.caller.role_arn,
            "csr_sha256": decision.csr_sha256,
            "validity_days": decision.validity_days,
        },
        decision=decision,
        request_id=str(getattr(context, "aws_request_id", "") or uuid.uuid4()),
        remaining=lambda: context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS,
    )
    logger.info(
        "certificate issued",
        extra={"serial": response["serial"], "principal": decision.caller.role_arn},
    )
    return _json(201, response)


def post_issue_now(app: Invocation, name: str) -> Response:
    set_name = unquote(name)
    token = managed_sets().issue_now(_user_arn(app), set_name)
    logger.info("rotation started", extra={"set": set_name, "token": token})
    return _json(202, {"name": set_name, "version": token})


def get_set(app: Invocation, name: str) -> Response:
    return _json(200, managed_sets().status(_user_arn(app), unquote(name)).response())


# --------------------------------------------------------------------------
# Errors, in one place


def _refused(exc: RequestRefused) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    logger.info("request refused", extra={"rule": exc.rule, "reason": str(exc)})
    return _json(
        _STATUS.get(exc.rule, _DEFAULT_REFUSAL_STATUS),
        {"error": exc.rule, "message": str(exc)},
        headers,
    )


def _throttled(exc: ThrottledError) -> Response:
    logger.warning("throttled", extra={"reason": str(exc)})
    return _json(
        429,
        {"error": "ca_throttled", "message": "Private CA is throttling; retry the same request"},
        {"Retry-After": str(THROTTLED_RETRY_AFTER)},
    )


def _in_progress(exc: Exception) -> Response:
    return _json(
        409,
        {"error": "in_progress", "message": "the same request is being served; retry it shortly"},
        {"Retry-After": "1"},
    )


def _rotation_in_progress(exc: RotationInProgressError) -> Response:
    return _json(409, {"error": "rotation_in_progress", "message": str(exc), "version": exc.token})


def _not_found(exc: NotFoundError) -> Response:
    return _json(404, {"error": "not_found", "message": str(exc)})


def _retryable(exc: Exception) -> Response:
    logger.warning("temporary failure", extra={"error_type": type(exc).__name__, "reason": str(exc)})
    return _json(
        503,
        {"error": "unavailable", "message": "temporary failure; retry the same request"},
        {"Retry-After": "2"},
    )


def _failed(exc: CertrotorError) -> Response:
    logger.error("request failed", extra={"error_type": type(exc).__name__, "reason": str(exc)})
    return _json(500, {"error": "internal", "message": type(exc).__name__})


def _no_route(exc: Exception) -> Response:
    return _json(404, {"error": "no_route", "message": "no such route; see docs/ISSUER.md"})


def build_resolver() -> Router:
    """The routes and the error mapping."""
    app = Router()
    app.route("POST", "/certificates")(post_certificate)
    app.route("POST", "/sets/<name>/issue")(post_issue_now)
    app.route("GET", "/sets/<name>")(get_set)
    app.exception_handler(RequestRefused)(_refused)
    app.exception_handler(ThrottledError)(_throttled)
    app.exception_handler(IdempotencyAlreadyInProgressError)(_in_progress)
    app.exception_handler(RotationInProgressError)(_rotation_in_progress)
    app.exception_handler(NotFoundError)(_not_found)
    app.exception_handler([RetryableError, IdempotencyPersistenceLayerError])(_retryable)
    app.exception_handler(CertrotorError)(_failed)
    app.not_found(_no_route)
    return app


# The router holds no per-request state: one serves concurrent invocations
# (local mode serves them from threads).
_router = build_resolver()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The event holds the CSR (public) and never key material; it is not logged.
    wiring().idempotency.register_lambda_context(context)
    return _router.resolve(event, context)

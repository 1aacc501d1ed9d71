"""Rotation Lambda: Secrets Manager's createSecret/setSecret/testSecret/finishSecret.

Thin: parse the event, take the adapters built once per cold start, run one
step, record metrics. Any error fails the step, which is what tells Secrets
Manager the rotation failed (it retries, and emits RotationFailed).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrotor.aws.pca import PrivateCA
from certrotor.errors import CertrotorError, RotationError
from certrotor.handlers.runtime import adapters, clearing, client
from certrotor.handlers.tracing import make_tracer
from certrotor.services.rotation import KnownVersions, RotationRequest, RotationService, Step
from certrotor.spec import set_name_of

logger = Logger()
metrics = Metrics(namespace="certrotor")  # set here: a disabled Metrics never clears, and its 100th value serializes
tracer = make_tracer()

# What this function instance stored at a rotation's token, for the later
# steps of the same rotation (Secrets Manager usually sends them here).
known_versions = KnownVersions()

# Leave time to write the parts and answer before Lambda's own timeout.
SAFETY_MARGIN_SECONDS = 20.0


# Private CAs other than the configured one that sets were moved to by a CA
# rotation (tag certrotor:ca), one adapter each per function instance.
other_cas: dict[str, PrivateCA] = {}


def ca_for(arn: str) -> PrivateCA:
    if arn not in other_cas:
        other_cas[arn] = PrivateCA(arn, client("acm-pca"))
    return other_cas[arn]


def rotation_service() -> RotationService:
    wired = adapters()
    config = wired.settings.config
    return RotationService(
        config,
        wired.secrets,
        wired.ca,
        wired.ecs,  # type: ignore[arg-type]
        logger=logger,  # type: ignore[arg-type]
        known=known_versions,
        ca_for=ca_for,
    )


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@clearing(metrics)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    try:
        request = RotationRequest.parse(event)
    except RotationError as exc:
        # Not an event Secrets Manager sends: refused before anything is read.
        logger.error("rotation event refused", extra={"error_type": type(exc).__name__, "reason": str(exc)})
        metrics.add_metric(name="RotationEventRefused", unit=MetricUnit.Count, value=1)
        raise
    # Only these fields are logged: the event carries no secret material, but
    # nothing from the secrets' values is ever added to a log record.
    logger.append_keys(step=request.step.value, secret_id=request.secret_id)
    try:

        def remaining() -> float:
            return context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS

        # A throttled call backs off only while this invocation has time left.
        adapters().retry.bind(remaining)
        result = rotation_service().run(request, remaining_seconds=remaining)
    except CertrotorError as exc:
        logger.error("rotation step failed", extra={"error_type": type(exc).__name__, "reason": str(exc)})
        _count_failure(request.secret_id)
        raise
    except Exception as exc:
        # Not one of ours: a bug or an untranslated library error. Its message
        # could carry anything, so only its type is logged.
        logger.error("rotation step failed unexpectedly", extra={"error_type": type(exc).__name__})
        _count_failure(request.secret_id)
        raise
    logger.info("rotation step done", extra={"set": result.set_name, "action": result.action, "serial": result.serial})
    metrics.add_metric(name="RotationStepSucceeded", unit=MetricUnit.Count, value=1)
    if request.step is Step.FINISH:
        metrics.add_metric(name="RotationSucceeded", unit=MetricUnit.Count, value=1)
        if result.redeploy_failures:
            metrics.add_metric(name="RedeployFailed", unit=MetricUnit.Count, value=len(result.redeploy_failures))
    return {
        "step": result.step.value,
        "set": result.set_name,
        "action": result.action,
        "serial": result.serial,
        "redeployed": result.redeployed,
        "redeploy_failures": result.redeploy_failures,
    }


def _count_failure(secret_id: str) -> None:
    """RotationFailed for the rotator, and once more with the set as a dimension
    (``RotatingCertificate.metric_rotation_failed``)."""
    metrics.add_metric(name="RotationFailed", unit=MetricUnit.Count, value=1)
    with single_metric(name="RotationFailed", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="CertificateSet", value=set_name_of(secret_id)[:250] or "unknown")

"""Monitor Lambda (scheduled): publish DaysToExpiry for every set, keep the
rotator's trust bundle holding its CA, and revoke superseded certificates
after their grace (services.supersede) when the CA publishes revocation.

Reads only the manifests (never a key) and emits one metric per set with the
set's name as a dimension; an alarm on it catches rotations that stopped.
The trust bundle is read once per run and written only when the CA's root
is missing from it (first run after deploy, or a CA renewed under a new root).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from certrotor.aws.pca import PrivateCA
from certrotor.errors import CertrotorError, ConfigError
from certrotor.handlers.runtime import Adapters, adapters, client
from certrotor.handlers.tracing import make_tracer
from certrotor.services.expiry import check_expiry
from certrotor.services.supersede import SupersededRevoker, revocation_enabled
from certrotor.services.trust import TrustStore, ensure_ca, rotator_id
from certrotor.spec import list_set_specs, with_sets

# A deploy-driven CA rotation starts at most this many rotations per run
# (0.2 s apart), well inside the monitor's one-minute timeout; larger fleets
# take several hourly runs per stage, or certrotor ca rotate.
MAX_STARTS_PER_RUN = 20

logger = Logger()
metrics = Metrics(namespace="certrotor")
tracer = make_tracer()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    wired = adapters()
    config = wired.settings.config
    specs, problems = list_set_specs(wired.secrets, config.rotator_id)
    for problem in problems:
        logger.warning("set has no usable spec", extra={"problem": problem})
    # The sets are those tagged with this rotator's id, read from their manifests.
    wired = dataclasses.replace(wired, settings=dataclasses.replace(wired.settings, config=with_sets(config, specs)))
    trust = _refresh_trust(wired)
    ca_rotation = _advance_ca_rotation(wired)
    superseded = _revoke_superseded(wired)
    states = check_expiry(wired.settings.config, wired.secrets, lambda: dt.datetime.now(dt.UTC))
    namespace = metrics.namespace
    for state in states:
        if state.days_to_expiry is None:
            logger.warning("set has no usable manifest", extra={"set": state.name, "problem": state.problem})
            with single_metric(name="SetNotIssued", unit=MetricUnit.Count, value=1, namespace=namespace) as metric:
                metric.add_dimension(name="CertificateSet", value=state.name)
            continue
        with single_metric(
            name="DaysToExpiry", unit=MetricUnit.Count, value=round(state.days_to_expiry, 2), namespace=namespace
        ) as metric:
            metric.add_dimension(name="CertificateSet", value=state.name)
    return {
        "sets": [{"name": s.name, "days_to_expiry": s.days_to_expiry, "serial": s.serial} for s in states],
        "trust": trust,
        "ca_rotation": ca_rotation,
        "superseded": superseded,
    }


def _advance_ca_rotation(wired: Adapters) -> dict[str, Any] | None:
    """When the deploy asks for a CA rotation (ca.rotation): begin it, or
    advance it one bounded pass (start rotations, record deliveries, go on
    to the next stage when one is done). Never waits; a failure is logged
    and reported, never fatal to the expiry metrics."""
    from certrotor.aws.rotation_trigger import SecretsManagerRotationTrigger
    from certrotor.services.ca_rotation import CaPorts, CaRotation

    config = wired.settings.config
    target = config.ca.rotation
    if target is None:
        return None
    lines: list[str] = []

    def disable(arn: str) -> None:  # pragma: no cover - the deploy never asks to disable
        raise CertrotorError("disabling the old CA is an operator's step: certrotor ca rotate --disable-old")

    store = TrustStore(wired.secrets, rotator_id(config))
    ports = CaPorts(
        secrets=wired.secrets,
        trust=store,
        trigger=SecretsManagerRotationTrigger(client("secretsmanager")),
        ca_chain=lambda arn: PrivateCA(arn, client("acm-pca")).ca_certificate_chain(),
        disable_ca=disable,
    )
    try:
        if not config.sets:
            return {"to": target.to_arn, "error": "the rotator has no sets to move"}
        rotation = CaRotation(ports, [s.name for s in config.sets], say=lines.append)
        state = rotation.advance(target.to_arn, until=target.until, max_starts=MAX_STARTS_PER_RUN)
    except CertrotorError as exc:
        logger.error("CA rotation not advanced", extra={"to": target.to_arn, "error": str(exc)})
        return {"to": target.to_arn, "error": str(exc), "lines": lines}
    stage = None if state is None else state.get("stage")
    logger.info("CA rotation advanced", extra={"to": target.to_arn, "stage": stage, "lines": lines})
    return {"to": target.to_arn, "stage": stage, "paused": bool(state and state.get("paused")), "lines": lines}


def _revoke_superseded(wired: Adapters) -> dict[str, Any]:
    """Revoke what rotations superseded, after delivery and the grace, when
    the CA publishes revocation (or the config says on)."""
    config = wired.settings.config
    enabled, reason = revocation_enabled(config, wired.ca)
    if not enabled:
        logger.info(reason)
        return {"enabled": False, "reason": reason}
    cas: dict[str, Any] = {wired.ca.ca_arn: wired.ca}
    # Each certificate is revoked by the CA that issued it: the current CA,
    # a CA rotation's target, or an old CA kept in ca.previous_arns.
    known = {wired.ca.ca_arn, *([config.ca.next_arn] if config.ca.next_arn else []), *config.ca.previous_arns}

    def ca_for(arn: str) -> Any:
        if arn not in known:
            raise ConfigError(
                f"a superseded certificate was issued by {arn}, which is not this rotator's CA: add it to "
                "ca.previous_arns (and deploy) so the monitor may revoke on it"
            )
        if arn not in cas:
            cas[arn] = PrivateCA(arn, client("acm-pca"))
        return cas[arn]

    revoker = SupersededRevoker(config, wired.secrets, ca_for)
    outcomes = revoker.run()
    if revoker.revocations:
        with single_metric(
            name="SupersededRevoked", unit=MetricUnit.Count, value=revoker.revocations, namespace=metrics.namespace
        ):
            pass
    return {
        "enabled": True,
        "reason": reason,
        "sets": [{"name": o.name, "action": o.action, "serial": o.serial} for o in outcomes],
    }


def _refresh_trust(wired: Adapters) -> dict[str, Any]:
    """The configured CA is in the trust bundle; a failure is logged and
    reported, never fatal to the expiry metrics."""
    store = TrustStore(wired.secrets, rotator_id(wired.settings.config))
    try:
        document, written = ensure_ca(store, wired.ca.ca_arn, wired.ca.ca_certificate_chain(), dt.datetime.now(dt.UTC))
    except CertrotorError as exc:
        logger.error("trust bundle not refreshed", extra={"trust": store.name, "error": str(exc)})
        return {"name": store.name, "error": str(exc)}
    if written:
        logger.info("trust bundle updated", extra={"trust": store.name, "revision": document.revision})
    return {"name": store.name, "revision": document.revision, "written": written}

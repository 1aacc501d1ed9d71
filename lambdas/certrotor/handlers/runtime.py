"""Wiring shared by every handler: settings from the environment, boto3
clients and services, built once per cold start on first use (never at
import), and rebuilt only if the settings change (as local mode may do).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import botocore.session
from botocore.config import Config

from certrotor.aws.ecs import EcsServices
from certrotor.aws.pca import PrivateCA
from certrotor.aws.retry import ThrottleRetry
from certrotor.aws.secrets import SecretStore
from certrotor.config import CertrotorConfig, load_config_json
from certrotor.errors import ConfigError
from certrotor.quiet_logs import keep_secrets_out_of_logs

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

Handler = TypeVar("Handler", bound=Callable[..., Any])

CONFIG_ENV = "CERTROTOR_CONFIG"
CA_ARN_ENV = "CERTROTOR_CA_ARN"
# Botocore's standard mode retries throttling and transient errors with
# jittered backoff; IssueCertificate retries are safe (IdempotencyToken).
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=20)


@dataclass(frozen=True)
class Settings:
    """Typed settings of a certrotor function, validated at cold start."""

    config: CertrotorConfig
    ca_arn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        raw = env.get(CONFIG_ENV)
        if not raw:
            raise ConfigError(f"{CONFIG_ENV} is not set")
        # The rotator's own settings; each set's spec is read from its
        # manifest (certrotor.spec), so sets never travel here.
        config = load_config_json(raw, require_sets=False)
        ca_arn = env.get(CA_ARN_ENV) or config.ca.arn
        if not ca_arn:
            raise ConfigError(f"{CA_ARN_ENV} is not set and the config names no CA ARN")
        return cls(config=config, ca_arn=ca_arn)


@dataclass(frozen=True)
class Adapters:
    settings: Settings
    secrets: SecretStore
    ca: PrivateCA
    ecs: EcsServices
    # Throttling backoff of every call above; a handler binds its deadline.
    retry: ThrottleRetry


@functools.cache
def _session() -> botocore.session.Session:
    # One session per process: it holds the loaded service models, so later
    # clients (a changed configuration in local mode) are cheap to make.
    # botocore's own session: boto3 would add only import time (s3transfer,
    # multiprocessing, resources) to every cold start.
    keep_secrets_out_of_logs()
    return botocore.session.get_session()


def client(service: str) -> object:
    """A botocore client with certrotor's retry and timeout settings."""
    return _session().create_client(service, config=_CLIENT_CONFIG)


@functools.lru_cache(maxsize=4)
def _adapters_for(raw_config: str, ca_arn: str | None) -> Adapters:
    settings = Settings.from_env({CONFIG_ENV: raw_config, CA_ARN_ENV: ca_arn or ""})
    retry = ThrottleRetry()
    return Adapters(
        settings=settings,
        secrets=SecretStore(retry.wrap(client("secretsmanager"))),
        ca=PrivateCA(settings.ca_arn, retry.wrap(client("acm-pca"))),
        ecs=EcsServices(retry.wrap(client("ecs"))),
        retry=retry,
    )


def adapters() -> Adapters:
    """The adapters for the current environment's settings (cached)."""
    return _adapters_for(os.environ.get(CONFIG_ENV, ""), os.environ.get(CA_ARN_ENV))


def clearing(metrics: Metrics) -> Callable[[Handler], Handler]:
    """Clear `metrics` once the handler and its flush are done (put above
    `@metrics.log_metrics`). A disabled Metrics (POWERTOOLS_METRICS_DISABLED:
    local mode, tests, benchmarks) is never flushed, so Powertools never
    clears it either, and at its 100th value it prints the whole set to
    stdout: a process running many invocations (the demo, the local gateway,
    a test run) would find stray EMF lines in its output."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def cleared(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            finally:
                metrics.clear_metrics()

        return cleared  # type: ignore[return-value]

    return wrap

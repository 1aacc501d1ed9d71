"""Names, sizes and limits of the deployed resources, in one place.

The Lambda runtime contract (handler paths, environment variable names,
metric names) is shared with the code in lambdas/certrotor; change both
together.
"""

from __future__ import annotations

import os
from pathlib import Path

from aws_cdk import Duration

import certrotor
from certrotor.fleet.quotas import rotation_concurrency
from certrotor.handlers.runtime import CA_ARN_ENV, CONFIG_ENV
from certrotor.layout.manifest import INITIAL_VALUE

# Everything the asset is built from comes from the installed packages,
# never from a repository checkout: the Lambda code is the installed
# ``certrotor`` package, its pinned requirements are package data here.
LAMBDA_PACKAGE_DIR = Path(certrotor.__file__).resolve().parent
LAMBDA_SOURCE_DIR = LAMBDA_PACKAGE_DIR.parent
LAMBDA_REQUIREMENTS_FILE = Path(__file__).resolve().parent / "lambda-requirements.txt"
CACHE_DIR_ENV = "CERTROTOR_CACHE_DIR"


def user_cache_dir() -> Path:
    """Where bundling caches installed wheels: ``$CERTROTOR_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/certrotor``, else ``~/.cache/certrotor``."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "certrotor"


BUNDLE_CACHE_DIR = user_cache_dir()

# Context keys read by app.py.
CONFIG_CONTEXT_KEY = "certrotor"
CONFIG_FILE_CONTEXT_KEY = "certrotor_config_file"
SKIP_BUNDLING_CONTEXT_KEY = "certrotor:skip_bundling"
ARCHITECTURE_CONTEXT_KEY = "certrotor:architecture"
STACK_NAME_CONTEXT_KEY = "certrotor:stack_name"
ISSUER_PATTERNS_CONTEXT_KEY = "certrotor:allow_issuer_principal_patterns"
DEFAULT_STACK_NAME = "Certrotor"

# Lambda entry points.
ROTATION_HANDLER = "certrotor.handlers.rotate.lambda_handler"
MONITOR_HANDLER = "certrotor.handlers.monitor.lambda_handler"

# Environment variables the handlers read. Never key material.
ENV_CONFIG = CONFIG_ENV
ENV_CA_ARN = CA_ARN_ENV
ENV_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
ENV_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
ENV_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
# Lambda refuses a function whose variables (names and values) exceed 4 KB.
LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096

# Metrics the handlers publish with Powertools (EMF). Powertools adds the
# "service" dimension (POWERTOOLS_SERVICE_NAME) to every metric it emits.
METRICS_NAMESPACE = "certrotor"
SERVICE_DIMENSION = "service"
SET_DIMENSION = "CertificateSet"
METRIC_DAYS_TO_EXPIRY = "DaysToExpiry"
METRIC_ROTATION_SUCCEEDED = "RotationSucceeded"
METRIC_ROTATION_FAILED = "RotationFailed"
METRIC_REDEPLOY_FAILED = "RedeployFailed"

# The rotation function waits for Private CA (IssueCertificate is
# asynchronous) with bounded backoff inside its remaining time.
ROTATION_TIMEOUT = Duration.minutes(5)
# Generating an RSA 4096 key and the in-memory TLS handshake are CPU bound;
# Lambda gives CPU in proportion to memory.
ROTATION_MEMORY_MB = 512
# Enough instances to rotate at the account's quota bound (Secrets Manager
# writes share 50 TPS, Private CA issues 25 TPS), and no more: a re-key paced
# under the bound is never capped by it, and a crowded window cannot run far
# past the quotas (certrotor.fleet.quotas.rotation_concurrency).
ROTATION_RESERVED_CONCURRENCY = rotation_concurrency()

# One hourly run at a time: two overlapping runs would race on the trust
# bundle and on revoking superseded certificates.
MONITOR_RESERVED_CONCURRENCY = 1
# About Private CA's 25 IssueCertificate TPS at the issuer's latency; a
# flood of CSRs is throttled (429) before it reaches the CA's quota or the
# account's concurrency.
ISSUER_RESERVED_CONCURRENCY = 10

MONITOR_TIMEOUT = Duration.minutes(1)
MONITOR_MEMORY_MB = 256
MONITOR_SCHEDULE_EXPRESSION = "rate(1 hour)"

# A created CA: root, self-signed, activated by the stack.
CA_KEY_ALGORITHM = "RSA_2048"
CA_SIGNING_ALGORITHM = "SHA256WITHRSA"
CA_VALIDITY_YEARS = 10
ROOT_CA_TEMPLATE = "RootCACertificate/V1"
# The issuing CA under a created root: it may sign end-entity certificates only.
SUBORDINATE_CA_TEMPLATE = "SubordinateCACertificate_PathLen0/V1"
SUBORDINATE_CA_VALIDITY_YEARS = 5
# A CRL is valid this long; Private CA republishes it before then and ~30
# minutes after each revocation.
CRL_EXPIRATION_DAYS = 7

# Value stored in every secret at creation, before the first rotation
# writes real material (Secrets Manager cannot create a secret without a
# value); readers report it as "not issued yet".
INITIAL_SECRET_VALUE = INITIAL_VALUE

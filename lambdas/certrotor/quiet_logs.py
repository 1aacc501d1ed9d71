"""Key material never reaches a log, whatever the log level.

botocore logs whole request and response bodies at DEBUG (`botocore.endpoint`
logs the parameters and the prepared request, `botocore.parsers` the response
body): with the root logger at DEBUG, which a Lambda application log level of
DEBUG gives, every PutSecretValue and GetSecretValue would write a private key
to CloudWatch. Every process certrotor runs (the Lambda handlers, the
container client, the CLI) calls `keep_secrets_out_of_logs` before it makes
an AWS client: the libraries that carry bodies log at INFO and above only,
whatever the root logger's level.
"""

from __future__ import annotations

import logging

# Loggers whose DEBUG records may hold request or response bodies.
BODY_CARRYING_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
QUIETEST_ALLOWED = logging.INFO


def keep_secrets_out_of_logs() -> None:
    """Raise the body-carrying loggers to INFO (idempotent, cheap)."""
    for name in BODY_CARRYING_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < QUIETEST_ALLOWED or logger.level < QUIETEST_ALLOWED:
            logger.setLevel(QUIETEST_ALLOWED)

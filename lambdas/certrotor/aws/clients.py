"""The client an adapter makes when none is given (tools and tests; the
handlers pass clients with certrotor's retry settings)."""

from __future__ import annotations

from typing import Any

import botocore.session

from certrotor.quiet_logs import keep_secrets_out_of_logs


def default_client(service: str) -> Any:
    """A botocore client from the default credential and region chain
    (with the body-carrying loggers quiet: docs/INPUTS.md, Logs)."""
    keep_secrets_out_of_logs()
    return botocore.session.get_session().create_client(service)

"""The client an adapter makes when none is given (tools and tests; the
handlers pass clients with certrotor's retry settings)."""

from __future__ import annotations

from typing import Any

import botocore.session


def default_client(service: str) -> Any:
    """A botocore client from the default credential and region chain."""
    return botocore.session.get_session().create_client(service)

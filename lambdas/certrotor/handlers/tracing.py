"""Powertools' Tracer when tracing is on; a stand-in that does nothing when off.

``Tracer()`` imports the X-Ray SDK even when tracing is disabled, and outside
Lambda the SDK also builds X-Ray clients for its sampler: tens of milliseconds
of a cold start, and much more in every test, benchmark and demo process.
Tracing is on exactly when Powertools would trace: in Lambda (or wherever
``LAMBDA_TASK_ROOT`` is set), not under SAM or Chalice local, and
``POWERTOOLS_TRACE_DISABLED`` not true.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

_TRUE = {"1", "y", "yes", "t", "true", "on"}


def tracing_enabled(env: Mapping[str, str] = os.environ) -> bool:
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return False
    if env.get("AWS_SAM_LOCAL") or env.get("AWS_CHALICE_CLI_MODE"):
        return False
    return bool(env.get("LAMBDA_TASK_ROOT"))


class NoTracer:
    """The decorators handlers use, passing every call straight through."""

    def capture_lambda_handler(self, lambda_handler: Callable[..., Any] | None = None, **_: Any) -> Any:
        return lambda_handler if lambda_handler is not None else _unchanged

    def capture_method(self, method: Callable[..., Any] | None = None, **_: Any) -> Any:
        return method if method is not None else _unchanged


def _unchanged(function: Callable[..., Any]) -> Callable[..., Any]:
    return function


def make_tracer() -> Any:
    """A Powertools Tracer if tracing is on, else a NoTracer (no X-Ray import)."""
    if not tracing_enabled():
        return NoTracer()
    from aws_lambda_powertools import Tracer

    # Only botocore is patched: certrotor makes no other traced calls, and
    # patching every library the SDK knows imports each of them.
    return Tracer(patch_modules=["botocore"])

"""The X-Ray SDK is imported only when tracing is on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from certrotor.handlers.tracing import NoTracer, tracing_enabled

LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "certrotor-rotate"}


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        (LAMBDA, True),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({**LAMBDA, "AWS_SAM_LOCAL": "true"}, False),
        ({**LAMBDA, "AWS_CHALICE_CLI_MODE": "true"}, False),
        ({}, False),
    ],
)
def test_tracing_is_on_where_powertools_would_trace(env: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(env) is enabled


def test_the_stand_in_leaves_decorated_functions_unchanged() -> None:
    def handler(event: object, context: object) -> str:
        return "done"

    tracer = NoTracer()

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method(capture_response=False)(handler) is handler


PROBE = """
import sys
import certrotor.handlers.rotate, certrotor.handlers.issuer, certrotor.handlers.monitor
from certrotor.handlers import rotate
print(type(rotate.tracer).__name__, any(m.startswith("aws_xray_sdk") for m in sys.modules))
"""


@pytest.mark.parametrize(("tracing", "expected"), [(False, "NoTracer False"), (True, "Tracer True")])
def test_the_handlers_import_the_xray_sdk_only_with_tracing_on(tracing: bool, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_LAMBDA"))}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true"})
    if tracing:
        env.update(LAMBDA)

    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == expected

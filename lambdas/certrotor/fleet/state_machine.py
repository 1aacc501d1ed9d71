"""The re-key state machine's definition (Amazon States Language), one
definition for AWS (deployed by the rotator's construct) and for the local
emulator (moto's ASL interpreter).

Input (built by ``certrotor rekey``)::

    {"rotator": "certrotor",        # the rotator id (tag certrotor:rotator)
     "all": true | "sets": [names], # every set of the rotator, or these
     "since": "2026-...Z",          # skip sets rotated at or after this time
     "concurrency": C,              # pacing: at most C sets in flight, each
     "wait_max": 2W,                # waiting 1 to 2W-1 s (W on average)
                                    # before it starts its rotation
     "reason": "...", "total": N}

Pacing: a Distributed Map runs at most C child executions at a time; each
child waits a random 1 to 2W-1 seconds, then starts one rotation
(RotateSecret, so the rotation function's four steps do the work) and ends,
so rotations start C / W per second on average, spread out rather than in
waves of C. ``certrotor.fleet.quotas.pacing`` picks C and
W under the Secrets Manager write bucket and the Private CA issuance rate.

Each child ends in one of four outcomes: ``started``, ``skipped`` (rotated
since ``since``: a redrive or a second run with the same ``since`` resumes),
``in-progress`` (a rotation of the set was already running) or ``failed``
(with the error). A failed set never stops the others. The per-set results
are the outputs of the Map states, in the execution's history, where
``certrotor rekey --status`` reads them.
"""

from __future__ import annotations

import json
from typing import Any

from certrotor.fleet import ROTATOR_TAG

# Sets per Distributed Map run: one ListSecrets page (50 entries of about
# 1 KB each), or one chunk of a given list; far under the 256 KB state limit.
CHUNK = 100
LIST_PAGE = 50
# Errors worth trying again inside one child (quota pressure, transient).
_RETRYABLE = [
    "SecretsManager.ThrottlingException",
    "SecretsManager.LimitExceededException",
    "SecretsManager.InternalServiceErrorException",
]
OUTCOMES = ("started", "skipped", "in-progress", "failed")
SDK = "arn:aws:states:::aws-sdk:secretsmanager"


def _outcome(outcome: str, *, with_error: bool = False) -> dict[str, Any]:
    parameters: dict[str, Any] = {"name.$": "$.name", "outcome": outcome}
    if with_error:
        parameters["error.$"] = "$.error.Error"
    return {"Type": "Pass", "Parameters": parameters, "End": True}


def rekey_one_set() -> dict[str, Any]:
    """The child: skip if rotated since `since`, else RotateSecret, then pace."""
    return {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Describe",
        "States": {
            "Describe": {
                "Type": "Task",
                "Resource": f"{SDK}:describeSecret",
                "Parameters": {"SecretId.$": "$.name"},
                "ResultSelector": {"rotation.$": "$"},
                "ResultPath": "$.describe",
                "Retry": [{"ErrorEquals": _RETRYABLE, "IntervalSeconds": 1, "MaxAttempts": 6, "BackoffRate": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
                "Next": "EverRotated",
            },
            "EverRotated": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.describe.rotation.LastRotatedDate", "IsPresent": True, "Next": "RotatedSince"}
                ],
                "Default": "Rotate",
            },
            "RotatedSince": {
                "Type": "Choice",
                "Choices": [
                    {
                        "Variable": "$.describe.rotation.LastRotatedDate",
                        "TimestampGreaterThanEqualsPath": "$.since",
                        "Next": "Skipped",
                    }
                ],
                "Default": "Delay",
            },
            # Pacing: a random whole number of seconds in [1, 2W-1] (mean W)
            # before each rotation, so the C slots start rotations C / W per
            # second on average without starting them in waves.
            "Delay": {
                "Type": "Pass",
                "Parameters": {"seconds.$": "States.MathRandom(1, $.wait_max)"},
                "ResultPath": "$.delay",
                "Next": "Pace",
            },
            "Pace": {"Type": "Wait", "SecondsPath": "$.delay.seconds", "Next": "Rotate"},
            "Rotate": {
                "Type": "Task",
                "Resource": f"{SDK}:rotateSecret",
                "Parameters": {"SecretId.$": "$.name", "RotateImmediately": True},
                "ResultPath": None,
                "Retry": [
                    {
                        "ErrorEquals": _RETRYABLE,
                        "IntervalSeconds": 1,
                        "MaxAttempts": 6,
                        "BackoffRate": 2,
                        "JitterStrategy": "FULL",
                    }
                ],
                "Catch": [
                    # Secrets Manager refuses a second rotation while one runs.
                    {
                        "ErrorEquals": ["SecretsManager.InvalidRequestException"],
                        "ResultPath": "$.error",
                        "Next": "InProgress",
                    },
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"},
                ],
                "Next": "Started",
            },
            "Started": _outcome("started"),
            "Skipped": _outcome("skipped"),
            "InProgress": _outcome("in-progress", with_error=True),
            "Failed": _outcome("failed", with_error=True),
        },
    }


def _rekey_map(items_path: str, name_path: str, next_state: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Map",
        "ItemsPath": items_path,
        "MaxConcurrencyPath": "$$.Execution.Input.concurrency",
        "ItemSelector": {
            "name.$": name_path,
            "since.$": "$$.Execution.Input.since",
            "wait_max.$": "$$.Execution.Input.wait_max",
        },
        "ItemProcessor": rekey_one_set(),
        # Each Map's results are in its MapStateExited event of the history;
        # the next Map replaces them in the state.
        "ResultPath": "$.results",
    }
    if next_state is None:
        state["End"] = True
    else:
        state["Next"] = next_state
    return state


def _list(token: bool) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "Filters": [
            {"Key": "tag-key", "Values": [ROTATOR_TAG]},
            {"Key": "tag-value", "Values.$": "States.Array($$.Execution.Input.rotator)"},
        ],
        "MaxResults": LIST_PAGE,
    }
    if token:
        parameters["NextToken.$"] = "$.page.next"
    return {
        "Type": "Task",
        "Resource": f"{SDK}:listSecrets",
        "Parameters": parameters,
        "ResultPath": "$.listed",
        "Retry": [
            {"ErrorEquals": _RETRYABLE, "IntervalSeconds": 1, "MaxAttempts": 6, "BackoffRate": 2},
        ],
        "Next": "LastPage?",
    }


def definition() -> dict[str, Any]:
    """The whole state machine."""
    return {
        "Comment": "certrotor re-key: RotateSecret for the selected sets, paced under the account's quotas",
        "StartAt": "Selection",
        "States": {
            "Selection": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.sets", "IsPresent": True, "Next": "Chunks"}],
                "Default": "List",
            },
            # A given list of sets, chunk by chunk.
            "Chunks": {
                "Type": "Pass",
                "Parameters": {"chunks.$": f"States.ArrayPartition($.sets, {CHUNK})"},
                "ResultPath": "$.work",
                "Next": "CountChunks",
            },
            "CountChunks": {
                "Type": "Pass",
                "Parameters": {"chunks.$": "$.work.chunks", "n.$": "States.ArrayLength($.work.chunks)", "i": 0},
                "ResultPath": "$.work",
                "Next": "MoreChunks",
            },
            "MoreChunks": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.work.i", "NumericLessThanPath": "$.work.n", "Next": "Chunk"}],
                "Default": "Done",
            },
            "Chunk": {
                "Type": "Pass",
                "Parameters": {"names.$": "States.ArrayGetItem($.work.chunks, $.work.i)"},
                "ResultPath": "$.page",
                "Next": "RekeyChunk",
            },
            "RekeyChunk": _rekey_map("$.page.names", "$$.Map.Item.Value", "NextChunk"),
            "NextChunk": {
                "Type": "Pass",
                "Parameters": {"chunks.$": "$.work.chunks", "n.$": "$.work.n", "i.$": "States.MathAdd($.work.i, 1)"},
                "ResultPath": "$.work",
                "Next": "MoreChunks",
            },
            # Every set of the rotator, page by page.
            "List": _list(token=False),
            "ListNext": _list(token=True),
            # Keep the names (and the token of the next page) only.
            "LastPage?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.listed.NextToken", "IsPresent": True, "Next": "Page"}],
                "Default": "LastPage",
            },
            "Page": {
                "Type": "Pass",
                "Parameters": {"names.$": "$.listed.SecretList[*].Name", "next.$": "$.listed.NextToken"},
                "ResultPath": "$.page",
                "Next": "RekeyPage",
            },
            "LastPage": {
                "Type": "Pass",
                "Parameters": {"names.$": "$.listed.SecretList[*].Name"},
                "ResultPath": "$.page",
                "Next": "RekeyPage",
            },
            "RekeyPage": _rekey_map("$.page.names", "$$.Map.Item.Value", "MorePages"),
            "MorePages": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.page.next", "IsPresent": True, "Next": "ListNext"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


def definition_json() -> str:
    return json.dumps(definition(), sort_keys=True, separators=(",", ":"))

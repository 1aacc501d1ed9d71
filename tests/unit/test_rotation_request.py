"""The rotation event as Secrets Manager sends it: parsed, or refused before anything is read."""

from __future__ import annotations

from typing import Any

import pytest

from certrotor.errors import RotationError
from certrotor.services.rotation import RotationRequest, Step

TOKEN = "3f1c9a52-5d4e-4b9a-9c41-6b0e8f2a7d10"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/web-AbCdEf"


def _event(**changes: Any) -> dict[str, object]:
    """A createSecret event shaped like the ones Secrets Manager sends."""
    event: dict[str, object] = {
        "Step": "createSecret",
        "SecretId": SECRET_ARN,
        "ClientRequestToken": TOKEN,
        "RotationToken": "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a",
    }
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def test_a_real_shaped_event_is_parsed() -> None:
    # Given / When
    request = RotationRequest.parse(_event())
    # Then
    assert request == RotationRequest(Step.CREATE, SECRET_ARN, TOKEN, "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a")


@pytest.mark.parametrize("step", list(Step))
def test_each_of_the_four_steps_is_accepted(step: Step) -> None:
    assert RotationRequest.parse(_event(Step=step.value)).step is step


def test_an_event_without_a_rotation_token_is_accepted() -> None:
    # Older events and manual invocations carry no RotationToken
    assert RotationRequest.parse(_event(RotationToken=None)).rotation_token is None


@pytest.mark.parametrize("step", ["deleteSecret", "CreateSecret", "", 1])
def test_an_unknown_step_is_refused_naming_it(step: object) -> None:
    with pytest.raises(RotationError, match=f"unknown rotation step {step!r}"):
        RotationRequest.parse(_event(Step=step))


def test_a_missing_step_is_refused() -> None:
    with pytest.raises(RotationError, match="unknown rotation step None"):
        RotationRequest.parse(_event(Step=None))


@pytest.mark.parametrize("secret_id", [None, "", 42])
def test_a_missing_or_empty_secret_id_is_refused(secret_id: object) -> None:
    event = _event(SecretId=None) if secret_id is None else _event(SecretId=secret_id)
    with pytest.raises(RotationError, match="event has no SecretId"):
        RotationRequest.parse(event)


@pytest.mark.parametrize("token", [None, "", "short", "x" * 31, "x" * 65, 12345678901234567890123456789012345])
def test_a_missing_or_malformed_token_is_refused(token: object) -> None:
    # ClientRequestToken is 32-64 characters (Secrets Manager API)
    event = _event(ClientRequestToken=None) if token is None else _event(ClientRequestToken=token)
    with pytest.raises(RotationError, match="event has no valid ClientRequestToken"):
        RotationRequest.parse(event)


@pytest.mark.parametrize("token", ["x" * 32, "x" * 64])
def test_a_token_of_32_or_64_characters_is_accepted(token: str) -> None:
    assert RotationRequest.parse(_event(ClientRequestToken=token)).token == token


@pytest.mark.parametrize("event", [[], "createSecret", 42, None, {"Step": "deleteSecret"}])
def test_the_handler_refuses_a_bad_event_with_its_own_metric(event: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from certrotor.handlers import rotate
    from certrotor.local.driver import LambdaContext

    # Given a handler whose metrics are recorded here (and no AWS to reach)
    names: list[str] = []
    monkeypatch.setattr(rotate.metrics, "add_metric", lambda name, **_: names.append(name))
    # When it is invoked with an event Secrets Manager never sends
    with pytest.raises(RotationError):
        rotate.lambda_handler(event, LambdaContext())
    # Then it counts a refused event, not a failed rotation
    assert names == ["RotationEventRefused"]


def test_disabled_metrics_are_cleared_after_each_invocation_and_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from certrotor.handlers import rotate
    from certrotor.local.driver import LambdaContext

    # Given metrics disabled (local mode, tests): Powertools neither flushes nor clears them
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    capsys.readouterr()
    # When the handler runs more invocations than the 100 values Powertools keeps before printing the set
    for _ in range(101):
        with pytest.raises(RotationError):
            rotate.lambda_handler({"Step": "deleteSecret"}, LambdaContext())
    # Then nothing piled up, and no metrics were printed among the process's output
    assert rotate.metrics.provider.metric_set == {}
    assert '"_aws"' not in capsys.readouterr().out

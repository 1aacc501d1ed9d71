"""The rotation event at the exact limits of Secrets Manager's parameters
(limit - 1, limit, limit + 1) and the exact line each refusal gives."""

from __future__ import annotations

from typing import Any

import pytest

from certrotor.errors import RotationError
from certrotor.services.rotation import RotationRequest

TOKEN = "3f1c9a52-5d4e-4b9a-9c41-6b0e8f2a7d10"
SECRET_NAME = "team/web"


def _event(**changes: Any) -> dict[str, object]:
    event: dict[str, object] = {"Step": "createSecret", "SecretId": SECRET_NAME, "ClientRequestToken": TOKEN}
    event.update(changes)
    return event


def _refusal(event: object) -> str:
    with pytest.raises(RotationError) as raised:
        RotationRequest.parse(event)
    return str(raised.value)


@pytest.mark.parametrize(("event", "kind"), [([], "list"), ("createSecret", "str"), (None, "NoneType")])
def test_an_event_that_is_not_an_object_is_refused_naming_its_type(event: object, kind: str) -> None:
    assert _refusal(event) == f"the rotation event is not an object but {kind}"


def test_an_unknown_step_is_named_in_at_most_sixty_characters() -> None:
    step = "x" * 100
    assert _refusal(_event(Step=step)) == "unknown rotation step '" + "x" * 59


@pytest.mark.parametrize("length", [1, 2, 2047, 2048])
def test_a_secret_id_of_1_to_2048_characters_is_accepted(length: int) -> None:
    assert RotationRequest.parse(_event(SecretId="s" * length)).secret_id == "s" * length


@pytest.mark.parametrize("secret_id", ["", "s" * 2049, "team/\nweb", 7])
def test_a_secret_id_outside_the_limits_is_refused(secret_id: object) -> None:
    assert _refusal(_event(SecretId=secret_id)) == "event has no SecretId of 1-2048 printable characters"


@pytest.mark.parametrize("token", ["t" * 31, "t" * 65, "t" * 31 + " ", None])
def test_a_client_request_token_outside_the_limits_is_refused(token: object) -> None:
    assert _refusal(_event(ClientRequestToken=token)) == "event has no valid ClientRequestToken"


@pytest.mark.parametrize("length", [1, 4095, 4096])
def test_a_rotation_token_of_up_to_4096_characters_is_kept(length: int) -> None:
    assert RotationRequest.parse(_event(RotationToken="r" * length)).rotation_token == "r" * length


@pytest.mark.parametrize("rotation_token", ["r" * 4097, 42, ["r"]])
def test_a_rotation_token_that_is_not_text_of_at_most_4096_characters_is_refused(rotation_token: object) -> None:
    assert _refusal(_event(RotationToken=rotation_token)) == "event's RotationToken is not text"


def test_an_empty_rotation_token_is_none() -> None:
    assert RotationRequest.parse(_event(RotationToken="")).rotation_token is None

"""SecretsManagerRotationTrigger against a recording client: the exact
requests, the token it returns, and a second rotation refused by name."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from certrotor.aws.rotation_trigger import RotationInProgressError, SecretsManagerRotationTrigger
from certrotor.errors import AwsError, NotFoundError, RotationError

SECRET = "tls/web"
TOKEN = "11111111-2222-3333-4444-555555555555"
RUNNING = "99999999-8888-7777-6666-555555555555"


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "refused"}}, operation)


class Client:
    """describe_secret answers the queued stage maps in turn (the last one
    repeats); rotate_secret answers `rotated` or raises `refusal`."""

    def __init__(self, *stages: dict[str, list[str]], rotated: dict[str, Any] | None = None) -> None:
        self.stages = list(stages) or [{"v1": ["AWSCURRENT"]}]
        self.rotated = rotated if rotated is not None else {"VersionId": TOKEN}
        self.refusal: ClientError | None = None
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def describe_secret(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("DescribeSecret", kwargs))
        stages = self.stages.pop(0) if len(self.stages) > 1 else self.stages[0]
        return {"Name": SECRET, "VersionIdsToStages": stages} if stages is not None else {"Name": SECRET}

    def rotate_secret(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("RotateSecret", kwargs))
        if self.refusal is not None:
            raise self.refusal
        return self.rotated


def trigger(client: Client) -> SecretsManagerRotationTrigger:
    return SecretsManagerRotationTrigger(client, new_token=lambda: TOKEN)


def test_in_progress_names_the_pending_version_that_is_not_current() -> None:
    assert trigger(Client({"v1": ["AWSCURRENT"], RUNNING: ["AWSPENDING"]})).in_progress(SECRET) == RUNNING
    # AWSPENDING left on the current version after a rotation is no rotation.
    assert trigger(Client({"v1": ["AWSCURRENT", "AWSPENDING"]})).in_progress(SECRET) is None
    client = Client({"v1": ["AWSCURRENT"]})
    assert trigger(client).in_progress(SECRET) is None
    assert client.calls == [("DescribeSecret", {"SecretId": SECRET})]


def test_in_progress_of_a_secret_listing_no_versions_is_none() -> None:
    client = Client()
    client.stages = [None]  # type: ignore[list-item]
    assert trigger(client).in_progress(SECRET) is None


def test_start_rotates_immediately_with_a_fresh_token_and_returns_the_new_version() -> None:
    client = Client(rotated={"VersionId": "returned-version"})
    assert trigger(client).start(SECRET) == "returned-version"
    assert client.calls == [
        ("DescribeSecret", {"SecretId": SECRET}),
        ("RotateSecret", {"SecretId": SECRET, "ClientRequestToken": TOKEN, "RotateImmediately": True}),
    ]


def test_start_returns_its_own_token_when_the_answer_names_no_version() -> None:
    assert trigger(Client(rotated={})).start(SECRET) == TOKEN
    assert trigger(Client(rotated={"VersionId": None})).start(SECRET) == TOKEN


def test_the_default_token_is_a_fresh_uuid_per_start() -> None:
    client = Client(rotated={})
    first, second = SecretsManagerRotationTrigger(client), SecretsManagerRotationTrigger(client)
    tokens = {first.start(SECRET), second.start(SECRET), first.start(SECRET)}
    assert len(tokens) == 3 and all(len(t) == 36 and t.count("-") == 4 for t in tokens)


def test_a_rotation_in_progress_is_refused_by_name_without_calling_rotatesecret() -> None:
    client = Client({"v1": ["AWSCURRENT"], RUNNING: ["AWSPENDING"]})
    with pytest.raises(RotationInProgressError) as refused:
        trigger(client).start(SECRET)
    assert refused.value.token == RUNNING
    assert str(refused.value) == f"a rotation of {SECRET} is already in progress (version {RUNNING})"
    assert isinstance(refused.value, RotationError)
    assert [c[0] for c in client.calls] == ["DescribeSecret"]


def test_a_race_lost_to_another_caller_names_the_winners_rotation() -> None:
    client = Client({"v1": ["AWSCURRENT"]}, {"v1": ["AWSCURRENT"], RUNNING: ["AWSPENDING"]})
    client.refusal = client_error("InvalidRequestException", "RotateSecret")
    with pytest.raises(RotationInProgressError) as refused:
        trigger(client).start(SECRET)
    assert refused.value.token == RUNNING
    assert str(refused.value) == f"a rotation of {SECRET} is already in progress (version {RUNNING})"
    assert refused.value.__cause__ is client.refusal
    assert client.calls == [
        ("DescribeSecret", {"SecretId": SECRET}),
        ("RotateSecret", {"SecretId": SECRET, "ClientRequestToken": TOKEN, "RotateImmediately": True}),
        ("DescribeSecret", {"SecretId": SECRET}),
    ]


def test_an_invalid_request_with_no_rotation_running_is_reported_as_it_is() -> None:
    client = Client({"v1": ["AWSCURRENT"]})
    client.refusal = client_error("InvalidRequestException", "RotateSecret")
    with pytest.raises(AwsError) as refused:
        trigger(client).start(SECRET)
    assert not isinstance(refused.value, RotationInProgressError)
    assert str(refused.value) == f"RotateSecret {SECRET}: InvalidRequestException"
    assert [c[0] for c in client.calls] == ["DescribeSecret", "RotateSecret", "DescribeSecret"]


def test_other_refusals_are_translated_without_looking_again() -> None:
    client = Client({"v1": ["AWSCURRENT"]}, {"v1": ["AWSCURRENT"], RUNNING: ["AWSPENDING"]})
    client.refusal = client_error("ResourceNotFoundException", "RotateSecret")
    with pytest.raises(NotFoundError, match=f"^RotateSecret {SECRET}: not found"):
        trigger(client).start(SECRET)
    assert [c[0] for c in client.calls] == ["DescribeSecret", "RotateSecret"]


def test_a_failed_describe_is_a_certrotor_error() -> None:
    class Failing(Client):
        def describe_secret(self, **kwargs: Any) -> dict[str, Any]:
            raise client_error("ResourceNotFoundException", "DescribeSecret")

    with pytest.raises(NotFoundError, match=f"^DescribeSecret {SECRET}: not found"):
        trigger(Failing()).in_progress(SECRET)

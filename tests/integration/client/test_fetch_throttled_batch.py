"""A throttled BatchGetSecretValue does not fail a container start: each part
is read by VersionId instead (GetSecretValue's quota is 100 times the batch's).
The throttle is injected at botocore's before-call hook of the reader's client."""

from __future__ import annotations

import collections
import json
from typing import Any

from certrotor.aws.secrets import SecretStore
from certrotor.client.fetch import secrets_client
from certrotor.client.trust import fetch_trusted
from certrotor.services.reader import SetReader

THROTTLED = {
    "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
    "ResponseMetadata": {"HTTPStatusCode": 400},
}


class _Http:
    status_code = 400
    headers: dict[str, str] = {}


class ThrottleBatches:
    """Answers every BatchGetSecretValue with ThrottlingException; counts calls."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.versions_read: list[str] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        self.calls[model.name] += 1
        body = json.loads(params["body"] or b"{}")
        if model.name == "GetSecretValue" and "VersionId" in body:
            self.versions_read.append(body["SecretId"])
        if model.name == "BatchGetSecretValue":
            return _Http(), THROTTLED
        return None


def test_a_throttled_batch_falls_back_to_each_part_by_version_and_the_start_succeeds(shared_set, emulator) -> None:
    # Given the container client's own Secrets Manager client, whose batches are throttled
    with emulator.activated():
        client = secrets_client(60)
    faults = ThrottleBatches()
    client.meta.events.register("before-call.secrets-manager", faults)
    reader = SetReader(SecretStore(client))

    # When the set is fetched and verified as certrotor-fetch does
    fetched = fetch_trusted(reader, shared_set.name)

    # Then it is the current set, read part by part at the manifest's version
    # after one throttled batch (no retry of the batch)
    assert fetched.verified.manifest.set_name == shared_set.name
    parts = [p.name for p in fetched.verified.manifest.parts]
    assert faults.calls["BatchGetSecretValue"] == 1
    assert sorted(faults.versions_read) == sorted(parts)
    assert reader.last.calls == faults.calls["GetSecretValue"] + 1

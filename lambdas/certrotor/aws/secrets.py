"""Secrets Manager adapter: versions, stages, batch reads, tags."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from certrotor.aws.clients import default_client
from certrotor.aws.codes import BATCH_LIMIT, get_params, read_current_many, secret_value
from certrotor.aws.errors import aws_call, error_code
from certrotor.errors import AwsError, IntegrityError, NotFoundError
from certrotor.ports import CURRENT, PENDING, SecretInfo, SecretValue

__all__ = ["BATCH_LIMIT", "CURRENT", "PENDING", "SecretInfo", "SecretStore", "SecretValue"]


class SecretStore:
    """Reads and writes secret versions; errors become certrotor errors."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or default_client("secretsmanager")

    def describe(self, secret_id: str) -> SecretInfo:
        with aws_call(f"DescribeSecret {secret_id}"):
            resp = self._client.describe_secret(SecretId=secret_id)
        return _secret_info(resp, resp.get("VersionIdsToStages", {}))

    def list_tagged(self, key: str, value: str) -> list[SecretInfo]:
        """Every secret tagged ``key`` = ``value`` (ListSecrets pages of 100)."""
        found: list[SecretInfo] = []
        kwargs: dict[str, Any] = {
            "Filters": [{"Key": "tag-key", "Values": [key]}, {"Key": "tag-value", "Values": [value]}],
            "MaxResults": 100,
        }
        while True:
            with aws_call(f"ListSecrets tagged {key}={value}"):
                resp = self._client.list_secrets(**kwargs)
            for item in resp.get("SecretList", []):
                info = _secret_info(item, item.get("SecretVersionsToStages", {}))
                # The filters match the key and the value on any tags; keep exact pairs.
                if info.tags.get(key) == value:
                    found.append(info)
            if not resp.get("NextToken"):
                return found
            kwargs["NextToken"] = resp["NextToken"]

    def get(self, secret_id: str, version: str | None = None, stage: str | None = None) -> SecretValue:
        """One secret value, by VersionId or by stage (AWSCURRENT if neither)."""
        with aws_call(f"GetSecretValue {secret_id}"):
            resp = self._client.get_secret_value(**get_params(secret_id, version, stage))
        return secret_value(resp)

    def find(self, secret_id: str, version: str) -> SecretValue | None:
        """The value at a VersionId, or None when that version has no value yet."""
        try:
            return self.get(secret_id, version=version)
        except NotFoundError:
            return None

    def get_current_many(self, secret_ids: Sequence[str]) -> dict[str, SecretValue]:
        """AWSCURRENT of many secrets in as few calls as BatchGetSecretValue allows."""

        def batch(chunk: list[str]) -> Any:
            with aws_call(f"BatchGetSecretValue {len(chunk)} secrets"):
                return self._client.batch_get_secret_value(SecretIdList=chunk)

        return read_current_many(secret_ids, batch)

    def put(
        self,
        secret_id: str,
        value: str,
        version: str,
        stages: Iterable[str] = (PENDING,),
        rotation_token: str | None = None,
    ) -> None:
        """Write a version once; writing the same value again is a no-op.

        Secrets Manager refuses a different value under an existing VersionId
        (ResourceExistsException); that means two writers disagree, which is an
        IntegrityError, never something to overwrite.
        """
        kwargs: dict[str, Any] = {
            "SecretId": secret_id,
            "ClientRequestToken": version,
            "SecretString": value,
            "VersionStages": list(stages),
        }
        if rotation_token is not None:
            kwargs["RotationToken"] = rotation_token
        try:
            with aws_call(f"PutSecretValue {secret_id}"):
                self._client.put_secret_value(**kwargs)
        except AwsError as exc:
            if isinstance(exc.__cause__, ClientError) and error_code(exc.__cause__) == "ResourceExistsException":
                raise IntegrityError(f"{secret_id} already holds a different value for version {version}") from None
            raise

    def move_stage(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage, "MoveToVersionId": to_version}
        if from_version is not None:
            kwargs["RemoveFromVersionId"] = from_version
        with aws_call(f"UpdateSecretVersionStage {secret_id} {stage}"):
            self._client.update_secret_version_stage(**kwargs)

    def remove_stage(self, secret_id: str, stage: str, from_version: str) -> None:
        with aws_call(f"UpdateSecretVersionStage {secret_id} remove {stage}"):
            self._client.update_secret_version_stage(
                SecretId=secret_id, VersionStage=stage, RemoveFromVersionId=from_version
            )

    def tag(self, secret_id: str, key: str, value: str) -> None:
        with aws_call(f"TagResource {secret_id}"):
            self._client.tag_resource(SecretId=secret_id, Tags=[{"Key": key, "Value": value}])


def _secret_info(resp: dict[str, Any], versions: dict[str, Any]) -> SecretInfo:
    """DescribeSecret or a ListSecrets entry, reduced."""
    return SecretInfo(
        arn=resp["ARN"],
        name=resp["Name"],
        rotation_enabled=bool(resp.get("RotationEnabled")),
        versions={v: tuple(s) for v, s in versions.items()},
        tags={t["Key"]: t["Value"] for t in resp.get("Tags", [])},
        description=str(resp.get("Description", "")),
    )

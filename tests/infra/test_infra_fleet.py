"""Fleet contract in the template: every manifest secret is tagged with the
rotator's id (what `certrotor status` and `rekey` list sets by); part secrets
are not (they are no set of their own)."""

from __future__ import annotations

from typing import Any

from certrotor.fleet import ROTATOR_TAG


def _tags(resource: dict[str, Any]) -> dict[str, Any]:
    return {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}


def test_each_manifest_secret_carries_the_rotator_tag_and_no_part_secret_does(main: Any) -> None:
    secrets = main.resources_of_type("AWS::SecretsManager::Secret")
    tagged = sorted(r["Properties"]["Name"] for r in secrets.values() if ROTATOR_TAG in _tags(r))
    assert tagged == sorted(s.name for s in main.config.sets)
    assert {_tags(r)[ROTATOR_TAG] for r in secrets.values() if ROTATOR_TAG in _tags(r)} == {"certrotor"}

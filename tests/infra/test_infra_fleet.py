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


def _state_machine(synth: Any) -> tuple[str, dict[str, Any]]:
    machines = synth.resources_of_type("AWS::StepFunctions::StateMachine")
    assert len(machines) == 1
    return next(iter(machines.items()))


def _definition(synth: Any) -> dict[str, Any]:
    import json

    _, machine = _state_machine(synth)
    body = machine["Properties"]["DefinitionString"]
    return dict(json.loads(body if isinstance(body, str) else "".join(body["Fn::Join"][1])))


def test_the_rekey_state_machine_runs_the_shared_definition_with_logs_and_tracing(main: Any) -> None:
    from certrotor.fleet.state_machine import definition

    _, machine = _state_machine(main)
    assert _definition(main) == definition()
    assert machine["Properties"]["StateMachineName"] == "certrotor-rekey"
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"


def test_the_rekey_maps_are_distributed_and_paced_from_the_input(main: Any) -> None:
    states = _definition(main)["States"]
    maps = {name: state for name, state in states.items() if state["Type"] == "Map"}
    assert set(maps) == {"RekeyPage", "RekeyChunk"}
    for state in maps.values():
        assert state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        assert state["MaxConcurrencyPath"] == "$$.Execution.Input.concurrency"
        child = state["ItemProcessor"]["States"]
        assert child["Rotate"]["Resource"] == "arn:aws:states:::aws-sdk:secretsmanager:rotateSecret"
        assert child["Delay"]["Parameters"] == {"seconds.$": "States.MathRandom(1, $.wait_max)"}
        assert child["Pace"] == {"Type": "Wait", "SecondsPath": "$.delay.seconds", "Next": "Rotate"}


def test_the_rekey_role_rotates_only_the_rotators_manifest_secrets(main: Any) -> None:
    role_id = next(
        logical
        for logical, resource in main.resources_of_type("AWS::IAM::Role").items()
        if "states.amazonaws.com" in str(resource["Properties"]["AssumeRolePolicyDocument"])
    )
    statements = [
        statement
        for resource in main.resources_of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_action: dict[str, list[Any]] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            by_action.setdefault(action, []).extend(resources)
    # Manifests by the rotator's tag: the statement names no set.
    (rotate,) = [s for s in statements if "secretsmanager:RotateSecret" in s["Action"]]
    assert rotate["Condition"] == {"StringEquals": {"aws:ResourceTag/certrotor:rotator": "certrotor"}}
    assert sorted(rotate["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:RotateSecret"]
    assert rotate["Resource"]["Fn::Join"][1][-1] == ":secret:*"
    assert by_action["secretsmanager:ListSecrets"] == ["*"]
    assert not any(
        a in by_action for a in ("secretsmanager:GetSecretValue", "kms:Decrypt", "secretsmanager:PutSecretValue")
    )
    assert len(by_action["states:StartExecution"]) == 1

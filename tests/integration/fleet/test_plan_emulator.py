"""What local provisioning deploys and `certrotor plan` compares, on the
emulator over HTTP: spread schedules, and specs read back from manifests."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from certrotor.cli import main
from certrotor.config import CertrotorConfig, load_config
from certrotor.fleet.spread import deployed_schedule
from certrotor.local.ca import LocalCA
from certrotor.local.emulator import Emulator
from certrotor.local.provision import DEFAULT_CONFIG, provision


def fleet_config(count: int, **overrides: Any) -> dict[str, Any]:
    """A rotator of its own (unique id) with `count` sets."""
    data = copy.deepcopy(DEFAULT_CONFIG)
    prefix = uuid.uuid4().hex[:8]
    data["service_name"] = f"r{prefix}"
    data["sets"] = [{**data["sets"][0], "name": f"p{prefix}/s{i}", "services": [], **overrides} for i in range(count)]
    return data


def test_local_provisioning_enables_each_sets_spread_schedule(emulator: Emulator, root_ca: LocalCA) -> None:
    # Two sets whose names hash to different windows (two random names share
    # one of the 168 windows of rate(30 days) about once in 168 draws).
    data = fleet_config(8)
    candidates = load_config(data)
    first = candidates.sets[0]
    second = next(
        s
        for s in candidates.sets[1:]
        if deployed_schedule(s, candidates.expiry_alarm_days) != deployed_schedule(first, candidates.expiry_alarm_days)
    )
    data["sets"] = [entry for entry in data["sets"] if entry["name"] in (first.name, second.name)]
    config: CertrotorConfig = load_config(data)

    env = provision(emulator, config, root_ca)

    secrets = env.emulator.client("secretsmanager")
    shown = []
    for cert_set in config.sets:
        rules = secrets.describe_secret(SecretId=cert_set.name)["RotationRules"]
        deployed = deployed_schedule(cert_set, config.expiry_alarm_days)
        assert rules == {"ScheduleExpression": deployed.expression, "Duration": deployed.window}
        assert rules["ScheduleExpression"].startswith("cron(0 ")
        shown.append(rules["ScheduleExpression"])
    assert shown[0] != shown[1]


def test_plan_reads_each_deployed_spec_and_reports_created_changed_and_removed(
    emulator: Emulator, root_ca: LocalCA, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three sets deployed (provisioned) for a rotator of their own
    deployed = fleet_config(3)
    env = provision(emulator, load_config(deployed), root_ca)
    names = [s["name"] for s in deployed["sets"]]
    # When the config keeps s0, widens s1's names, drops s2 and adds s3
    proposed = copy.deepcopy(deployed)
    proposed["ca"] = {"arn": env.ca_arn}
    proposed["sets"][1]["dns_names"] = ["localhost", "web.svc.internal"]
    proposed["sets"][2] = {**proposed["sets"][0], "name": names[0].replace("/s0", "/s3")}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(proposed))

    for variable, value in env.emulator.env().items():
        monkeypatch.setenv(variable, value)
    code = main(["plan", "--config", str(path), "--rotator", env.config.rotator_id, "--json"])

    # Then each deployed spec was read back and compared field by field
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kept"] == [names[0]]
    assert report["created"] == [names[0].replace("/s0", "/s3")]
    assert report["removed"] == [names[2]]
    [change] = report["changed"]
    assert change["name"] == names[1]
    assert change["fields"] == {"dns_names": [["localhost"], ["localhost", "web.svc.internal"]]}
    assert change["new_certificate"] == ["dns_names"]
    assert change["schedule"] is None and change["rotates_on_deploy"] is False
    assert report["rotations_on_deploy"] == 1
    assert report["rotations_to_apply"] == 1
    assert report["unreadable"] == []


def test_plan_lists_a_manifest_whose_spec_is_unreadable(
    emulator: Emulator, root_ca: LocalCA, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed = fleet_config(1)
    env = provision(emulator, load_config(deployed), root_ca)
    name = deployed["sets"][0]["name"]
    secrets = env.emulator.client("secretsmanager")
    secrets.update_secret(SecretId=name, Description="certrotor-spec/1 {not json")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(deployed))

    for variable, value in env.emulator.env().items():
        monkeypatch.setenv(variable, value)
    code = main(["plan", "--config", str(path), "--rotator", env.config.rotator_id])

    assert code == 0
    out = capsys.readouterr().out
    assert f"? {name}: the spec in the manifest's description is not JSON" in out
    assert "0 created, 0 changed, 0 removed" in out

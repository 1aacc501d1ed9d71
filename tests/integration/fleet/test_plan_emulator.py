"""What local provisioning deploys and `certrotor plan` compares, on the
emulator over HTTP: spread schedules, and specs read back from manifests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

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
    config: CertrotorConfig = load_config(fleet_config(2))

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

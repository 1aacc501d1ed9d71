"""The re-key state machine in local mode: the same definition as on AWS,
run by moto's Step Functions interpreter against the emulator.

RotateSecret (the state machine's task) stages AWSPENDING and has the
rotation function's four steps run through the real handler in the
background, as AWS invokes the function (``Emulator.on_rotate_secret``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from certrotor.fleet.state_machine import definition_json
from certrotor.local.driver import RotationDriver, RotationFailed
from certrotor.local.emulator import ACCOUNT
from certrotor.local.provision import LocalEnvironment

STATE_MACHINE_NAME = "certrotor-rekey"
_log = logging.getLogger("certrotor.local.rekey")


class BackgroundRotations:
    """What AWS does after RotateSecret: run the rotation function's steps."""

    def __init__(self, environment: LocalEnvironment, driver: RotationDriver | None = None) -> None:
        self._environment = environment
        self._driver = driver or RotationDriver(environment, extra_env=None)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.finished: list[str] = []
        self.failures: dict[str, str] = {}

    def __call__(self, name: str, token: str) -> None:
        thread = threading.Thread(target=self._rotate, args=(name, token), name=f"rotate-{token[:8]}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _rotate(self, name: str, token: str) -> None:
        try:
            self._driver.rotate(name, token)
        except RotationFailed as exc:
            with self._lock:
                self.failures[name] = str(exc)
            _log.warning("local rotation failed: %s", exc)
            return
        self._environment.emulator.rotated(name)
        with self._lock:
            self.finished.append(name)

    def wait(self, timeout: float | None = None) -> None:
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)


def deploy_state_machine(environment: LocalEnvironment, rotations: BackgroundRotations | None = None) -> str:
    """Create the re-key state machine in the emulator and have RotateSecret
    rotate through the real handler; returns the state machine's ARN."""
    emulator = environment.emulator
    emulator.enable_step_functions()
    emulator.on_rotate_secret(rotations or BackgroundRotations(environment))
    sfn: Any = emulator.client("stepfunctions")
    role = f"arn:aws:iam::{ACCOUNT}:role/certrotor-rekey"
    existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    if STATE_MACHINE_NAME in existing:
        sfn.update_state_machine(stateMachineArn=existing[STATE_MACHINE_NAME], definition=definition_json())
        return str(existing[STATE_MACHINE_NAME])
    return str(
        sfn.create_state_machine(name=STATE_MACHINE_NAME, definition=definition_json(), roleArn=role)["stateMachineArn"]
    )

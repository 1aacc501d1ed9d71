"""Issue-now in local mode: what RotateSecret does, done by the driver.

moto cannot invoke the rotation Lambda that RotateSecret names, so this
trigger stages AWSPENDING on a new token (synchronously, as RotateSecret
does before it returns) and runs the four steps through the real rotation
handler (certrotor.local.driver.RotationDriver) in a background thread:
asynchronous like AWS, and the same rotation path.
"""

from __future__ import annotations

import logging
import threading
import uuid

from certrotor.aws.rotation_trigger import RotationInProgressError
from certrotor.local.driver import RotationDriver, RotationFailed
from certrotor.local.provision import LocalEnvironment

_log = logging.getLogger("certrotor.local.trigger")


class LocalRotationTrigger:
    """Starts rotations of a local environment's sets in the background."""

    def __init__(self, environment: LocalEnvironment, driver: RotationDriver | None = None) -> None:
        self._driver = driver or RotationDriver(environment)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.started: list[str] = []
        self.failures: dict[str, str] = {}

    def start(self, secret_id: str) -> str:
        """Stage a new rotation and run it; refuse while one is in progress."""
        with self._lock:
            running = self._driver.pending_token(secret_id)
            if running is not None:
                raise RotationInProgressError(secret_id, running)
            token = str(uuid.uuid4())
            self._driver.start(secret_id, token)
            self.started.append(token)
        thread = threading.Thread(target=self._rotate, args=(secret_id, token), name=f"rotate-{token[:8]}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return token

    def _rotate(self, secret_id: str, token: str) -> None:
        try:
            self._driver.rotate(secret_id, token)
        except RotationFailed as exc:
            # As in AWS: the pending version stays for the next attempt and
            # the failure is reported, not raised into a caller that is gone.
            self.failures[token] = str(exc)
            _log.warning("local rotation failed: %s", exc)

    def wait(self, timeout: float | None = None) -> None:
        """Join every rotation started so far (tests, demo, shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

"""Delivery by reload: how long after finishSecret a running server serves
the new certificate, and whether any open connection is dropped on the way.

    .venv/bin/python bench/reload.py [--rotations 10] [--interval 1s] [--clients 4]

On the embedded emulator, one set with `delivery: reload`:
- `certrotor-fetch --watch --interval 1s --reload-signal HUP` supervises the
  demo TLS server (real processes; the default interval, 5 minutes, is
  shortened so the bench runs in seconds: the time measured is then about
  half the interval, the average wait for the next check, plus the fetch,
  verification, swap and reload).
- `--clients` TLS clients each keep one connection open (HTTP/1.1 keep-alive)
  and send a request every 50 ms for the whole run; every request that fails
  on an established connection counts as a dropped connection (the client
  then connects again).
- Each rotation runs the four steps through the real rotation handler; T
  starts when finishSecret returns and ends when a new TLS connection is
  served the new serial (probed every 10 ms).

The last line is `reload: new serial served T ms after finishSecret (median,
n=N), D dropped connections`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from certrotor.config import load_config
from certrotor.local.demo import DemoFailed, KeptConnection, WatchedServer, connect, demo_config, pid_in
from certrotor.local.driver import RotationDriver
from certrotor.local.emulator import Emulator
from certrotor.local.provision import provision

SET_NAME = "demo/live"


class Clients:
    """Connections kept open across the rotations, each sending requests."""

    def __init__(self, port: int, root_pem: str, count: int) -> None:
        self._port = port
        self._root_pem = root_pem
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.requests = 0
        self.dropped = 0
        self.reconnect_failures = 0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        held = self._open()
        while not self._stop.is_set():
            if held is None:
                held = self._open()
                time.sleep(0.05)
                continue
            try:
                held.get()
                with self._lock:
                    self.requests += 1
            except (OSError, ConnectionError, ValueError, IndexError):
                with self._lock:
                    self.dropped += 1
                held.close()
                held = self._open()
            time.sleep(0.05)
        if held is not None:
            held.close()

    def _open(self) -> KeptConnection | None:
        try:
            return KeptConnection(self._port, self._root_pem, "localhost")
        except OSError:
            with self._lock:
                self.reconnect_failures += 1
            return None

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def current_serial(emulator: Emulator) -> str:
    value = emulator.client("secretsmanager").get_secret_value(SecretId=SET_NAME)["SecretString"]
    return str(json.loads(value)["serial"])


def served_serial(port: int, root_pem: str) -> str | None:
    try:
        return connect(port, root_pem, "localhost").serial
    except OSError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rotations", type=int, default=10)
    parser.add_argument("--interval", default="1s", help="certrotor-fetch --interval for the bench (default 1s)")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="certrotor-bench-reload-") as tmp:
        env = provision(emulator, load_config(demo_config()))
        driver = RotationDriver(env)
        driver.rotate(SET_NAME)
        root_file = Path(tmp) / "root.pem"
        root_file.write_text(env.root.pem)
        server = WatchedServer(env, SET_NAME, Path(tmp) / "live", root_file, interval=args.interval)
        try:
            port = int(server.expect("listening on").rsplit(":", 1)[1])
            first = connect(port, env.root.pem, "localhost")
            print(
                f"certrotor-fetch --watch --interval {args.interval} (default 5m, shortened for the bench) "
                f"--reload-signal HUP; server pid {pid_in(first.body)}; {args.clients} clients on kept connections"
            )
            clients = Clients(port, env.root.pem, args.clients)
            samples: list[float] = []
            for number in range(1, args.rotations + 1):
                driver.rotate(SET_NAME)
                finished = time.perf_counter()
                wanted = current_serial(emulator)
                while served_serial(port, env.root.pem) != wanted:
                    if time.perf_counter() - finished > 60:
                        raise DemoFailed(f"rotation {number}: serial {wanted} not served after 60 s")
                    time.sleep(0.01)
                samples.append((time.perf_counter() - finished) * 1000)
                print(f"rotation {number}: serial {wanted} served {samples[-1]:.0f} ms after finishSecret")
            time.sleep(0.5)
            clients.stop()
            last = connect(port, env.root.pem, "localhost")
            same = pid_in(last.body) == pid_in(first.body)
            print(
                f"{clients.requests} requests on kept connections, {clients.dropped} dropped, "
                f"{clients.reconnect_failures} failed new connections; "
                f"same server pid {pid_in(first.body)} throughout: {'yes' if same else 'NO'}; "
                f"min {min(samples):.0f} ms, max {max(samples):.0f} ms"
            )
        finally:
            server.stop()
    median = statistics.median(samples)
    print(
        f"reload: new serial served {median:.0f} ms after finishSecret (median, n={len(samples)}), "
        f"{clients.dropped} dropped connections"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The shipped systemd units (docs/examples/systemd), run by a fake systemd
that follows their [Service] semantics: RuntimeDirectory, Environment,
ExecStart as the main process, ExecReload with $MAINPID, KillMode=mixed,
SuccessExitStatus and Restart=on-failure. Against the emulator, with the demo
TLS server in nginx's place."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from certrotor.local.demo import connect, pid_in
from certrotor.local.driver import RotationDriver

UNITS = Path(__file__).resolve().parents[3] / "docs" / "examples" / "systemd"
FETCH = str(Path(sys.executable).with_name("certrotor-fetch"))


class FakeSystemd:
    """One service unit, run as systemd runs it, for the directives these units use."""

    def __init__(
        self,
        unit: Path,
        run_root: Path,
        substitutions: Mapping[str, str],
        inherited: Mapping[str, str],
        restart_seconds: float = 0.2,
    ) -> None:
        parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(unit.read_text())
        self.service = dict(parser["Service"])
        self.run_root = run_root
        self.substitutions = dict(substitutions)
        self.inherited = dict(inherited)
        self.restart_seconds = restart_seconds
        self.main: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.log: list[str] = []
        self.results: list[int] = []
        self.state = "inactive"
        self._stopping = False
        self._monitor: threading.Thread | None = None

    def _expand(self, text: str) -> str:
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text.replace("/run/", f"{self.run_root}/")

    @property
    def runtime_directory(self) -> Path:
        return self.run_root / self.service["RuntimeDirectory"]

    def _environment(self) -> dict[str, str]:
        env = dict(self.inherited)
        for assignment in shlex.split(self.service.get("Environment", "")):
            name, _, value = assignment.partition("=")
            env[name] = self._expand(value)
        return env

    def start(self) -> None:
        directory = self.runtime_directory
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, int(self.service.get("RuntimeDirectoryMode", "0755"), 8))
        command = shlex.split(self._expand(self.service["ExecStart"]))
        self.main = subprocess.Popen(
            command, env=self._environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.state = "active"
        assert self.main.stdout is not None and self.main.stderr is not None
        threading.Thread(target=self._collect, args=(self.main.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._collect, args=(self.main.stderr, self.log), daemon=True).start()
        self._monitor = threading.Thread(target=self._watch_main, args=(self.main,), daemon=True)
        self._monitor.start()

    @staticmethod
    def _collect(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.strip())

    def _success(self, status: int) -> bool:
        allowed = {0, *(int(s) for s in self.service.get("SuccessExitStatus", "").split())}
        return status in allowed

    def _watch_main(self, process: subprocess.Popen[str]) -> None:
        code = process.wait()
        status = 128 - code if code < 0 else code
        self.results.append(status)
        if not self._preserve(restart=not self._stopping):
            shutil.rmtree(self.runtime_directory, ignore_errors=True)
        if self._stopping:
            self.state = "inactive" if self._success(status) else "failed"
            return
        if self._success(status) or self.service.get("Restart") != "on-failure":
            self.state = "inactive" if self._success(status) else "failed"
            return
        self.state = "activating (auto-restart)"
        time.sleep(self.restart_seconds)
        self.start()

    def _preserve(self, restart: bool) -> bool:
        preserve = self.service.get("RuntimeDirectoryPreserve", "no")
        return preserve == "yes" or (preserve == "restart" and restart)

    def reload(self) -> int:
        assert self.main is not None
        command = self._expand(self.service["ExecReload"]).replace("$MAINPID", str(self.main.pid))
        return subprocess.run(shlex.split(command), env=self._environment(), check=False, timeout=10).returncode

    def stop(self, timeout: float = 10.0) -> None:
        assert self.main is not None and self.service.get("KillMode") in ("mixed", None)
        self._stopping = True
        self.main.send_signal(signal.SIGTERM)
        try:
            self.main.wait(timeout)
        except subprocess.TimeoutExpired:
            self.main.kill()
        assert self._monitor is not None
        self._monitor.join(5)


def wait_for(condition, timeout: float = 30.0, what: str = "condition") -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def listening_ports(unit: FakeSystemd) -> list[int]:
    return [int(line.rsplit(":", 1)[1]) for line in unit.lines if line.startswith("listening on")]


def substitutions(rotated, tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "root.pem"
    root.write_text(rotated.env.root.pem)
    return {
        "/usr/local/bin/certrotor-fetch": FETCH,
        "/etc/certrotor/root.pem": str(root),
        "--set tls/orders": f"--set {rotated.name} --interval 1s",
        "eu-west-1": rotated.env.emulator.region,
    }


def test_the_nginx_unit_starts_reloads_restarts_and_stops_as_systemd_runs_it(rotated, tmp_path):
    # Given the shipped unit, with the demo server in nginx's place
    subs = substitutions(rotated, tmp_path)
    subs['/usr/sbin/nginx -g "daemon off;"'] = (
        f"{sys.executable} -m certrotor.local.tls_server --dir /run/certrotor-nginx/tls"
    )
    unit = FakeSystemd(
        UNITS / "certrotor-nginx.service", tmp_path / "run", subs, {**os.environ, **rotated.env.emulator.env()}
    )
    # When systemd starts it
    unit.start()
    wait_for(lambda: listening_ports(unit), what="the server")
    port = listening_ports(unit)[0]
    first = connect(port, rotated.env.root.pem, "localhost")
    files = unit.runtime_directory / "tls"
    assert os.stat(unit.runtime_directory).st_mode & 0o777 == 0o700
    assert os.readlink(files / "key.pem") == "current/key.pem"
    # Then a rotation reaches the running server: same PID, new serial
    RotationDriver(rotated.env).rotate(rotated.name)
    wait_for(lambda: any(line.startswith("reloaded serial") for line in unit.lines), what="the reload")
    second = connect(port, rotated.env.root.pem, "localhost")
    assert pid_in(second.body) == pid_in(first.body)
    assert second.serial != first.serial
    # `systemctl reload` (ExecReload: kill -HUP $MAINPID) reaches the server through the supervisor
    assert unit.reload() == 0
    wait_for(lambda: unit.lines.count(f"reloaded serial {second.serial}") == 2, what="the forwarded reload")
    # A server that dies is restarted (Restart=on-failure: the supervisor exited 128 + 9)
    os.kill(pid_in(second.body), signal.SIGKILL)
    wait_for(lambda: len(listening_ports(unit)) == 2, what="the restart")
    assert unit.results == [137]
    third = connect(listening_ports(unit)[1], rotated.env.root.pem, "localhost")
    assert third.serial == second.serial
    assert pid_in(third.body) != pid_in(second.body)
    # `systemctl stop`: SIGTERM to the main process, forwarded, 143 is a success, the directory goes
    unit.stop()
    assert unit.results == [137, 143]
    assert unit.state == "inactive"
    assert not unit.runtime_directory.exists()


def test_the_sidecar_unit_runs_the_reload_command_once_per_rotation(rotated, tmp_path):
    # Given the shipped sidecar unit, its reload command recording each call
    marker = tmp_path / "reloads"
    subs = substitutions(rotated, tmp_path)
    subs["/bin/systemctl reload orders.service"] = f"{sys.executable} -c \\\"open('{marker}', 'a').write('r\\\\n')\\\""
    unit = FakeSystemd(
        UNITS / "certrotor-sidecar.service", tmp_path / "run", subs, {**os.environ, **rotated.env.emulator.env()}
    )
    unit.start()
    files = unit.runtime_directory / "tls"
    wait_for(lambda: (files / "current").exists(), what="the first delivery")
    before = os.readlink(files / "current")
    # When the set rotates
    RotationDriver(rotated.env).rotate(rotated.name)
    wait_for(marker.exists, what="the reload command")
    time.sleep(2.5)
    # Then the files were swapped and the server's unit reloaded once
    assert marker.read_text() == "r\n"
    assert os.readlink(files / "current") != before
    # and `systemctl reload` of the sidecar (HUP) checks at once, changing nothing
    assert unit.reload() == 0
    unit.stop()
    assert unit.results == [0]
    assert unit.state == "inactive"

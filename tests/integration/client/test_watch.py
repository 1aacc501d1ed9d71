"""certrotor-fetch --watch / --sidecar against the emulator, as real processes:
the supervisor, the demo TLS server as its child, rotations by the real
rotation function. Every test ends by checking the served files are one
complete, matching set."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509

from certrotor.local.demo import KeptConnection, connect
from certrotor.local.driver import RotationDriver
from certrotor.pki.bundle import check_key_matches, parse_bundle
from certrotor.pki.keys import key_from_pem

FETCH = str(Path(sys.executable).with_name("certrotor-fetch"))
SERVER = [sys.executable, "-m", "certrotor.local.tls_server"]


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def served_pair(directory: Path) -> tuple[str, bool]:
    """(serial, key matches) of the pair the stable names lead to, read as a
    careful reader does: `current/` opened once, both files relative to it."""
    fd = os.open(directory / "current", os.O_RDONLY | os.O_DIRECTORY)
    try:
        cert = _read_at(fd, "fullchain.pem")
        key = _read_at(fd, "key.pem")
    finally:
        os.close(fd)
    bundle = parse_bundle(cert)
    try:
        check_key_matches(bundle, key_from_pem(key))
        matches = True
    except Exception:
        matches = False
    return format(bundle.leaf.serial_number, "x"), matches


def _read_at(fd: int, name: str) -> str:
    file = os.open(name, os.O_RDONLY, dir_fd=fd)
    with os.fdopen(file) as handle:
        return handle.read()


def assert_consistent(directory: Path) -> str:
    """The stable names point through `current` at one complete set; its serial."""
    for name in ("cert.pem", "chain.pem", "fullchain.pem", "key.pem"):
        assert os.readlink(directory / name) == f"current/{name}"
    serial, matches = served_pair(directory)
    assert matches, "key.pem does not match the certificate"
    leaf = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
    assert format(leaf.serial_number, "x") == serial
    return serial


@dataclass
class Watching:
    """A running certrotor-fetch --watch/--sidecar and what it printed."""

    process: subprocess.Popen[str]
    directory: Path
    stderr_path: Path
    lines: list[str] = field(default_factory=list)
    port: int | None = None

    @property
    def log(self) -> str:
        return self.stderr_path.read_text()

    def log_count(self, text: str) -> int:
        return self.log.count(text)

    def read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def child_pid(self) -> int:
        for line in self.log.splitlines():
            if "started " in line and "(pid " in line:
                return int(line.rsplit("(pid ", 1)[1].rstrip(")"))
        raise AssertionError(f"no child started: {self.log}")


class Network:
    """A TCP proxy between certrotor-fetch and the emulator that can be cut."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.up = True
        # Requests holding these bytes (an X-Amz-Target) are cut before they reach AWS.
        self.drop: bytes | None = None
        self.dropped = 0
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target))
            except OSError:
                client.close()
                continue
            self._open += [client, upstream]
            for a, b, outbound in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, outbound), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        try:
            while data := source.recv(65536):
                if outbound and self.drop is not None and self.drop in data:
                    self.dropped += 1
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self.up = False
        for s in self._open:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self._open.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


@pytest.fixture
def watch(rotated, tmp_path) -> Iterator[Callable[..., Watching]]:
    started: list[Watching] = []

    def start(*options: str, command: list[str] | None = None, endpoint: str | None = None) -> Watching:
        directory = tmp_path / "tls"
        root = tmp_path / "root.pem"
        root.write_text(rotated.env.root.pem)
        env = rotated.env_vars()
        if endpoint is not None:
            env["AWS_ENDPOINT_URL"] = endpoint
        args = [FETCH, "--set", rotated.name, "--dir", str(directory), "--ca-file", str(root), *options]
        if command is not None:
            args += ["--", *command]
        stderr_path = tmp_path / f"fetch-{len(started)}.log"
        with stderr_path.open("w") as stderr:
            process = subprocess.Popen(
                args, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
            )
        watching = Watching(process, directory, stderr_path)
        threading.Thread(target=watching.read_stdout, daemon=True).start()
        started.append(watching)
        if command is not None and command[:3] == SERVER:
            wait_for(lambda: any(x.startswith("listening on") for x in watching.lines), what="the server")
            listening = next(x for x in watching.lines if x.startswith("listening on"))
            watching.port = int(listening.rsplit(":", 1)[1])
        else:
            wait_for(lambda: "serving version" in watching.log, what="the first delivery")
        return watching

    yield start
    for watching in started:
        _stop_with_its_children(watching.process)


def _stop_with_its_children(process: subprocess.Popen[str]) -> None:
    """SIGTERM (forwarded to the command), then SIGKILL to the whole session, so no server outlives its test."""
    if process.poll() is None:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(5)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def server(directory: Path) -> list[str]:
    return [*SERVER, "--dir", str(directory)]


def rotate(rotated) -> str:
    return RotationDriver(rotated.env).rotate(rotated.name).token


def current_serial(rotated) -> str:
    manifest = json.loads(rotated.current(rotated.name)["SecretString"])
    return str(manifest["serial"])


def test_a_rotation_reaches_the_running_server_without_a_restart(rotated, watch, tmp_path):
    # Given a server started by certrotor-fetch --watch, and a client connected to it
    running = watch("--watch", "--interval", "1s", "--reload-signal", "HUP", command=server(tmp_path / "tls"))
    before = connect(running.port, rotated.env.root.pem, "localhost")
    held = KeptConnection(running.port, rotated.env.root.pem, "localhost")
    assert held.get() == before.body
    # When the set rotates
    token = rotate(rotated)
    wait_for(lambda: "reloaded serial" in " ".join(running.lines), what="the reload")
    # Then the same server process serves the new serial
    after = connect(running.port, rotated.env.root.pem, "localhost")
    assert after.serial == current_serial(rotated) != before.serial
    assert after.body.split("(pid ")[1].split(")")[0] == before.body.split("(pid ")[1].split(")")[0]
    # and the client connected before the rotation is still served on its connection
    assert held.get().endswith(after.serial)
    held.close()
    # and, several intervals later, it was reloaded once for the one new version
    time.sleep(3)
    assert running.lines.count(f"reloaded serial {after.serial}") == 1
    assert running.log_count("sent SIGHUP") == 1
    assert running.log_count(f"now serving version {token}") == 1
    assert running.process.poll() is None
    assert assert_consistent(running.directory) == after.serial


def test_killing_the_child_ends_the_supervisor_with_its_status(rotated, watch, tmp_path):
    # Given a supervised server
    running = watch("--watch", "--interval", "1s", command=server(tmp_path / "tls"))
    serial = assert_consistent(running.directory)
    # When the server is killed
    os.kill(running.child_pid(), signal.SIGKILL)
    # Then the supervisor exits with 128 + 9, as a shell reports it, and the files stay whole
    assert running.process.wait(10) == 128 + signal.SIGKILL
    assert "the command exited with status 137" in running.log
    assert assert_consistent(running.directory) == serial


def test_the_childs_own_exit_code_is_the_supervisors(rotated, watch, tmp_path):
    # Given a command that exits 7 by itself
    running = watch("--watch", command=[sys.executable, "-c", "import time, sys; time.sleep(0.5); sys.exit(7)"])
    # Then the supervisor exits 7
    assert running.process.wait(10) == 7


def test_signals_to_the_supervisor_reach_the_child(rotated, watch, tmp_path):
    # Given a supervised server
    running = watch("--watch", "--interval", "1s", command=server(tmp_path / "tls"))
    serial = assert_consistent(running.directory)
    # When the supervisor gets SIGHUP, the server reloads (and keeps running)
    running.process.send_signal(signal.SIGHUP)
    wait_for(lambda: f"reloaded serial {serial}" in running.lines, what="the forwarded SIGHUP")
    assert running.process.poll() is None
    # When it gets SIGTERM, the server gets it and the supervisor exits with the server's status
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(10) == 128 + signal.SIGTERM
    assert "the command exited with status 143" in running.log
    assert assert_consistent(running.directory) == serial


def test_the_supervisor_reaps_orphans(rotated, watch, tmp_path):
    # Given a command whose grandchild outlives its parent: the orphan is
    # re-parented to the supervisor (PID 1 in a container; a child subreaper
    # elsewhere), and ends while the command runs on
    script = (
        "import os, subprocess, sys, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(0.3)'])\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "time.sleep(30)\n"
    )
    running = watch("--watch", "--verbose", command=[sys.executable, "-c", script])
    supervisor = running.process.pid
    time.sleep(1.5)
    # Then the orphan was the supervisor's, and it left no zombie
    assert "reaped" in running.log
    assert _zombies_of(supervisor) == []
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(10) == 128 + signal.SIGTERM


def _zombies_of(pid: int) -> list[int]:
    zombies = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" and int(fields[1]) == pid:
            zombies.append(int(entry.name))
    return zombies


def test_two_quick_rotations_end_on_the_last_set_consistently(rotated, watch, tmp_path):
    # Given a supervised server, and a reader checking the served pair all along
    running = watch("--watch", "--interval", "1s", "--reload-signal", "HUP", command=server(tmp_path / "tls"))
    mismatches: list[str] = []
    stop = threading.Event()

    def read_all_along() -> None:
        while not stop.is_set():
            serial, matches = served_pair(running.directory)
            if not matches:
                mismatches.append(serial)

    reader = threading.Thread(target=read_all_along)
    reader.start()
    # When the set rotates twice in quick succession
    first, second = rotate(rotated), rotate(rotated)
    final = current_serial(rotated)
    wait_for(lambda: f"reloaded serial {final}" in running.lines, what="the last set")
    time.sleep(2)
    stop.set()
    reader.join()
    # Then the pair was never mismatched, the last set is served, and no version was delivered twice
    assert mismatches == []
    assert assert_consistent(running.directory) == final
    assert running.log_count(f"now serving version {second}") == 1
    assert running.log_count(f"now serving version {first}") <= 1
    reloads = [line for line in running.lines if line.startswith("reloaded serial")]
    assert len(reloads) == running.log_count("now serving version") <= 2
    # Every delivered version is still on disk: none was replaced a minute ago yet
    assert len(list((running.directory / ".versions").iterdir())) == 1 + len(reloads)


def test_a_set_failing_verification_is_never_written(rotated, watch, tmp_path):
    # Given a supervised server
    running = watch("--watch", "--interval", "1s", "--reload-signal", "HUP", command=server(tmp_path / "tls"))
    serial = assert_consistent(running.directory)
    served = os.readlink(running.directory / "current")
    # When a tampered set becomes current (chain-0 does not match its digest)
    rotated.put_tampered_chain()
    wait_for(lambda: running.log_count("refused the current set") >= 2, what="two refusals")
    # Then it is refused, logged with the reason, retried, and nothing is written or reloaded
    assert "chain-0 does not match the manifest's digest" in running.log
    assert os.readlink(running.directory / "current") == served
    assert len(list((running.directory / ".versions").iterdir())) == 1
    assert not any(line.startswith("reloaded") for line in running.lines)
    assert assert_consistent(running.directory) == serial
    # and a good rotation afterwards is delivered
    rotate(rotated)
    final = current_serial(rotated)
    wait_for(lambda: f"reloaded serial {final}" in running.lines, what="the good set")
    assert assert_consistent(running.directory) == final


def test_losing_the_network_during_checks_keeps_the_files_and_recovers(rotated, watch, tmp_path):
    # Given a sidecar reaching AWS through a network that can be cut
    emulator_port = int(rotated.env.emulator.endpoint_url.rsplit(":", 1)[1])
    network = Network(emulator_port)
    marker = tmp_path / "reloads"
    reload_command = f"{sys.executable} -c \"open('{marker}', 'a').write('reload\\n')\""
    try:
        running = watch(
            "--sidecar", "--interval", "1s", "--reload-command", reload_command,
            endpoint=f"http://127.0.0.1:{network.port}",
        )  # fmt: skip
        serial = assert_consistent(running.directory)
        # When the network goes away and the set rotates meanwhile
        network.cut()
        rotate(rotated)
        wait_for(lambda: running.log_count("check failed") >= 2, what="failed checks")
        # Then the old files stay, whole, and nothing was reloaded
        assert assert_consistent(running.directory) == serial
        assert not marker.exists()
        # When the network comes back, the new set is delivered and the reload command runs once
        network.restore()
        final = current_serial(rotated)
        wait_for(lambda: marker.exists(), timeout=30, what="the reload command")
        assert assert_consistent(running.directory) == final
        time.sleep(2.5)
        assert marker.read_text() == "reload\n"
        # and SIGTERM ends the sidecar with 0
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(10) == 0
    finally:
        network.close()


def test_a_connection_lost_in_the_middle_of_a_check_keeps_the_files_and_recovers(rotated, watch, tmp_path):
    # Given a supervised server reaching AWS through a network that loses the
    # connection of every BatchGetSecretValue: the manifest read of a check
    # succeeds, the read of the parts dies on the wire
    network = Network(int(rotated.env.emulator.endpoint_url.rsplit(":", 1)[1]))
    try:
        running = watch(
            "--watch", "--interval", "1s", "--reload-signal", "HUP",
            command=server(tmp_path / "tls"), endpoint=f"http://127.0.0.1:{network.port}",
        )  # fmt: skip
        serial = assert_consistent(running.directory)
        network.drop = b"secretsmanager.BatchGetSecretValue"
        # When the set rotates
        rotate(rotated)
        wait_for(lambda: running.log_count("check failed") >= 2, what="checks failing mid-way")
        # Then the checks saw the new version but could not read it: nothing written, nothing reloaded
        assert network.dropped >= 2
        assert assert_consistent(running.directory) == serial
        assert not any(line.startswith("reloaded") for line in running.lines)
        # When the connection holds again, the new set is delivered and the server reloaded once
        network.drop = None
        final = current_serial(rotated)
        wait_for(lambda: f"reloaded serial {final}" in running.lines, what="the delivery")
        assert assert_consistent(running.directory) == final
        assert running.lines.count(f"reloaded serial {final}") == 1
    finally:
        network.close()


def test_a_set_refused_at_start_exits_as_without_watch_and_starts_nothing(rotated, run_fetch, tmp_path):
    # Given a tampered current set
    rotated.put_tampered_chain()
    marker = tmp_path / "started"
    # When certrotor-fetch --watch starts
    result = run_fetch(
        ["--set", rotated.name, "--dir", str(tmp_path / "tls"), "--watch", "--",
         sys.executable, "-c", f"open('{marker}', 'w')"],
        rotated.env_vars(),
    )  # fmt: skip
    # Then exit 2 with one line, no file written and the command never started
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "chain-0 does not match the manifest's digest" in result.stderr
    assert not (tmp_path / "tls").exists()
    assert not marker.exists()

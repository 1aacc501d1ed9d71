"""`certrotor demo`: the main job end to end, on the embedded AWS emulator.

Emulator up, CA ready, set created, rotation 1, a container start (the real
`certrotor-fetch` entrypoint fetches, verifies, writes the files and execs a
TLS server), a TLS client that trusts only the local root, rotation 2 with
the ECS redeploy, a new container start, and the served serial has changed;
then a set delivered by reload: `certrotor-fetch --watch` supervises a running
TLS server, a rotation reaches it without a redeploy (same PID, new serial,
a client connected before the rotation still served); then the on-demand
issuer: one CSR issuance and one issue-now; then a `usage: client` set used as
the client certificate of a mutual-TLS connection; then every set of the demo
CA re-keyed by the re-key state machine (Step Functions); then a CA rotation.
Exits 0 only if every step worked.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509

from certrotor.config import load_config
from certrotor.local.ca_demo import run_ca_rotation_demo
from certrotor.local.demo_mtls import run_mutual_tls
from certrotor.local.driver import RotationDriver, RotationReport
from certrotor.local.emulator import Emulator
from certrotor.local.gateway import run_issuer_demo
from certrotor.local.provision import DEFAULT_CONFIG, LocalEnvironment, provision
from certrotor.pki.handshake import client_context

T = TypeVar("T")
QUIET_LAMBDA_ENV = {
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


# A second set whose rotations reach running servers by reload, not redeploy.
RELOAD_SET: dict[str, Any] = {
    "name": "demo/live",
    "common_name": "localhost",
    "dns_names": ["localhost"],
    "ip_addresses": ["127.0.0.1"],
    "validity_days": 30,
    "delivery": "reload",
}
# The demo's watch interval; the default is 5 minutes.
DEMO_INTERVAL = "1s"


def demo_config() -> dict[str, Any]:
    data = copy.deepcopy(DEFAULT_CONFIG)
    data["sets"].append(copy.deepcopy(RELOAD_SET))
    return data


class DemoFailed(Exception):
    """A step of the demo did not do what it should."""


@dataclass(frozen=True)
class Served:
    serial: str
    not_after: str
    version: str
    body: str


class Story:
    """Prints numbered steps with their timings."""

    def __init__(self, total: int, out: Any = sys.stdout) -> None:
        self._total = total
        self._index = 0
        self._out = out

    def step(self, title: str, action: Callable[[], T]) -> T:
        self._index += 1
        print(f"[{self._index}/{self._total}] {title}", file=self._out, flush=True)
        started = time.perf_counter()
        result = action()
        print(f"      done in {time.perf_counter() - started:.2f} s", file=self._out, flush=True)
        return result

    def say(self, text: str) -> None:
        print(f"      {text}", file=self._out, flush=True)


def fetch_command() -> list[str]:
    """The installed `certrotor-fetch` console script, next to this Python."""
    script = Path(sys.executable).with_name("certrotor-fetch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "certrotor.client.start"]


def server_command(set_name: str, files: Path, root_file: Path | None, options: tuple[str, ...] = ()) -> list[str]:
    """certrotor-fetch for the set into `files`, then the demo TLS server;
    without `root_file`, verified against the rotator's trust bundle."""
    anchor = ["--ca-file", str(root_file)] if root_file is not None else []
    fetch = [*fetch_command(), "--set", set_name, "--dir", str(files), *anchor, *options]
    return [*fetch, "--", sys.executable, "-m", "certrotor.local.tls_server", "--dir", str(files)]


@contextlib.contextmanager
def container(
    env: LocalEnvironment, set_name: str, workdir: Path, label: str, root_file: Path | None
) -> Iterator[tuple[int, dict[str, str]]]:
    """A container start: certrotor-fetch writes the files and execs the TLS
    server; yields the port it listens on, and stops it afterwards. Without
    `root_file` the set is verified against the rotator's trust bundle."""
    files = workdir / label
    command = server_command(set_name, files, root_file)
    process = subprocess.Popen(
        command,
        env={**os.environ, **env.emulator.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("listening on"):
            process.wait(timeout=10)
            error = process.stderr.read().strip() if process.stderr else ""
            raise DemoFailed(f"the container did not start: {error or line or 'no output'}")
        port = int(line.rsplit(":", 1)[1])
        modes = {p.name: oct(p.stat().st_mode & 0o777) for p in sorted(files.iterdir())}
        yield port, modes
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        if process.poll() is None:
            process.kill()


def connect(port: int, root_pem: str, server_name: str) -> Served:
    """A TLS client that trusts only the local root, and checks the name."""
    context = client_context(root_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        version = tls.version() or ""
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(4096):
            response += chunk
    if der is None:
        raise DemoFailed("the server sent no certificate")
    cert = x509.load_der_x509_certificate(der)
    body = response.split(b"\r\n\r\n", 1)[-1].decode().strip()
    return Served(format(cert.serial_number, "x"), cert.not_valid_after_utc.isoformat(), version, body)


class KeptConnection:
    """One TLS connection kept open across requests (HTTP/1.1 keep-alive)."""

    def __init__(self, port: int, root_pem: str, server_name: str) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._tls = client_context(root_pem).wrap_socket(raw, server_hostname=server_name)
        self._server_name = server_name
        self._buffer = b""

    @property
    def serial(self) -> str:
        der = self._tls.getpeercert(binary_form=True)
        assert der is not None
        return format(x509.load_der_x509_certificate(der).serial_number, "x")

    def get(self) -> str:
        """One request on this connection; the body. ConnectionError if it was dropped."""
        self._tls.sendall(f"GET / HTTP/1.1\r\nHost: {self._server_name}\r\n\r\n".encode())
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._receive()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
        length = int(lengths[0].split(b":", 1)[1])
        while len(rest) < length:
            rest += self._receive()
        self._buffer = rest[length:]
        return rest[:length].decode().strip()

    def _receive(self) -> bytes:
        chunk = self._tls.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._tls.close()


def pid_in(body: str) -> int:
    """The server PID the demo server puts in each answer."""
    return int(body.split("(pid ", 1)[1].split(")", 1)[0])


class WatchedServer:
    """`certrotor-fetch --watch ... -- tls_server`: the supervisor and its
    server, with the server's output lines collected as they come."""

    def __init__(
        self, env: LocalEnvironment, set_name: str, files: Path, root_file: Path, interval: str = DEMO_INTERVAL
    ) -> None:
        command = server_command(
            set_name, files, root_file, ("--watch", "--interval", interval, "--reload-signal", "HUP")
        )
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env.emulator.env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._collect, args=(self.process.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._collect, args=(self.process.stderr, self.log.append), daemon=True).start()

    @staticmethod
    def _collect(stream: Any, sink: Callable[[str], None]) -> None:
        for line in stream:
            sink(line.strip())

    def expect(self, prefix: str, timeout: float = 30.0) -> str:
        """The server's next line starting with `prefix`."""
        give_up = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, give_up - time.monotonic()))
            except queue.Empty:
                raise DemoFailed(f"the server never printed {prefix!r}: {' | '.join(self.log)}") from None
            if line.startswith(prefix):
                return line

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def reload_without_redeploy(story: Story, env: LocalEnvironment, workdir: Path, root_file: Path) -> None:
    """A set with delivery 'reload': a rotation reaches a running server in
    place (same PID, new serial), and a client connected before it stays up."""
    driver = RotationDriver(env)
    live = env.config.set_named(RELOAD_SET["name"])
    driver.rotate(live.name)
    before = deployments(env)
    server = WatchedServer(env, live.name, workdir / "live", root_file)
    try:
        port = int(server.expect("listening on").rsplit(":", 1)[1])
        story.say(f"certrotor-fetch --watch --interval {DEMO_INTERVAL} --reload-signal HUP supervises the TLS server")
        held = KeptConnection(port, env.root.pem, live.common_name)
        first = held.get()
        server_pid = pid_in(first)
        story.say(f"client A connected, kept open: server pid {server_pid}, serial {held.serial}")
        finished = driver.rotate(live.name).results["finishSecret"]
        story.say(f"rotation of {live.name}: finishSecret: {finished['action']}")
        reloaded = server.expect("reloaded serial")
        story.say(f"the server got SIGHUP after the atomic swap: {reloaded}")
        fresh = connect(port, env.root.pem, live.common_name)
        if pid_in(fresh.body) != server_pid:
            raise DemoFailed(f"another process answered: pid {pid_in(fresh.body)}, not {server_pid}")
        if fresh.serial == held.serial:
            raise DemoFailed("the running server still serves the old serial")
        story.say(f"client B (new connection): same pid {server_pid}, new serial {fresh.serial}")
        try:
            again = held.get()
        except (OSError, ConnectionError) as exc:
            raise DemoFailed(f"client A's connection was dropped by the reload: {exc}") from None
        story.say(
            f"client A, still on its connection from before the rotation (serial {held.serial}), answered: {again}"
        )
        held.close()
        if deployments(env) != before:
            raise DemoFailed("an ECS deployment was started for a reload set")
        story.say("no ECS deployment was started")
    finally:
        server.stop()


def deployments(env: LocalEnvironment) -> dict[str, list[str]]:
    """The deployment ids of every configured service."""
    ecs = env.emulator.client("ecs")
    found: dict[str, list[str]] = {}
    for cert_set in env.config.sets:
        for ref in cert_set.services:
            service = ecs.describe_services(cluster=ref.cluster, services=[ref.service])["services"][0]
            found[f"{ref.cluster}/{ref.service}"] = [d["id"] for d in service.get("deployments", [])]
    return found


def run(story: Story) -> None:
    with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="certrotor-demo-") as tmp:
        workdir = Path(tmp)
        story.say(f"AWS emulator (moto server) on {emulator.endpoint_url}")
        env = story.step(
            "Private CA ready: local root, subordinate in Private CA",
            lambda: provision(emulator, load_config(demo_config())),
        )
        cert_set = env.config.sets[0]
        story.say(f"root: {env.root.certificate.subject.rfc4514_string()}")
        story.say(f"subordinate CA: {env.ca_arn}")
        story.say(f"set {cert_set.name}: secrets {', '.join((cert_set.name, *cert_set.part_secret_names))}")
        root_file = workdir / "root.pem"
        root_file.write_text(env.root.pem)
        driver = RotationDriver(env)
        before = deployments(env)

        def rotate() -> RotationReport:
            report = driver.rotate(cert_set.name)
            steps = ", ".join(f"{a.step} {a.seconds * 1000:.0f} ms" for a in report.attempts)
            story.say(f"version {report.token}: {steps}")
            return report

        story.step("Rotation 1 (createSecret, setSecret, testSecret, finishSecret)", rotate)

        def serve(label: str) -> Served:
            with container(env, cert_set.name, workdir, label, root_file) as (port, modes):
                story.say(f"certrotor-fetch wrote {', '.join(f'{n} {m}' for n, m in modes.items())}")
                story.say(f"and exec'd the TLS server on 127.0.0.1:{port}")
                served = connect(port, env.root.pem, cert_set.common_name)
            story.say(f"client (trusts only the local root) got serial {served.serial}, expires {served.not_after}")
            story.say(f"{served.version}, server said: {served.body}")
            return served

        first = story.step(
            "Container start 1: fetch, verify, write, exec; TLS client connects", lambda: serve("task-1")
        )
        story.step("Rotation 2, with the ECS redeploy in finishSecret", rotate)
        after = deployments(env)
        for service, ids in after.items():
            new = [d for d in ids if d not in before.get(service, [])]
            if not new:
                raise DemoFailed(f"no new deployment recorded for {service}")
            story.say(f"ECS service {service}: new deployment {new[0]}")
        second = story.step("Container start 2 (the redeployed task)", lambda: serve("task-2"))
        if second.serial == first.serial:
            raise DemoFailed("the served serial did not change after rotation 2")
        story.say(f"served serial changed: {first.serial} -> {second.serial}")
        story.step(
            "Delivery by reload: a rotation reaches a running server without a redeploy",
            lambda: reload_without_redeploy(story, env, workdir, root_file),
        )
        story.step(
            "On-demand issuance: a CSR whose key never leaves the client, then issue-now of the set",
            lambda: run_issuer_demo(env, say=story.say),
        )
        mutual_tls_step(story, env, workdir, root_file)
        story.step(
            "Re-key every set of the demo CA on Step Functions (the deployed state machine's definition)",
            lambda: rekey_demo_ca(env, say=story.say),
        )
        story.step(
            "CA rotation (certrotor ca rotate): trust both roots, move the sets, drop the old root",
            lambda: run_ca_rotation_demo(env, workdir, container, story.say),
        )


def rekey_demo_ca(env: LocalEnvironment, say: Callable[[str], None]) -> None:
    """`certrotor rekey --ca <demo CA>` against the emulator's Step Functions."""
    from certrotor.fleet import rekey
    from certrotor.fleet.quotas import Pacing
    from certrotor.local.rekey import BackgroundRotations, deploy_state_machine

    secrets = env.emulator.client("secretsmanager")
    before = {s.name: read_serial(env, s.name) for s in env.config.sets}
    rotations = BackgroundRotations(env)
    machine = deploy_state_machine(env, rotations)
    document = rekey.build_input(
        secrets,
        env.config.service_name,
        Pacing(concurrency=2, wait_seconds=1),
        rekey.since_now(),
        "demo: CA compromise drill",
        ca=env.ca_arn,
    )
    sfn = env.emulator.client("stepfunctions")
    execution = rekey.start(sfn, machine, document)
    say(f"state machine {machine}")
    say(f"execution {execution}: {document['total']} set(s) issued by the demo CA")
    progress = rekey.follow(sfn, execution, say=lambda line: say(f"progress: {line}"), interval=0.5, timeout=120)
    rotations.wait(120)
    if progress.status != "SUCCEEDED" or progress.failed or rotations.failures:
        raise DemoFailed(f"re-key did not succeed: {progress.line()} {progress.failed or rotations.failures}")
    for name, serial in before.items():
        after = read_serial(env, name)
        if after == serial:
            raise DemoFailed(f"{name} was not re-keyed")
        say(f"{name}: serial {serial} -> {after}")


def read_serial(env: LocalEnvironment, name: str) -> str:
    from certrotor.aws.secrets import SecretStore
    from certrotor.services.reader import SetReader

    return SetReader(SecretStore(env.emulator.client("secretsmanager"))).read(name).manifest.serial


def mutual_tls_step(story: Story, env: LocalEnvironment, workdir: Path, root_file: Path) -> None:
    story.step(
        "Mutual TLS: a client set, rotated and fetched, authenticates to a server holding the server set",
        lambda: run_mutual_tls(env, workdir, root_file, fetch_command(), story.say),
    )


def run_demo(args: argparse.Namespace) -> int:
    # The functions' own logs and metrics would drown the story; the demo
    # runs them as Lambda would, with warnings only and metrics off.
    os.environ.update(QUIET_LAMBDA_ENV)
    story = Story(total=10)
    print("certrotor demo: certificates from Private CA, through Secrets Manager, into a container")
    started = time.perf_counter()
    try:
        run(story)
    except Exception as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"demo OK in {time.perf_counter() - started:.1f} s")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the whole loop on the embedded AWS emulator")
    parser.set_defaults(run=run_demo)

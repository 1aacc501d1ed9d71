"""--watch / --sidecar without AWS: the options, the versioned directory's
atomic swap, and the watcher's schedule over in-memory fakes."""

from __future__ import annotations

import os
import random
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from certrotor.client import files as files_module
from certrotor.client.entrypoint import UsageError, main, parse_args
from certrotor.client.livedir import LiveDirectory
from certrotor.client.supervisor import exit_status
from certrotor.client.watch import Watcher
from certrotor.errors import IntegrityError, RetryableError
from certrotor.pki.bundle import check_key_matches, parse_bundle
from certrotor.pki.keys import key_from_pem
from certrotor.ports import SecretValue
from certrotor.services.verify import VerifiedSet

# -- options ------------------------------------------------------------------


def test_watch_options_are_parsed():
    args = parse_args(["--set", "tls/orders", "--watch", "--interval", "90s", "--reload-signal", "hup", "--", "nginx"])
    assert args.watch is not None
    assert args.watch.supervise
    assert args.watch.interval == 90
    assert args.watch.reload_signal is signal.SIGHUP


def test_the_default_interval_is_five_minutes_a_48th_of_the_shortest_rotation_interval():
    args = parse_args(["--set", "tls/orders", "--sidecar", "--reload-command", "nginx -s reload"])
    assert args.watch is not None
    assert args.watch.interval == 300
    assert not args.watch.supervise
    assert args.watch.reload_command == ("nginx", "-s", "reload")


def test_without_watch_there_is_no_watch():
    assert parse_args(["--set", "tls/orders"]).watch is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--watch"], "--watch needs a command after --"),
        (["--sidecar", "--", "nginx"], "--sidecar runs no command"),
        (["--watch", "--sidecar", "--", "nginx"], "not both"),
        (["--interval", "1m"], "--interval needs --watch or --sidecar"),
        (["--reload-signal", "HUP", "--", "nginx"], "--reload-signal needs --watch or --sidecar"),
        (["--watch", "--interval", "0s", "--", "nginx"], "between 1s and 1d"),
        (["--watch", "--interval", "2d", "--", "nginx"], "between 1s and 1d"),
        (["--watch", "--reload-signal", "BOGUS", "--", "nginx"], "not a signal name"),
        (["--watch", "--reload-signal", "KILL", "--", "nginx"], "cannot make a process reload"),
        (["--sidecar", "--reload-signal", "HUP"], "a sidecar uses --reload-command"),
        (["--watch", "--reload-signal", "HUP", "--reload-command", "x", "--", "nginx"], "not both"),
        (["--watch", "--reload-command", "'unterminated", "--", "nginx"], "--reload-command"),
        (["--watch", "--from-env", "--", "nginx"], "--from-env cannot watch"),
    ],
)
def test_bad_watch_options_are_refused_with_one_line(argv, message, capsys):
    with pytest.raises(UsageError, match=message):
        parse_args(["--set", "tls/orders", *argv])
    # and through main: exit 64, one line, nothing run
    assert main(["--set", "tls/orders", *argv]) == 64
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert message.split(" ")[0] in err


def test_exit_status_is_the_code_or_128_plus_the_signal():
    assert exit_status(7 << 8) == 7
    assert exit_status(signal.SIGKILL) == 137


# -- the versioned directory ------------------------------------------------------


def pair_at(directory: Path) -> tuple[int, bool]:
    fd = os.open(directory / "current", os.O_RDONLY | os.O_DIRECTORY)
    try:
        cert = os.read(os.open("fullchain.pem", os.O_RDONLY, dir_fd=fd), 1 << 16).decode()
        key = os.read(os.open("key.pem", os.O_RDONLY, dir_fd=fd), 1 << 16).decode()
    finally:
        os.close(fd)
    bundle = parse_bundle(cert)
    try:
        check_key_matches(bundle, key_from_pem(key))
    except Exception:
        return bundle.leaf.serial_number, False
    return bundle.leaf.serial_number, True


def test_a_delivery_serves_the_stable_names_through_current(tmp_path, material):
    live = LiveDirectory(tmp_path / "tls")
    written = live.deliver("v1", material.key_pem, material.bundle, combined=True)
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == [
        ".versions",
        "cert.pem",
        "chain.pem",
        "combined.pem",
        "current",
        "fullchain.pem",
        "key.pem",
    ]
    for path in written.paths():
        assert os.readlink(path) == f"current/{path.name}"
    assert written.key.read_text() == material.key_pem
    assert os.stat(written.key).st_mode & 0o777 == 0o400
    assert os.stat(tmp_path / "tls" / ".versions").st_mode & 0o777 == 0o700


def test_plain_files_from_an_earlier_fetch_become_links(tmp_path, material, other_material):
    files_module.write_material(tmp_path / "tls", material.key_pem, material.bundle)
    LiveDirectory(tmp_path / "tls").deliver("v2", other_material.key_pem, other_material.bundle)
    assert os.readlink(tmp_path / "tls" / "key.pem") == "current/key.pem"
    assert (tmp_path / "tls" / "key.pem").read_text() == other_material.key_pem


def test_a_reader_never_sees_a_mismatched_pair_across_many_swaps(tmp_path, material, other_material):
    live = LiveDirectory(tmp_path / "tls")
    live.deliver("v0", material.key_pem, material.bundle)
    stop = threading.Event()
    seen: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(pair_at(tmp_path / "tls"))
            except Exception as exc:  # a vanished file is a failure too
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(60):
        chosen = (material, other_material)[i % 2]
        live.deliver(f"v{i + 1}", chosen.key_pem, chosen.bundle)
    stop.set()
    reader.join()
    assert errors == []
    assert seen
    assert all(matches for _, matches in seen)
    assert len({serial for serial, _ in seen}) == 2


def test_replaced_versions_stay_a_minute_then_only_the_current_and_previous_remain(tmp_path, material):
    now = [1000.0]
    live = LiveDirectory(tmp_path / "tls", clock=lambda: now[0])
    versions = tmp_path / "tls" / ".versions"
    for second in (0, 1, 2):
        now[0] = 1000.0 + second
        live.deliver(f"v{second}", material.key_pem, material.bundle)
    # back to back: a reader of any of them may still be reading
    now[0] = 1030.0
    live.deliver("v30", material.key_pem, material.bundle)
    assert len(list(versions.iterdir())) == 4
    # a minute after their successors were swapped in, they go
    now[0] = 1100.0
    live.deliver("v100", material.key_pem, material.bundle)
    remaining = sorted(p.name.split(".")[1] for p in versions.iterdir())
    assert remaining == ["v100", "v30"]
    assert os.readlink(tmp_path / "tls" / "current").split(".")[-2] == "v100"


def test_a_write_failing_before_the_swap_leaves_the_served_set(tmp_path, material, other_material, monkeypatch):
    live = LiveDirectory(tmp_path / "tls")
    live.deliver("v1", material.key_pem, material.bundle)
    before = live.current_target()

    def full_disk(*args, **kwargs):
        raise files_module.MaterialDirectoryError("cannot write key.pem: No space left on device")

    monkeypatch.setattr("certrotor.client.livedir.write_material", full_disk)
    with pytest.raises(files_module.MaterialDirectoryError):
        live.deliver("v2", other_material.key_pem, other_material.bundle)
    assert live.current_target() == before
    assert [p.name for p in (tmp_path / "tls" / ".versions").iterdir()] == [Path(before or "").name]
    assert (tmp_path / "tls" / "key.pem").read_text() == material.key_pem


# -- the watcher ------------------------------------------------------------------


@dataclass
class FakeManifestStore:
    """AWSCURRENT of the manifest: a version, or an error to raise."""

    version: str
    failure: Exception | None = None
    reads: int = 0

    def get(self, name: str, stage: str | None = None, version: str | None = None) -> SecretValue:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        return SecretValue(name, "{}", self.version, ("AWSCURRENT",))


@dataclass
class Recorder:
    reloads: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def make_watcher(tmp_path, store, read_set, recorder, interval=60.0, material=None):
    live = LiveDirectory(tmp_path / "tls")
    return live, Watcher(
        set_name="tls/orders",
        secrets=store,
        read_set=read_set,
        live=live,
        write_options={},
        served_version="v1",
        served_not_after=material.bundle.leaf.not_valid_after_utc.isoformat(),
        interval=interval,
        reload=recorder.reloads.append,
        log=recorder.lines.append,
        debug=lambda line: None,
        rng=random.Random(1),
    )


def verified(material, version: str) -> VerifiedSet:
    return VerifiedSet(
        manifest=material.layout(version).manifest, bundle=material.bundle, key_pem=material.key_pem, handshake=None
    )


def test_one_reload_per_new_version_however_often_it_is_checked(tmp_path, material, other_material):
    store, recorder = FakeManifestStore("v1"), Recorder()
    live, watcher = make_watcher(
        tmp_path, store, lambda value: verified(other_material, value.version), recorder, material=material
    )
    live.deliver("v1", material.key_pem, material.bundle)
    for _ in range(3):
        watcher.run_once()
    assert recorder.reloads == []
    store.version = "v2"
    for _ in range(3):
        watcher.run_once()
    assert recorder.reloads == ["v2"]
    assert store.reads == 6
    assert (tmp_path / "tls" / "key.pem").read_text() == other_material.key_pem


def test_a_refused_set_is_not_written_and_is_retried_with_backoff(tmp_path, material):
    store, recorder = FakeManifestStore("v2"), Recorder()

    def refuse(value):
        raise IntegrityError("part tls/orders/chain-0 does not match the manifest's digest")

    live, watcher = make_watcher(tmp_path, store, refuse, recorder, interval=60.0, material=material)
    live.deliver("v1", material.key_pem, material.bundle)
    before = live.current_target()
    delays = []
    for _ in range(6):
        watcher.run_once()
        delays.append(watcher.next_delay())
    assert live.current_target() == before
    assert recorder.reloads == []
    assert "still serving version v1: part tls/orders/chain-0 does not match" in recorder.lines[0]
    # and says how long the served certificate has left
    assert "; the served certificate expires in 29 days (" in recorder.lines[0]
    # backoff: from 2s, doubling, never past the interval, with jitter (half to all)
    ceilings = [2, 4, 8, 16, 32, 60]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))


def test_an_aws_failure_keeps_the_files_and_a_success_resets_the_schedule(tmp_path, material, other_material):
    store = FakeManifestStore("v2", failure=RetryableError("GetSecretValue tls/orders: connection failed"))
    recorder = Recorder()
    live, watcher = make_watcher(
        tmp_path, store, lambda value: verified(other_material, value.version), recorder, material=material
    )
    live.deliver("v1", material.key_pem, material.bundle)
    watcher.run_once()
    watcher.run_once()
    assert watcher.failures == 2
    assert "check failed, still serving version v1" in recorder.lines[0]
    assert (tmp_path / "tls" / "key.pem").read_text() == material.key_pem
    store.failure = None
    watcher.run_once()
    assert watcher.failures == 0
    assert recorder.reloads == ["v2"]
    assert 54 <= watcher.next_delay() <= 66

"""`certrotor-fetch --watch` and `--sidecar`: new certificates without a restart.

After the first fetch (exactly as without --watch, but written through a
LiveDirectory), a thread checks the set every `--interval` (jittered by 10%):
one GetSecretValue of the manifest at AWSCURRENT. When its VersionId differs
from the one served, the parts are read at that version and the set is
verified exactly as at start (digests, versions, --ca-file, key matches
leaf, validity and --min-valid); only then is it written and swapped in
atomically, and the command reloaded (--reload-signal to the child, or
--reload-command run to its end). One delivery, so at most one reload, per
new version.

A set that fails verification is never written: the old files stay, the
refusal is logged, and the check is retried with backoff (capped at the
interval), as are AWS failures (network lost, throttled, denied). A watch
failure never stops the command: its files stay valid until they expire,
and the log says why they were not replaced.
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from certrotor.client.livedir import LiveDirectory
from certrotor.client.supervisor import Supervisor
from certrotor.client.watch_options import WatchArgs
from certrotor.errors import AwsError, BundleError, LayoutError, PolicyError
from certrotor.ports import CURRENT
from certrotor.services.verify import VerifiedSet

JITTER = 0.1
FIRST_BACKOFF = 2.0
RELOAD_COMMAND_TIMEOUT = 60.0
# A single check's AWS calls are bounded by this (connect and read timeouts).
CHECK_DEADLINE = 10.0


@dataclass(frozen=True)
class CheckResult:
    """What one check did: `delivered` names the new version when it swapped one in."""

    version: str
    delivered: bool


class Watcher:
    """Checks one set on a schedule and delivers new versions into a LiveDirectory."""

    def __init__(
        self,
        *,
        set_name: str,
        secrets: Any,
        read_set: Callable[[Any], VerifiedSet],
        live: LiveDirectory,
        write_options: Mapping[str, Any],
        served_version: str,
        served_not_after: str | None = None,
        interval: float,
        reload: Callable[[str], None],
        log: Callable[[str], None],
        debug: Callable[[str], None],
        rng: random.Random | None = None,
    ) -> None:
        self._set_name = set_name
        self._secrets = secrets
        self._read_set = read_set
        self._live = live
        # The caller's mapping, not a copy: read_set may update what is written
        # with a version (the trust bundle read with it).
        self._write_options = write_options
        self.served_version = served_version
        self.served_not_after = served_not_after
        self._interval = interval
        self._reload = reload
        self._log = log
        self._debug = debug
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.failures = 0
        self.deliveries = 0

    # -- one check ------------------------------------------------------------

    def check(self) -> CheckResult:
        """One cheap read; on a new version, read, verify, swap, reload.
        Raises what the read or the verification raised, having written nothing."""
        manifest_value = self._secrets.get(self._set_name, stage=CURRENT)
        if manifest_value.version == self.served_version:
            return CheckResult(manifest_value.version, delivered=False)
        verified = self._read_set(manifest_value)
        self._live.deliver(manifest_value.version, verified.key_pem, verified.bundle, **self._write_options)
        previous, self.served_version = self.served_version, manifest_value.version
        self.served_not_after = verified.manifest.not_after
        self.deliveries += 1
        self._log(
            f"now serving version {manifest_value.version} (serial {verified.manifest.serial}, "
            f"valid until {verified.manifest.not_after}); was {previous}"
        )
        self._reload(manifest_value.version)
        return CheckResult(manifest_value.version, delivered=True)

    def _expiry(self) -> str:
        """When checks keep failing, how long the served certificate has left."""
        if self.served_not_after is None:
            return ""
        left = dt.datetime.fromisoformat(self.served_not_after) - dt.datetime.now(dt.UTC)
        if left.total_seconds() <= 0:
            return f"; the served certificate EXPIRED at {self.served_not_after}"
        return f"; the served certificate expires in {_span(left)} ({self.served_not_after})"

    # -- the schedule -----------------------------------------------------------

    def next_delay(self) -> float:
        """The interval ±10%; after failures, backoff from 2s doubling, capped at
        the interval, with jitter (half to all of it)."""
        if self.failures == 0:
            return self._interval * self._rng.uniform(1 - JITTER, 1 + JITTER)
        ceiling = min(self._interval, FIRST_BACKOFF * 2 ** (self.failures - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def run_once(self) -> None:
        """A check, with its outcome logged and the failure count kept."""
        try:
            result = self.check()
        except (LayoutError, BundleError, PolicyError) as exc:
            self.failures += 1
            self._log(f"refused the current set, still serving version {self.served_version}: {exc}{self._expiry()}")
        except Exception as exc:
            self.failures += 1
            self._log(
                f"check failed, still serving version {self.served_version}: {_describe(exc)} "
                f"(failure {self.failures}){self._expiry()}"
            )
            if not isinstance(exc, _expected_failures()):
                self._debug(traceback.format_exc())
        else:
            self.failures = 0
            if not result.delivered:
                self._debug(f"version {result.version} is current; nothing to do")

    def run(self) -> None:
        """Check until stopped; `wake()` checks at once."""
        while not self._stop.is_set():
            delay = self.next_delay()
            if self.failures:
                self._log(f"next check in {delay:.1f}s")
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.run_once()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="certrotor-watch", daemon=True)
        thread.start()
        return thread


def _expected_failures() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError

    return (AwsError, BotoCoreError, OSError)


def _span(left: dt.timedelta) -> str:
    hours = int(left.total_seconds() // 3600)
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{hours}h {int(left.total_seconds() % 3600 // 60)}m"


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def reloader(
    watch: WatchArgs,
    supervisor: Supervisor,
    env: dict[str, str] | None,
    log: Callable[[str], None],
) -> Callable[[str], None]:
    """What to do after a swap: signal the child, run the command, or nothing."""

    def reload(version: str) -> None:
        if watch.reload_signal is not None:
            if supervisor.signal_child(watch.reload_signal):
                log(f"sent {watch.reload_signal.name} to the command (pid {supervisor.child_pid})")
            else:
                log(f"could not send {watch.reload_signal.name}: the command has exited")
        elif watch.reload_command:
            try:
                status = supervisor.run_command(watch.reload_command, env, RELOAD_COMMAND_TIMEOUT)
            except OSError as exc:
                log(f"--reload-command {watch.reload_command[0]}: {exc.strerror}")
                return
            if status is None:
                log(f"--reload-command did not finish in {RELOAD_COMMAND_TIMEOUT:g}s; killed it")
            elif status != 0:
                log(f"--reload-command exited {status}")
            else:
                log("--reload-command done")

    return reload


def run_watch(args: Any, environ: Mapping[str, str], say: Callable[[str], None]) -> int:
    """Fetch, write into a LiveDirectory, start the command (if any), then
    watch until the command exits (its status) or, as a sidecar, SIGTERM."""
    from certrotor.aws.secrets import SecretStore
    from certrotor.client import entrypoint
    from certrotor.client.fetch import secrets_client
    from certrotor.client.trust import fetch_trusted
    from certrotor.services.reader import SetReader

    watch: WatchArgs = args.watch

    def log(line: str) -> None:
        entrypoint._complain(args.set_name, line)

    def debug(line: str) -> None:
        if args.verbose:
            log(line)

    anchor_pem = entrypoint.read_anchor(args)
    password = entrypoint.read_password(args.pkcs12_password_file) if args.pkcs12_password_file else None
    fetched = entrypoint.obtain_from_aws(args, anchor_pem, say)
    verified = fetched.verified
    say(f"verified against {fetched.checked_against}")
    live = LiveDirectory(args.directory)
    write_options: dict[str, Any] = {
        "combined": args.combined,
        "pkcs12": args.pkcs12,
        "pkcs12_password": password,
        "trust_pem": fetched.trust_pem,
    }
    files = live.deliver(verified.manifest.version, verified.key_pem, verified.bundle, **write_options)
    log(
        f"serving version {verified.manifest.version} (serial {verified.manifest.serial}) from {files.directory}; "
        f"checking every {watch.interval:g}s"
    )
    store = SecretStore(secrets_client(CHECK_DEADLINE))
    reader = SetReader(store)

    def read_set(manifest_value: Any) -> VerifiedSet:
        checked = fetch_trusted(
            reader, args.set_name, anchor_pem=anchor_pem, min_remaining=args.min_valid, manifest_value=manifest_value
        )
        write_options["trust_pem"] = checked.trust_pem
        return checked.verified

    supervisor = Supervisor(log=debug)
    env = dict(environ)
    watcher = Watcher(
        set_name=args.set_name,
        secrets=store,
        read_set=read_set,
        live=live,
        write_options=write_options,
        served_version=verified.manifest.version,
        served_not_after=verified.manifest.not_after,
        interval=watch.interval,
        reload=reloader(watch, supervisor, env, log),
        log=log,
        debug=debug,
    )
    supervisor.install()
    try:
        if watch.supervise:
            try:
                supervisor.start_child(args.command, env)
            except FileNotFoundError:
                log(f"{args.command[0]}: command not found")
                return entrypoint.EXIT_NOT_FOUND
            except OSError as exc:
                log(f"cannot run {args.command[0]}: {exc.strerror}")
                return entrypoint.EXIT_NOT_EXECUTABLE
            log(f"started {args.command[0]} (pid {supervisor.child_pid})")
        else:
            supervisor.on_sighup(watcher.wake)
        watcher.start()
        status = supervisor.wait()
        if watch.supervise:
            log(f"the command exited with status {status}")
        return status
    finally:
        watcher.stop()
        supervisor.uninstall()
        # Not the default: a second SIGTERM while exiting should not leave a
        # traceback on stderr.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

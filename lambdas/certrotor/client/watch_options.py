"""certrotor-fetch's options for keeping files fresh after start:
`--watch` (supervise the command) and `--sidecar` (no command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from certrotor.record import record

if TYPE_CHECKING:
    import signal

# Rotation runs at most every 4 hours (config.MIN_ROTATION_HOURS); checking
# every 5 minutes is at most 1/48 of any rotation interval, for one
# GetSecretValue per check (12 per hour per task).
DEFAULT_INTERVAL_SECONDS = 300.0
MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 86400.0


@record
class WatchArgs:
    """How to watch: with a child (`supervise`) or without (sidecar)."""

    supervise: bool
    interval: float = DEFAULT_INTERVAL_SECONDS
    reload_signal: signal.Signals | None = None
    reload_command: tuple[str, ...] = ()


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("keeping the files fresh (see docs/CONTAINERS.md)")
    group.add_argument(
        "--watch",
        action="store_true",
        help="stay as the command's supervisor (PID 1 friendly): check the set every --interval, "
        "swap in a new set atomically and reload the command",
    )
    group.add_argument("--sidecar", action="store_true", help="like --watch, without a command")
    group.add_argument("--interval", help="time between checks, jittered by 10%% (default 5m; at least 1s)")
    group.add_argument("--reload-signal", metavar="SIG", help="signal the command after a swap (HUP, USR1, ...)")
    group.add_argument("--reload-command", metavar="CMD", help="run CMD (split like a shell, no shell) after a swap")


def parse_signal(text: str) -> signal.Signals:
    import signal

    from certrotor.client.entrypoint import UsageError

    name = text.strip().upper()
    if name.isdigit():
        try:
            return signal.Signals(int(name))
        except ValueError:
            raise UsageError(f"--reload-signal: {text!r} is not a signal number") from None
    try:
        return signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]
    except KeyError:
        raise UsageError(f"--reload-signal: {text!r} is not a signal name such as HUP or USR1") from None


def parse_watch(parsed: argparse.Namespace, command: tuple[str, ...]) -> WatchArgs | None:
    """The watch options, checked; None when neither --watch nor --sidecar."""
    from certrotor.client.entrypoint import UsageError, parse_duration

    watching = parsed.watch or parsed.sidecar
    if not watching:
        for flag, value in (
            ("--interval", parsed.interval),
            ("--reload-signal", parsed.reload_signal),
            ("--reload-command", parsed.reload_command),
        ):
            if value is not None:
                raise UsageError(f"{flag} needs --watch or --sidecar")
        return None
    import shlex  # only when watching: a start without --watch imports neither
    import signal

    if parsed.watch and parsed.sidecar:
        raise UsageError("give --watch (with a command) or --sidecar (without), not both")
    if parsed.watch and not command:
        raise UsageError("--watch needs a command after --; to watch without one, use --sidecar")
    if parsed.sidecar and command:
        raise UsageError("--sidecar runs no command; to supervise one, use --watch")
    if parsed.from_env:
        raise UsageError("--from-env cannot watch: injected variables never change; use file mode")
    interval = DEFAULT_INTERVAL_SECONDS
    if parsed.interval is not None:
        interval = parse_duration(parsed.interval).total_seconds()
        if not MIN_INTERVAL_SECONDS <= interval <= MAX_INTERVAL_SECONDS:
            raise UsageError(f"--interval: {parsed.interval} must be between 1s and 1d")
    reload_signal = parse_signal(parsed.reload_signal) if parsed.reload_signal is not None else None
    if reload_signal is not None and parsed.sidecar:
        raise UsageError("--reload-signal needs a command to signal (--watch); a sidecar uses --reload-command")
    if reload_signal in (signal.SIGKILL, signal.SIGSTOP):
        raise UsageError(f"--reload-signal: {reload_signal.name} cannot make a process reload")
    reload_command: tuple[str, ...] = ()
    if parsed.reload_command is not None:
        try:
            reload_command = tuple(shlex.split(parsed.reload_command))
        except ValueError as exc:
            raise UsageError(f"--reload-command: {exc}") from None
        if not reload_command:
            raise UsageError("--reload-command is empty")
    if reload_signal is not None and reload_command:
        raise UsageError("give --reload-signal or --reload-command, not both")
    return WatchArgs(
        supervise=bool(parsed.watch),
        interval=interval,
        reload_signal=reload_signal,
        reload_command=reload_command,
    )

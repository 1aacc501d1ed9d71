"""A small init for `certrotor-fetch --watch`: it runs the command as its
child, forwards signals to it, reaps every process that ends up its child
(as PID 1 in a container it inherits orphans), and exits with the child's
status (128 + N when the child died of signal N, as shells report it).

Not PID 1 (under systemd, or a container runtime's own init), it makes
itself a child subreaper (Linux prctl, as `tini -s` does), so orphans of the
command are still its to reap.

Signals are read in the main thread from a wakeup pipe (signal.set_wakeup_fd),
so forwarding never waits on the watcher, which runs in its own thread.
Without a command (`--sidecar`) SIGTERM and SIGINT end it with status 0 and
SIGHUP asks the watcher to check now.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# What tini and dumb-init pass on: everything a process manager or a person
# sends to ask something of the service. SIGCHLD is ours (reaping).
FORWARDED = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
    signal.SIGALRM,
    signal.SIGCONT,
)
STOPPING = (signal.SIGTERM, signal.SIGINT)
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt the orphans of our descendants (Linux); False where unsupported."""
    if os.getpid() == 1:
        return True
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def exit_status(wait_status: int) -> int:
    """A waitpid status as an exit code: the code, or 128 + the signal."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)


@dataclass
class _Spawned:
    done: threading.Event = field(default_factory=threading.Event)
    status: int | None = None


class Supervisor:
    """Owns the processes: the child, and the reload commands the watcher runs."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._spawned: dict[int, _Spawned] = {}
        self.child_pid: int | None = None
        self._child_status: int | None = None
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous_wakeup: int | None = None
        self._previous_handlers: dict[int, object] = {}
        self._on_sighup: Callable[[], None] | None = None

    # -- signals --------------------------------------------------------------

    def install(self) -> None:
        """Catch the forwarded signals and SIGCHLD (before any child exists,
        so no exit goes unseen)."""
        become_subreaper()
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for number in (*FORWARDED, signal.SIGCHLD):
            self._previous_handlers[number] = signal.signal(number, _note)

    def uninstall(self) -> None:
        for number, handler in self._previous_handlers.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(number, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._previous_wakeup if self._previous_wakeup is not None else -1)
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- processes ------------------------------------------------------------

    def start_child(self, command: Sequence[str], env: dict[str, str] | None) -> None:
        """Start the command; FileNotFoundError / PermissionError if it cannot run."""
        with self._lock:
            process = subprocess.Popen(list(command), env=env, close_fds=True)
            self.child_pid = process.pid
            self._spawned[process.pid] = _Spawned()

    def run_command(self, command: Sequence[str], env: dict[str, str] | None, timeout: float) -> int | None:
        """Run a reload command to its end (from the watcher's thread); its
        exit status, or None if it did not finish within `timeout` (killed)."""
        with self._lock:
            process = subprocess.Popen(list(command), env=env, close_fds=True, stdin=subprocess.DEVNULL)
            spawned = self._spawned[process.pid] = _Spawned()
        # Wake the main loop in case SIGCHLD came before the pid was known.
        self.poke()
        if spawned.done.wait(timeout):
            return spawned.status
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        return None

    def signal_child(self, number: int) -> bool:
        """Send `number` to the child; False if there is none any more."""
        if self.child_pid is None or self._child_status is not None:
            return False
        try:
            os.kill(self.child_pid, number)
        except ProcessLookupError:
            return False
        return True

    def poke(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write_fd, b"\0")

    def _reap(self) -> None:
        """Collect every ended child: ours are recorded, orphans just vanish."""
        with self._lock:
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                except OSError as exc:  # pragma: no cover - EINTR is retried by Python
                    if exc.errno == errno.EINTR:
                        continue
                    return
                if pid == 0:
                    return
                spawned = self._spawned.pop(pid, None)
                if spawned is None:
                    self._log(f"reaped orphan pid {pid} ({_describe_status(status)})")
                    continue
                spawned.status = exit_status(status)
                spawned.done.set()
                if pid == self.child_pid:
                    self._child_status = spawned.status

    # -- the main loop ----------------------------------------------------------

    def on_sighup(self, action: Callable[[], None]) -> None:
        """Without a child, what SIGHUP does (check now)."""
        self._on_sighup = action

    def wait(self) -> int:
        """Forward signals and reap until the child exits (its status), or,
        without a child, until SIGTERM or SIGINT (0)."""
        while True:
            self._reap()
            if self._child_status is not None:
                return self._child_status
            select.select([self._read_fd], [], [], 1.0)
            try:
                received = os.read(self._read_fd, 512)
            except BlockingIOError:
                received = b""
            for number in received:
                if number == 0 or number == signal.SIGCHLD:
                    continue
                if self.child_pid is not None:
                    if not self.signal_child(number):
                        continue
                    self._log(f"passed {signal.Signals(number).name} to the command (pid {self.child_pid})")
                elif number in STOPPING:
                    self._log(f"{signal.Signals(number).name}: stopping")
                    return 0
                elif number == signal.SIGHUP and self._on_sighup is not None:
                    self._on_sighup()


def _describe_status(wait_status: int) -> str:
    if os.WIFSIGNALED(wait_status):
        return f"killed by {signal.Signals(os.WTERMSIG(wait_status)).name}"
    return f"exit {os.waitstatus_to_exitcode(wait_status)}"


def _note(number: int, frame: object) -> None:
    """The wakeup fd carries the signal number; nothing else to do here."""

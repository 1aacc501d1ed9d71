"""certrotor-fetch: a container's entry point that fetches its certificate
set, verifies it, writes the files, then becomes the real server.

    certrotor-fetch --set tls/orders [--dir /run/certrotor] [--ca-file root.pem]
                    [--combined] [--pkcs12 [--pkcs12-password-file F]]
                    [--deadline 60] [--min-valid 1h] [--from-env] [--verbose]
                    [--watch [--interval 5m] [--reload-signal HUP | --reload-command CMD]]
                    -- nginx -g 'daemon off;'

Without a command it writes the files and exits 0. On failure it prints one
line to stderr, `certrotor-fetch: <set>: <reason>`, never key material, and
exits with a code that says what failed (see EXIT_*), so ECS starts another
task. Runtime dependencies: boto3 and cryptography only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from certrotor.client.files import MaterialDirectoryError, WrittenFiles, write_material
from certrotor.client.watch_options import WatchArgs, add_watch_arguments, parse_watch
from certrotor.errors import AwsError, BundleError, LayoutError, PolicyError
from certrotor.record import record

if TYPE_CHECKING:
    from certrotor.client.trust import TrustedFetch

PROG = "certrotor-fetch"
DEFAULT_DIRECTORY = "/run/certrotor"
DEFAULT_DEADLINE = 60.0

EXIT_OK = 0
EXIT_REFUSED = 2  # the set failed verification: tampered, mixed versions, expired, chain not from the CA
EXIT_AWS = 3  # AWS unreachable, denied or not found, or the deadline passed
EXIT_FILES = 4  # the files could not be written safely (directory refused, disk)
EXIT_SOFTWARE = 70  # a bug (sysexits EX_SOFTWARE)
EXIT_USAGE = 64  # bad arguments or unreadable input files (sysexits EX_USAGE)
EXIT_NOT_EXECUTABLE = 126  # as a shell: the command exists but cannot run
EXIT_NOT_FOUND = 127  # as a shell: no such command

_DURATION = re.compile(r"^(\d{1,12})([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# No certificate certrotor issues is valid this long (the config caps
# validity at 3650 days); a longer --min-valid can only be a mistake.
MAX_MIN_VALID = dt.timedelta(days=3650)
MAX_DEADLINE = 3600.0


class UsageError(Exception):
    """The command line (or a file it names) is not usable."""


def parse_duration(text: str) -> dt.timedelta:
    """`90`, `90s`, `30m`, `1h` or `2d` as a timedelta."""
    match = _DURATION.match(text.strip())
    if not match:
        raise UsageError(f"{text[:40]!r} is not a duration such as 90s, 30m, 1h or 2d")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_MIN_VALID.total_seconds():
        raise UsageError(f"{text.strip()} is longer than {MAX_MIN_VALID.days} days")
    return dt.timedelta(seconds=seconds)


@record
class FetchArgs:
    """The parsed command line."""

    set_name: str
    directory: Path
    command: tuple[str, ...]
    ca_file: Path | None = None
    combined: bool = False
    pkcs12: bool = False
    pkcs12_password_file: Path | None = None
    deadline: float = DEFAULT_DEADLINE
    min_valid: dt.timedelta = dt.timedelta(0)
    from_env: bool = False
    verbose: bool = False
    watch: WatchArgs | None = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def terminal_width(environ: Mapping[str, str] = os.environ) -> int:
    """The width help is wrapped to, as shutil.get_terminal_size finds it
    (COLUMNS, else the terminal on stdout, else 80)."""
    try:
        columns = int(environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter given the width, so that argparse does not
    import shutil (and with it bz2 and lzma) for each add_argument: a
    container start would pay that for help it never prints."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_width() - 2)  # argparse's own margin


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        formatter_class=_Formatter,
        usage=f"{PROG} --set NAME [options] [-- COMMAND [ARG ...]]",
        description="Fetch and verify a certrotor certificate set, write its files, then exec COMMAND.",
    )
    parser.add_argument(
        "--set",
        dest="set_name",
        required=True,
        metavar="NAME",
        help="the set (its manifest secret's name)",
    )
    parser.add_argument(
        "--dir",
        dest="directory",
        default=DEFAULT_DIRECTORY,
        help=f"where to write (default {DEFAULT_DIRECTORY}; 0700)",
    )
    parser.add_argument(
        "--ca-file",
        help="PEM of the CA to trust: the root or the issuing CA (without it, the set's trust "
        "bundle is used, written as trust.pem; a set without one is only checked for consistency)",
    )
    parser.add_argument("--combined", action="store_true", help="also write combined.pem (key + full chain, 0400)")
    parser.add_argument("--pkcs12", action="store_true", help="also write cert.p12 (0400)")
    parser.add_argument("--pkcs12-password-file", help="file holding the PKCS#12 password (default: no password)")
    parser.add_argument(
        "--deadline",
        default=str(DEFAULT_DEADLINE),
        help="seconds to keep retrying AWS (default 60)",
    )
    parser.add_argument(
        "--min-valid",
        default="0",
        help="refuse a certificate expiring sooner (e.g. 1h, 2d; default 0)",
    )
    parser.add_argument("--from-env", action="store_true", help="take the set from ECS-injected variables, not AWS")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress lines on stderr")
    add_watch_arguments(parser)
    return parser


def parse_args(argv: Sequence[str]) -> FetchArgs:
    """Options before `--`, the command after it; bad input raises UsageError."""
    argv = list(argv)
    if "--" in argv:
        split = argv.index("--")
        options, command = argv[:split], tuple(argv[split + 1 :])
    else:
        options, command = argv, ()
    parsed = build_parser().parse_args(options)
    if not parsed.set_name:
        raise UsageError("--set needs a set name")
    if not parsed.directory.strip():
        raise UsageError("--dir is empty; name the directory for the key material")
    try:
        deadline = float(parsed.deadline)
    except ValueError:
        raise UsageError(f"--deadline: {parsed.deadline[:40]!r} is not a number of seconds") from None
    if not 0 < deadline <= MAX_DEADLINE:
        raise UsageError(f"--deadline: {parsed.deadline[:40]} must be more than 0 and at most 3600 seconds")
    if parsed.pkcs12_password_file and not parsed.pkcs12:
        raise UsageError("--pkcs12-password-file needs --pkcs12")
    return FetchArgs(
        set_name=parsed.set_name,
        directory=Path(parsed.directory),
        command=command,
        ca_file=Path(parsed.ca_file) if parsed.ca_file else None,
        combined=parsed.combined,
        pkcs12=parsed.pkcs12,
        pkcs12_password_file=Path(parsed.pkcs12_password_file) if parsed.pkcs12_password_file else None,
        deadline=deadline,
        min_valid=_min_valid(parsed.min_valid),
        from_env=parsed.from_env,
        verbose=parsed.verbose,
        watch=parse_watch(parsed, command),
    )


def _min_valid(text: str) -> dt.timedelta:
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise UsageError(f"--min-valid: {exc}") from None


def read_input_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror}") from None


def read_password(path: Path) -> bytes:
    """The password in a file, without its trailing newline."""
    password = read_input_file(path, "--pkcs12-password-file").rstrip(b"\r\n")
    if not password:
        raise UsageError(f"--pkcs12-password-file {path} is empty")
    return password


def read_anchor(args: FetchArgs) -> str | None:
    if args.ca_file is None:
        return None
    text = read_input_file(args.ca_file, "--ca-file").decode("ascii", "replace")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise UsageError(f"--ca-file {args.ca_file} holds no PEM certificate")
    return text


Say = Callable[[str], None]


def obtain_from_aws(
    args: FetchArgs, anchor_pem: str | None, say: Say, environ: Mapping[str, str] | None = None
) -> TrustedFetch:
    """Fetch the set and its trust bundle (awscrt's signer when the
    environment alone decides where and as whom, else botocore's default
    credentials chain), retrying transient failures."""
    from certrotor.client.fetch import retry_within, secret_reader
    from certrotor.client.trust import fetch_trusted
    from certrotor.services.reader import SetReader

    # The clock starts before the client is made: the deadline covers it all.
    secrets, how = secret_reader(args.deadline, os.environ if environ is None else environ)
    say(f"reading with {how}")
    reader = SetReader(secrets)

    def attempt() -> TrustedFetch:
        return fetch_trusted(reader, args.set_name, anchor_pem=anchor_pem, min_remaining=args.min_valid)

    def retrying(number: int, delay: float, exc: BaseException) -> None:
        say(f"attempt {number} failed ({type(exc).__name__}); retrying in {delay:.2f}s")

    fetched = retry_within(args.deadline, attempt, on_retry=retrying)
    say(f"read version {fetched.verified.manifest.version} in {reader.last.calls} AWS call(s)")
    return fetched


def obtain_from_env(args: FetchArgs, anchor_pem: str | None, environ: Mapping[str, str], say: Say) -> TrustedFetch:
    """The set from its injected variables, verified as in AWS mode: to
    --ca-file, else to the injected trust bundle (CERTROTOR_TRUST), else to
    the chain's own top certificate."""
    from certrotor.client.fetch import utc_now, verify_fetched
    from certrotor.client.injected import TRUST_VARIABLE, assemble_from_env, trust_from_env
    from certrotor.client.trust import TrustedFetch, verify_with_anchors

    assembled = assemble_from_env(args.set_name, environ)
    trust_pem = trust_from_env(environ)
    if trust_pem is None and assembled.manifest.trust and anchor_pem is None:
        say(
            f"the set names the trust bundle {assembled.manifest.trust} but {TRUST_VARIABLE} is not set: "
            "inject it in the task's secrets to verify against it and write trust.pem"
        )
    if anchor_pem is None and trust_pem:
        verified = verify_with_anchors(assembled, args.set_name, trust_pem, now=utc_now(), min_remaining=args.min_valid)
        return TrustedFetch(verified, trust_pem, f"trust bundle {assembled.manifest.trust or TRUST_VARIABLE}")
    verified = verify_fetched(assembled, args.set_name, anchor_pem=anchor_pem, min_remaining=args.min_valid)
    return TrustedFetch(verified, trust_pem or None, "--ca-file" if anchor_pem else "the chain's own top certificate")


def fetch_and_write(args: FetchArgs, environ: Mapping[str, str], say: Say) -> WrittenFiles:
    """Obtain, verify and write the set; raises on any failure, having written nothing."""
    anchor_pem = read_anchor(args)
    password = read_password(args.pkcs12_password_file) if args.pkcs12_password_file else None
    if args.from_env:
        fetched = obtain_from_env(args, anchor_pem, environ, say)
    else:
        fetched = obtain_from_aws(args, anchor_pem, say, environ)
    verified, trust_pem, checked = fetched.verified, fetched.trust_pem, fetched.checked_against
    if anchor_pem is None and trust_pem is None:
        # Without a CA to trust, the checks prove the set is whole and
        # consistent, not who issued it: whoever can write the secrets could
        # supply a self-signed chain.
        say(
            "no --ca-file and no trust bundle: the chain is checked against its own top certificate "
            "(consistency, not authenticity)"
        )
    say(f"verified serial {verified.manifest.serial} against {checked}, valid until {verified.manifest.not_after}")
    files = write_material(
        args.directory,
        verified.key_pem,
        verified.bundle,
        combined=args.combined,
        pkcs12=args.pkcs12,
        pkcs12_password=password,
        trust_pem=trust_pem,
    )
    say(f"wrote {', '.join(p.name for p in files.paths())} to {files.directory}")
    return files


def exit_code_for(exc: BaseException) -> int:
    """The one place failures become exit codes."""
    if isinstance(exc, UsageError):
        return EXIT_USAGE
    if isinstance(exc, MaterialDirectoryError):
        return EXIT_FILES
    if isinstance(exc, LayoutError | BundleError | PolicyError):
        return EXIT_REFUSED
    if isinstance(exc, AwsError):
        return EXIT_AWS
    if "botocore" in sys.modules:  # only a botocore path can raise its errors
        from botocore.exceptions import BotoCoreError

        if isinstance(exc, BotoCoreError):
            return EXIT_AWS
    return EXIT_SOFTWARE


def child_environment(args: FetchArgs, environ: Mapping[str, str]) -> dict[str, str] | None:
    """The command's environment: in env mode, without the material variables."""
    if not args.from_env:
        return None
    from certrotor.client.injected import without_material

    return without_material(environ)


def exec_command(command: Sequence[str], env: dict[str, str] | None) -> int:
    """Replace this process with `command`; returns only if that fails."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if env is None:
            os.execvp(command[0], list(command))  # noqa: S606 - exec is the point
        else:
            os.execvpe(command[0], list(command), env)  # noqa: S606
    except FileNotFoundError:
        _complain(None, f"{command[0]}: command not found")
        return EXIT_NOT_FOUND
    except OSError as exc:
        _complain(None, f"cannot run {command[0]}: {exc.strerror}")
        return EXIT_NOT_EXECUTABLE
    return EXIT_SOFTWARE  # pragma: no cover - exec does not return


def _complain(set_name: str | None, reason: str) -> None:
    where = f"{set_name}: " if set_name else ""
    # One line, whatever the message holds.
    print(f"{PROG}: {where}{' '.join(reason.split())}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    # No logging set-up here: env mode logs nothing and imports no SDK; every
    # AWS client is made by secrets_client, which quiets the SDK's loggers.
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(arguments)
    except UsageError as exc:
        _complain(None, f"{exc} (see {PROG} --help)")
        return EXIT_USAGE

    def say(line: str) -> None:
        if args.verbose:
            print(f"{PROG}: {args.set_name}: {line}", file=sys.stderr, flush=True)

    try:
        if args.watch is not None:
            from certrotor.client.watch import run_watch

            return run_watch(args, os.environ, say)
        fetch_and_write(args, os.environ, say)
    # Every failure, expected or not, ends as one line and an exit code.
    except Exception as exc:
        code = exit_code_for(exc)
        if code == EXIT_SOFTWARE:
            if args.verbose:
                import traceback

                traceback.print_exc()
            _complain(args.set_name, f"unexpected error: {type(exc).__name__}: {exc}")
        else:
            _complain(args.set_name, str(exc) or type(exc).__name__)
        return code
    if not args.command:
        return EXIT_OK
    say(f"exec {args.command[0]}")
    return exec_command(args.command, child_environment(args, os.environ))


if __name__ == "__main__":
    sys.exit(main())

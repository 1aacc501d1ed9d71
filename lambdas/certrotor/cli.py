"""The `certrotor` command: one entry point, subcommands from their modules.

Each module in COMMAND_MODULES has `register(subparsers)`, which adds its
subparser and sets `run` (a callable taking the parsed args, returning the
exit code). Modules are imported only when the command line is parsed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

COMMAND_MODULES: tuple[str, ...] = (
    "certrotor.local.demo",
    "certrotor.operator",
    "certrotor.fleet.commands",
    "certrotor.ca_commands",
    "certrotor.client.request",
)


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (subcommands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="certrotor", description=__doc__.splitlines()[0] if __doc__ else None)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from certrotor.quiet_logs import keep_secrets_out_of_logs

    keep_secrets_out_of_logs()
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    # Whatever a command did not handle still ends as one line and an exit code.
    except Exception as exc:
        code, reason = _outcome(exc)
        print(f"certrotor {args.command}: {' '.join(reason.split())[:300]}", file=sys.stderr, flush=True)
        return code


EXIT_FAILED = 1
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_AWS = 3
EXIT_SOFTWARE = 70  # sysexits EX_SOFTWARE: a bug


def _outcome(exc: Exception) -> tuple[int, str]:
    """The exit code and line for an exception a command let through."""
    from botocore.exceptions import BotoCoreError

    from certrotor.errors import CertrotorError

    if isinstance(exc, BotoCoreError):
        # No region, no credentials, no connection: the environment, not the input.
        return EXIT_AWS, f"AWS: {exc}"
    if isinstance(exc, CertrotorError):
        return EXIT_FAILED, str(exc) or type(exc).__name__
    return EXIT_SOFTWARE, f"unexpected error: {type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())

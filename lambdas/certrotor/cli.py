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

COMMAND_MODULES: tuple[str, ...] = (
    "certrotor.local.demo",
    "certrotor.operator",
    "certrotor.fleet.commands",
    "certrotor.ca_commands",
    "certrotor.client.request",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="certrotor", description=__doc__.splitlines()[0] if __doc__ else None)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from certrotor.quiet_logs import keep_secrets_out_of_logs

    keep_secrets_out_of_logs()
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

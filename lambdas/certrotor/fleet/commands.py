"""Fleet commands: inventory, dry run and mass re-key of a rotator's sets.

    certrotor status [--rotator ID] [--set GLOB] [--json] [--alarm-days N]
    certrotor plan --config FILE [--rotator ID] [--offline] [--json]
    certrotor rekey (--all | --set GLOB | --ca ARN) --reason TEXT [--max-rate N]
                    [--state-machine ARN] [--since TIME] [--no-wait]
    certrotor rekey --status EXECUTION

They use the operator's own AWS credentials and region (the usual boto3
environment). status reads only; rekey starts the re-key state machine
that the rotator's construct deploys (its ARN is the stack output
RekeyStateMachineArn).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import Any

from certrotor.cli_arguments import non_negative_int, pca_arn
from certrotor.cli_arguments import rotator as rotator_argument
from certrotor.errors import CertrotorError
from certrotor.fleet import DEFAULT_ROTATOR_ID
from certrotor.fleet.quotas import DEFAULT_HEADROOM, PerRotation, pacing, rotation_concurrency

EXIT_FAILED = 1
EXIT_USAGE = 64
STATE_MACHINE_ENV = "CERTROTOR_REKEY_STATE_MACHINE"
ROTATOR_ENV = "CERTROTOR_ROTATOR"


def _say(line: str) -> None:
    print(line, flush=True)


def _complain(command: str, reason: str) -> None:
    print(f"certrotor {command}: {' '.join(reason.split())}", file=sys.stderr, flush=True)


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service)  # type: ignore[call-overload]


# --------------------------------------------------------------------------
# status

_COLUMNS = (
    ("SET", "name"),
    ("STATE", "state"),
    ("SERIAL", "serial"),
    ("NOT AFTER", "not_after"),
    ("DAYS", "days_left"),
    ("LAST ROTATION", "last_rotated"),
    ("OUTCOME", "last_outcome"),
    ("NEXT", "next_rotation"),
    ("REDEPLOY", "redeploy"),
    ("ISSUER CA", "issuer_ca"),
    ("SUPERSEDED", "superseded"),
)


def status_table(rows: list[dict[str, Any]]) -> list[str]:
    cells = [[h for h, _ in _COLUMNS]] + [["-" if r.get(k) is None else str(r[k]) for _, k in _COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_COLUMNS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]


def run_status(args: argparse.Namespace, secrets: Any = None, now: dt.datetime | None = None) -> int:
    from certrotor.fleet.inventory import UNHEALTHY, Pacer, list_sets, read_status, select

    secrets = secrets or _client("secretsmanager")
    now = now or dt.datetime.now(dt.UTC)
    pacer = Pacer(args.reads_per_second)
    try:
        entries = select(list(list_sets(secrets, args.rotator, pacer)), args.set)
    except CertrotorError as exc:
        _complain("status", str(exc))
        return EXIT_FAILED
    statuses = []
    for entry in sorted(entries, key=lambda e: str(e["Name"])):
        pacer.wait()
        pacer.wait()  # DescribeSecret and GetSecretValue
        statuses.append(read_status(secrets, entry["Name"], now, args.alarm_days))
    rows = [s.as_json() for s in statuses]
    unhealthy = [s for s in statuses if s.state in UNHEALTHY]
    if args.json:
        _say(json.dumps({"rotator": args.rotator, "sets": rows, "unhealthy": len(unhealthy)}, indent=2))
    else:
        for line in status_table(rows):
            _say(line)
        _say(f"{len(rows)} set(s), {len(unhealthy)} needing attention")
        for bad in unhealthy:
            _say(f"  {bad.name}: {'; '.join(bad.problems)}")
    return EXIT_FAILED if unhealthy else 0


# --------------------------------------------------------------------------
# rekey


def run_rekey(args: argparse.Namespace, secrets: Any = None, sfn: Any = None) -> int:
    from certrotor.fleet import rekey

    sfn = sfn or _client("stepfunctions")
    try:
        if args.status:
            current = rekey.progress(sfn, args.status)
            _say(current.line())
            return rekey.report(current, _say)
        if not (args.all or args.set or args.ca):
            _complain("rekey", "choose the sets: --all, --set GLOB or --ca ARN")
            return EXIT_USAGE
        if not args.reason or not args.reason.strip():
            _complain("rekey", "--reason is required (it is recorded in the execution's input)")
            return EXIT_USAGE
        if not args.state_machine:
            _complain("rekey", f"--state-machine is required (or set {STATE_MACHINE_ENV})")
            return EXIT_USAGE
        try:
            paced = pacing(PerRotation(), headroom=args.headroom, max_rate=args.max_rate)
        except ValueError as exc:
            _complain("rekey", str(exc))
            return EXIT_USAGE
        document = rekey.build_input(
            secrets or _client("secretsmanager"),
            args.rotator,
            paced,
            args.since or rekey.since_now(),
            args.reason.strip(),
            pattern=args.set,
            ca=args.ca,
            every_set=args.all,
        )
        execution = rekey.start(sfn, args.state_machine, document)
    except CertrotorError as exc:
        _complain("rekey", str(exc))
        return EXIT_FAILED
    total = document["total"]
    _say(f"re-key of {total} set(s) started: {execution}")
    _say(
        f"pacing: {paced.concurrency} in flight, one rotation per slot every {paced.wait_seconds} s on average "
        f"= {paced.rate:.2f} rotations/s (quota bound {PerRotation().bound():.2f}/s, headroom {args.headroom:.0%}), "
        f"about {paced.function_concurrency()} rotation function instances busy "
        f"(of {rotation_concurrency()} reserved by default); "
        f"about {total / paced.rate / 60:.0f} min; sets rotated since {document['since']} are skipped"
    )
    if args.no_wait:
        _say(f"follow with: certrotor rekey --status {execution}")
        return 0
    try:
        current = rekey.follow(sfn, execution, _say)
    except CertrotorError as exc:
        _complain("rekey", str(exc))
        return EXIT_FAILED
    return rekey.report(current, _say)


# --------------------------------------------------------------------------
# plan


def _value(value: Any) -> str:
    if isinstance(value, dict) and "expression" in value:  # a schedule: as written
        return f"{value['expression']}" + (f" window {value['window']}" if value.get("window") else "")
    text = "-" if value is None else json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _rules(rules: dict[str, Any] | None) -> str:
    if not rules:
        return "none"
    window = f" window {rules['Duration']}" if rules.get("Duration") else ""
    return f"{rules.get('ScheduleExpression') or rules.get('AutomaticallyAfterDays')}{window}"


def plan_lines(result: Any) -> list[str]:
    """The plan for people: one line per created, changed, removed set, then
    the budget and the schedule windows."""
    lines = []
    for name in result.created:
        schedule = result.schedules[name]
        window = f" window {schedule.window}" if schedule.window else ""
        lines.append(f"+ {name} (created; first rotation on deploy; scheduled {schedule.expression}{window})")
    for change in result.changed:
        what = [f"{key} {_value(old)} -> {_value(new)}" for key, (old, new) in change.fields.items()]
        if change.schedule is not None:
            old_rules, new_rules = change.schedule
            what.append(f"deployed schedule {_rules(old_rules)} -> {_rules(new_rules)}")
        if change.rotates_on_deploy:
            effect = "rotates on deploy (schedule updated, rotate_immediately)"
        elif change.new_certificate:
            effect = (
                f"new certificate needed ({', '.join(change.new_certificate)}): at its next rotation, or re-key now"
            )
        else:
            effect = "applies without a rotation"
        lines.append(f"~ {change.name}: {'; '.join(what)}; {effect}")
    for name in result.removed:
        lines.append(f"- {name} (removed: rotation schedule deleted, secrets and keys retained)")
    for problem in result.unreadable:
        lines.append(f"? {problem}")
    lines.append(
        f"= {len(result.kept)} set(s) unchanged; {len(result.created)} created, {len(result.changed)} changed, "
        f"{len(result.removed)} removed"
    )
    lines.append(
        f"budget on deploy: {result.rotations_on_deploy} rotation(s) = {result.writes:.0f} Secrets Manager writes, "
        f"{result.issuances:.0f} certificates; at least {result.seconds_at_bound:.1f} s at the quota bound of "
        f"{result.bound:.2f} rotations/s"
    )
    if result.rotations_to_apply:
        lines.append(
            f"to apply now: {result.rotations_to_apply} more rotation(s) (certrotor rekey) = "
            f"{result.writes_to_apply:.0f} writes, {result.issuances_to_apply:.0f} certificates"
        )
    for load in result.windows:
        written = load.expression + (f" window {load.window}" if load.window else "")
        lines.append(
            f"schedule {written}: {load.sets} set(s) deployed on {load.deployed_schedules} distinct schedule(s); "
            f"busiest hour {load.peak_rotations_per_second:.3g} rotations/s "
            f"({load.unspread_rotations_per_second:.3g}/s if all rotated together); "
            f"{'fits' if load.fits else 'does NOT fit'} the quotas"
        )
    lines.append(
        f"fleet: busiest hour {result.peak_rotations_per_second:.3g} rotations/s against "
        f"{result.bound * (1 - DEFAULT_HEADROOM):.2f}/s (the bound less {DEFAULT_HEADROOM:.0%} headroom); "
        f"{'fits' if result.fits else 'does NOT fit'}"
    )
    return lines


def run_plan(args: argparse.Namespace, secrets: Any = None) -> int:
    from pathlib import Path

    from certrotor.config import load_config_json
    from certrotor.fleet.inventory import Pacer
    from certrotor.fleet.plan import DeployedSet, plan, read_deployed

    try:
        config = load_config_json(Path(args.config).read_text(encoding="utf-8"))
    except OSError as exc:
        _complain("plan", f"cannot read {args.config}: {exc.strerror}")
        return EXIT_USAGE
    except CertrotorError as exc:
        _complain("plan", str(exc))
        return EXIT_USAGE
    deployed: dict[str, DeployedSet] = {}
    if not args.offline:
        try:
            # ListSecrets pages of 100 sets, paced: 10,000 sets in about 5 s.
            deployed = read_deployed(secrets or _client("secretsmanager"), args.rotator, Pacer(20.0))
        except CertrotorError as exc:
            _complain("plan", f"{exc} (use --offline to plan against nothing deployed)")
            return EXIT_FAILED
    result = plan(config, deployed)
    if args.json:
        _say(json.dumps(result.as_json(), indent=2))
        return 0
    for line in plan_lines(result):
        _say(line)
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def register(subparsers: Any) -> None:
    rotator_help = f"the rotator's id, tagged certrotor:rotator on its sets (default ${ROTATOR_ENV} or certrotor)"
    rotator = os.environ.get(ROTATOR_ENV, DEFAULT_ROTATOR_ID)

    status = subparsers.add_parser(
        "status",
        help="every set of a rotator: serial, expiry, last and next rotation, stuck rotations",
        description="List every set the rotator manages and its health; exit 1 if any set is expired, "
        "inside its alarm window, stuck or unreadable.",
    )
    status.add_argument("--rotator", default=rotator, type=rotator_argument, help=rotator_help)
    status.add_argument("--set", metavar="GLOB", help="only sets whose name matches (e.g. 'tls/*')")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--alarm-days", type=non_negative_int, default=7, help="alarm window in days (default 7)")
    status.add_argument(
        "--reads-per-second",
        type=_positive_float,
        default=200.0,
        help="pace DescribeSecret/GetSecretValue (10,000 TPS account quota; default 200)",
    )
    status.set_defaults(run=run_status)

    plan_parser = subparsers.add_parser(
        "plan",
        help="what a config would change against what is deployed, its budget and schedule windows",
        description="Compare a config (JSON, as the CDK app takes it) with the sets deployed for the "
        "rotator, spec by spec (read from each manifest): created, changed (which fields, and whether a "
        "new certificate is needed), rotated by the deploy, and removed sets; the writes and certificates "
        "those rotations need; each set's deployed (spread) schedule and the busiest hour's rotations per "
        "second against the quotas.",
    )
    plan_parser.add_argument("--config", required=True, help="the config file (JSON)")
    plan_parser.add_argument("--rotator", default=rotator, help=rotator_help)
    plan_parser.add_argument("--offline", action="store_true", help="plan against nothing deployed (no AWS calls)")
    plan_parser.add_argument("--json", action="store_true", help="machine-readable output")
    plan_parser.set_defaults(run=run_plan)

    rekey = subparsers.add_parser(
        "rekey",
        help="re-key many sets on Step Functions, paced under the account's quotas",
        description="Start the re-key state machine for the selected sets (RotateSecret, so the usual "
        "four rotation steps run), paced under the Secrets Manager write and Private CA issuance quotas, "
        "and follow it. A second run or a redrive skips sets rotated since --since.",
    )
    chosen = rekey.add_argument_group("selection (at least one)")
    chosen.add_argument("--all", action="store_true", help="every set of the rotator")
    chosen.add_argument("--set", metavar="GLOB", help="sets whose name matches")
    chosen.add_argument(
        "--ca", metavar="ARN", type=pca_arn, help="sets whose current certificate was issued by this CA"
    )
    rekey.add_argument("--reason", help="why (recorded in the execution's input)")
    rekey.add_argument("--max-rate", type=_positive_float, help="at most this many rotations per second")
    rekey.add_argument(
        "--headroom",
        type=float,
        default=DEFAULT_HEADROOM,
        help=f"share of each quota left to scheduled rotations and the issuer (default {DEFAULT_HEADROOM})",
    )
    rekey.add_argument("--since", help="skip sets rotated at or after this UTC time (resume an earlier run)")
    rekey.add_argument("--rotator", default=rotator, type=rotator_argument, help=rotator_help)
    rekey.add_argument(
        "--state-machine",
        default=os.environ.get(STATE_MACHINE_ENV),
        help=f"the re-key state machine's ARN (stack output RekeyStateMachineArn; or ${STATE_MACHINE_ENV})",
    )
    rekey.add_argument("--no-wait", action="store_true", help="start and return; follow with --status")
    rekey.add_argument("--status", metavar="EXECUTION", help="show an execution's progress and failed sets")
    rekey.set_defaults(run=run_rekey)

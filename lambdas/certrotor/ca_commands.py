"""Operator commands for the rotator's CAs and trust bundle.

    certrotor ca rotate --to ARN [--rotator ID] [--disable-old] [--until STAGE] [--parallel 5] [--timeout 900]
                        [--state-machine ARN | --no-state-machine]
    certrotor ca status [--rotator ID]
    certrotor ca pause [--rotator ID]
    certrotor ca rollback [--rotator ID]

They run with the operator's own credentials: ListSecrets (the rotator's sets,
by tag), DescribeSecret/GetSecretValue/TagResource on the manifests,
GetSecretValue/PutSecretValue/UpdateSecretVersionStage on `<rotator>/trust`
(each write is a compare-and-swap), RotateSecret, and on the
CAs GetCertificateAuthorityCertificate (and UpdateCertificateAuthority for
--disable-old). `rotate` prints a line per stage and per batch of sets;
interrupt it or run `pause` from another shell, and `rotate` again resumes.

The move (and a rollback) runs through the rotator's re-key state machine
(`<rotator>-rekey`, found with ListStateMachines, or --state-machine) when
it exists: StartExecution for the sets issued by the CA moved away from,
DescribeExecution/GetExecutionHistory to follow it, StopExecution on a
pause. Without one (or with --no-state-machine) it rotates set by set in a
paced loop; the first line of the stage says which.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from certrotor.cli_arguments import pca_arn, positive_int, positive_seconds, rotator
from certrotor.errors import CertrotorError

EXIT_FAILED = 1
EXIT_PAUSED = 2
EXIT_USAGE = 64
DEFAULT_ROTATOR = "certrotor"
STATE_MACHINE_ENV = "CERTROTOR_REKEY_STATE_MACHINE"


def _say(line: str) -> None:
    print(line, flush=True)


def _complain(reason: str) -> None:
    print(f"certrotor ca: {' '.join(reason.split())}", file=sys.stderr, flush=True)


def rotator_sets(client: Any, rotator: str) -> list[str]:
    """The manifest secrets tagged as this rotator's (the fleet contract)."""
    from certrotor.fleet import ROTATOR_TAG

    names: list[str] = []
    kwargs: dict[str, Any] = {
        "Filters": [{"Key": "tag-key", "Values": [ROTATOR_TAG]}, {"Key": "tag-value", "Values": [rotator]}]
    }
    while True:
        page = client.list_secrets(**kwargs)
        for item in page.get("SecretList", []):
            tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
            if tags.get(ROTATOR_TAG) == rotator:
                names.append(item["Name"])
        if not page.get("NextToken"):
            return names
        kwargs["NextToken"] = page["NextToken"]


def aws_ca_rotation(rotator: str, args: argparse.Namespace) -> Any:
    """A CaRotation wired to AWS through the default credentials chain."""
    import boto3

    from certrotor.aws.errors import aws_call
    from certrotor.aws.pca import PrivateCA
    from certrotor.aws.rotation_trigger import SecretsManagerRotationTrigger
    from certrotor.aws.secrets import SecretStore
    from certrotor.services.ca_rotation import CaPorts, CaRotation
    from certrotor.services.trust import TrustStore

    session = boto3.session.Session()
    sm = session.client("secretsmanager")
    pca = session.client("acm-pca")

    def disable(arn: str) -> None:
        with aws_call(f"UpdateCertificateAuthority {arn}"):
            pca.update_certificate_authority(CertificateAuthorityArn=arn, Status="DISABLED")

    secrets = SecretStore(sm)
    ports = CaPorts(
        secrets=secrets,
        trust=TrustStore(secrets, rotator),
        trigger=SecretsManagerRotationTrigger(sm),
        ca_chain=lambda arn: PrivateCA(arn, pca).ca_certificate_chain(),
        disable_ca=disable,
        rekey=_rekey(session, sm, rotator, args),
    )
    with aws_call("ListSecrets"):
        sets = rotator_sets(sm, rotator)
    return CaRotation(
        ports, sets, say=_say, parallel=getattr(args, "parallel", 5), timeout=getattr(args, "timeout", 900.0)
    )


def _rekey(session: Any, sm: Any, rotator: str, args: argparse.Namespace) -> Any:
    """The re-key state machine to move sets with, or None (the paced loop)."""
    if getattr(args, "no_state_machine", False) or getattr(args, "ca_command", None) in ("status", "pause"):
        return None
    from certrotor.fleet.quotas import DEFAULT_HEADROOM, PerRotation, pacing
    from certrotor.fleet.rekey import RekeyExecutions, find_state_machine

    sfn = session.client("stepfunctions")
    arn = getattr(args, "state_machine", None)
    if arn is None:
        try:
            arn = find_state_machine(sfn, rotator)
        except CertrotorError as exc:
            _say(f"cannot look for the re-key state machine ({exc}); sets are moved in the paced loop")
            return None
        if arn is None:
            return None
    return RekeyExecutions(sfn, sm, arn, rotator, pacing(PerRotation(), headroom=DEFAULT_HEADROOM))


def print_status(state: dict[str, Any] | None) -> None:
    if state is None:
        _say("no CA rotation recorded")
        return
    sets = state.get("sets", {})
    moved = sum(1 for s in sets.values() if s.get("move_done"))
    _say(f"CA rotation {state.get('from')} -> {state.get('to')}")
    _say(f"stage: {state.get('stage')}{' (paused)' if state.get('paused') else ''}")
    _say(f"sets moved: {moved}/{len(sets) or '?'}; updated {state.get('updated')}")
    _say(json.dumps(sets, sort_keys=True))


def _run(args: argparse.Namespace) -> int:
    from certrotor.services.ca_rotation import Paused

    try:
        rotation = aws_ca_rotation(args.rotator, args)
        if args.ca_command == "rotate":
            print_status(rotation.rotate(args.to, disable_old=args.disable_old, until=args.until))
        elif args.ca_command == "status":
            print_status(rotation.status())
        elif args.ca_command == "pause":
            rotation.pause()
        else:
            print_status(rotation.rollback())
    except Paused as exc:
        _complain(str(exc))
        return EXIT_PAUSED
    except CertrotorError as exc:
        _complain(str(exc))
        return EXIT_FAILED
    return 0


def register(subparsers: Any) -> None:
    ca = subparsers.add_parser("ca", help="rotate the rotator's CA in stages, show, pause or roll back")
    commands = ca.add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    rotate = commands.add_parser("rotate", help="move every set to another CA with a trust overlap (resumable)")
    rotate.add_argument("--to", required=True, metavar="ARN", type=pca_arn, help="the Private CA to move to")
    rotate.add_argument("--disable-old", action="store_true", help="disable the old CA once no set uses it")
    rotate.add_argument("--parallel", type=positive_int, default=5, help="rotations in flight at once (default 5)")
    rotate.add_argument(
        "--timeout", type=positive_seconds, default=900.0, help="seconds to wait for one set (default 900)"
    )
    rotate.add_argument(
        "--until", choices=("move", "prune", "disable"), help="stop before this stage (check, then run again)"
    )
    machine = rotate.add_mutually_exclusive_group()
    machine.add_argument(
        "--state-machine",
        default=os.environ.get(STATE_MACHINE_ENV),
        metavar="ARN",
        help=f"the re-key state machine to move the sets with (default ${STATE_MACHINE_ENV}, "
        "else <rotator>-rekey if deployed)",
    )
    machine.add_argument("--no-state-machine", action="store_true", help="move the sets in the paced loop, set by set")
    for name, text in (
        ("status", "the CA rotation's stage and per-set progress"),
        ("pause", "stop the running CA rotation after its current set"),
        ("rollback", "move every set back to the old CA (only before the old CA left the bundle)"),
    ):
        commands.add_parser(name, help=text)
    for sub in commands.choices.values():
        sub.add_argument(
            "--rotator", default=DEFAULT_ROTATOR, type=rotator, help="the rotator's id (default certrotor)"
        )
        sub.set_defaults(run=_run)

"""Operator commands for the rotator's CAs and trust bundle.

    certrotor ca rotate --to ARN [--rotator ID] [--disable-old] [--until STAGE] [--parallel 5] [--timeout 900]
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
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from certrotor.cli_arguments import pca_arn, positive_int, positive_seconds, rotator
from certrotor.errors import CertrotorError

EXIT_FAILED = 1
EXIT_PAUSED = 2
EXIT_USAGE = 64
DEFAULT_ROTATOR = "certrotor"


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
    )
    with aws_call("ListSecrets"):
        sets = rotator_sets(sm, rotator)
    return CaRotation(
        ports, sets, say=_say, parallel=getattr(args, "parallel", 5), timeout=getattr(args, "timeout", 900.0)
    )


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

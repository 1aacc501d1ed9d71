"""The bad-input matrix: every boundary's bad inputs, as tables (cases.py),
each checked the same way: the status or exit code and one clear message,
nothing written to AWS (the emulator's whole state compared before and
after), nothing left on disk, no key bytes in any output.

The rules each table probes are in docs/INPUTS.md; README states the count.
"""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import certrotor.local.emulator as emulator_module
from certrotor import cli
from certrotor.client.entrypoint import main as fetch_main
from certrotor.config import load_config
from certrotor.errors import CertrotorError, ConfigError
from certrotor.local.ca import LocalCA
from certrotor.local.driver import LambdaContext

from . import cases
from .conftest import IDENTITIES, Deployment, assert_no_key_bytes, assert_one_clear_line, aws_state, tree


@contextmanager
def changes_nothing(deployment: Deployment, *paths: Path) -> Iterator[None]:
    """The emulator's state and the given paths are the same after the block."""
    state, files = aws_state(deployment.emulator), [tree(p) for p in paths]
    yield
    assert aws_state(deployment.emulator) == state, "the refused input changed something in AWS"
    assert [tree(p) for p in paths] == files, "the refused input left something on disk"


# --------------------------------------------------------------------------
# The issuer: signed HTTP to the loopback Function URL, then the real handler


def signed(
    deployment: Deployment,
    method: str,
    path: str,
    data: bytes = b"",
    content_type: str | None = None,
    access_key: str = "AKIAORDERS",
) -> tuple[int, str]:
    url = deployment.gateway.url + path
    headers = {"Content-Type": content_type} if content_type else {}
    request = AWSRequest(method=method, url=url, data=data, headers=headers)
    SigV4Auth(Credentials(access_key, IDENTITIES[access_key].secret_key), "lambda", "us-east-1").add_auth(request)
    prepared = urllib.request.Request(  # noqa: S310 - the loopback gateway
        url, data=data or None, method=method, headers=dict(request.headers.items())
    )
    try:
        with urllib.request.urlopen(prepared, timeout=60) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def assert_refused_answer(deployment: Deployment, status: int, text: str, want_status: int, want_error: str) -> None:
    body = json.loads(text)
    assert (status, body.get("error")) == (want_status, want_error) or (
        status == want_status and re.fullmatch(want_error, str(body.get("error")))
    ), f"{status} {body}"
    assert_one_clear_line(str(body["message"]), r"\S")
    assert_no_key_bytes(deployment, text)


@pytest.mark.parametrize(
    ("access_key", "make_csr", "validity", "status", "error"),
    [pytest.param(*row[1:], id=row[0]) for row in cases.CSR_CASES],
)
def test_a_bad_certificate_request_is_refused(
    deployment: Deployment, access_key: str, make_csr: Callable[[], Any], validity: Any, status: int, error: str
) -> None:
    csr = make_csr()
    body = {"validity_days": validity} if csr is None else {"csr": csr, "validity_days": validity}
    with changes_nothing(deployment):
        answer = signed(deployment, "POST", "/certificates", json.dumps(body).encode(), "application/json", access_key)
    assert_refused_answer(deployment, *answer, status, error)


@pytest.mark.parametrize(
    ("data", "content_type", "status", "error"), [pytest.param(*row[1:], id=row[0]) for row in cases.BODY_CASES]
)
def test_a_bad_request_body_is_refused(
    deployment: Deployment, data: bytes, content_type: str, status: int, error: str
) -> None:
    with changes_nothing(deployment):
        answer = signed(deployment, "POST", "/certificates", data, content_type)
    assert_refused_answer(deployment, *answer, status, error)


@pytest.mark.parametrize(
    ("access_key", "method", "path", "status", "error"),
    [pytest.param(*row[1:], id=row[0]) for row in cases.ROUTE_CASES],
)
def test_a_bad_set_name_or_route_is_refused(
    deployment: Deployment, access_key: str, method: str, path: str, status: int, error: str
) -> None:
    path = path.replace("{good}", deployment.good.replace("/", "%2F"))
    with changes_nothing(deployment):
        answer = signed(deployment, method, path, access_key=access_key)
    assert_refused_answer(deployment, *answer, status, error)


@pytest.mark.parametrize(
    ("lines", "status", "error"), [pytest.param(*row[1:], id=row[0]) for row in cases.FRAMING_CASES]
)
def test_bad_framing_is_answered_at_once_and_the_connection_closed(
    deployment: Deployment, lines: list[str], status: int, error: str
) -> None:
    host = deployment.gateway.url.removeprefix("http://")
    address, port = host.split(":")
    raw = "\r\n".join(["POST /certificates HTTP/1.1", f"Host: {host}", *lines]) + (
        "\r\n\r\n" if "" not in lines else ""
    )
    with changes_nothing(deployment), socket.create_connection((address, int(port)), timeout=10) as connection:
        connection.sendall(raw.encode("latin-1"))
        if "" in lines:
            connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.decode("latin-1").partition("\r\n\r\n")
    assert head.split()[1] == str(status), head
    assert_refused_answer(deployment, status, body, status, error)


# --------------------------------------------------------------------------
# certrotor-fetch, in this process (the console script's code path)


@pytest.fixture
def fetch(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[list[str]], tuple[int, str]]:
    for name, value in deployment.emulator.env().items():
        monkeypatch.setenv(name, value)

    def run(args: list[str]) -> tuple[int, str]:
        capsys.readouterr()
        code = fetch_main(args)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    """Paths the argument cases name: regular files, refused directories."""
    (tmp_path / "file").write_text("not a certificate\n")
    (tmp_path / "empty").write_text("")
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "symlink").symlink_to(tmp_path / "real")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o750)
    blocked = tmp_path / "blocked"
    blocked.mkdir(mode=0o700)
    (blocked / "key.pem").mkdir()
    combined_link = tmp_path / "combined_link"
    combined_link.mkdir(mode=0o700)
    (combined_link / "combined.pem").symlink_to(tmp_path / "file")
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(LocalCA.create_root().pem)
    names = ("file", "empty", "symlink", "shared", "blocked", "combined_link")
    return {"dir": str(tmp_path / "out"), "other_ca": str(other_ca)} | {n: str(tmp_path / n) for n in names}


@pytest.mark.parametrize(
    ("arguments", "code", "message"), [pytest.param(*row[1:], id=row[0]) for row in cases.FETCH_ARGUMENT_CASES]
)
def test_bad_fetch_arguments_are_refused_and_write_nothing(
    deployment: Deployment,
    fetch: Callable[[list[str]], tuple[int, str]],
    places: dict[str, str],
    tmp_path: Path,
    arguments: list[str],
    code: int,
    message: str,
) -> None:
    argv = ["--set", deployment.good, *(a.format(**places) for a in arguments)]
    if "--dir" not in arguments:
        argv += ["--dir", places["dir"]]
    with changes_nothing(deployment, tmp_path):
        exit_code, output = fetch(argv)
    assert exit_code == code, output
    assert_one_clear_line(output, re.escape(message), "certrotor-fetch:")
    assert_no_key_bytes(deployment, output)
    assert not list(tmp_path.rglob(".staging-*"))


@pytest.mark.parametrize(
    ("set_name", "code", "message"), [pytest.param(*row[1:], id=row[0]) for row in cases.FETCH_SET_CASES]
)
def test_a_bad_set_name_is_refused_by_fetch(
    deployment: Deployment,
    fetch: Callable[[list[str]], tuple[int, str]],
    tmp_path: Path,
    set_name: str,
    code: int,
    message: str,
) -> None:
    with changes_nothing(deployment, tmp_path):
        exit_code, output = fetch(["--set", set_name.format(good=deployment.good), "--dir", str(tmp_path / "out")])
    assert exit_code == code, output
    assert_one_clear_line(output, re.escape(message), "certrotor-fetch:")
    assert_no_key_bytes(deployment, output)


def _real_manifest(deployment: Deployment) -> dict[str, Any]:
    secrets = deployment.emulator.client("secretsmanager")
    return dict(json.loads(secrets.get_secret_value(SecretId=deployment.spare)["SecretString"]))


def _manifest_cases(unparsable_only: bool = False) -> list[Any]:
    # The table needs the real manifest: ids now, values when the test runs.
    placeholder = {"parts": [{"name": "x", "role": "key", "sha256": "0"}]}
    rows = cases.manifest_cases(placeholder)
    return [
        pytest.param(row[0], id=row[0]) for row in rows if not unparsable_only or row[0] not in cases.PARSABLE_MANIFESTS
    ]


@pytest.fixture
def broken_manifest(deployment: Deployment) -> Iterator[Callable[[str], str]]:
    """Make the spare set's current manifest one case's value (a new version
    under a new token, as a writer of the secret could); restore afterwards."""
    secrets = deployment.emulator.client("secretsmanager")
    real = _real_manifest(deployment)
    original = secrets.get_secret_value(SecretId=deployment.spare)
    table = {row[0]: row for row in cases.manifest_cases(real)}

    def apply(case_id: str) -> str:
        _, value, message = table[case_id]
        # Secrets Manager refuses a value over 65,536 characters, and so does
        # the emulator; it holds one here anyway, so that the readers' own
        # bound is what is tested.
        limit = emulator_module.MAX_SECRET_STRING
        emulator_module.MAX_SECRET_STRING = max(limit, len(value))
        try:
            secrets.put_secret_value(SecretId=deployment.spare, SecretString=value, VersionStages=["AWSCURRENT"])
        finally:
            emulator_module.MAX_SECRET_STRING = limit
        return str(message)

    yield apply
    secrets.update_secret_version_stage(
        SecretId=deployment.spare,
        VersionStage="AWSCURRENT",
        MoveToVersionId=original["VersionId"],
        RemoveFromVersionId=secrets.get_secret_value(SecretId=deployment.spare)["VersionId"],
    )


@pytest.mark.parametrize("case_id", _manifest_cases())
def test_a_broken_manifest_is_refused_by_fetch_with_exit_2(
    deployment: Deployment,
    fetch: Callable[[list[str]], tuple[int, str]],
    broken_manifest: Callable[[str], str],
    tmp_path: Path,
    case_id: str,
) -> None:
    message = broken_manifest(case_id)
    with changes_nothing(deployment, tmp_path):
        code, output = fetch(["--set", deployment.spare, "--dir", str(tmp_path / "out")])
    assert code == 2, output
    assert_one_clear_line(output, message, "certrotor-fetch:")
    assert_no_key_bytes(deployment, output)


@pytest.mark.parametrize("case_id", _manifest_cases(unparsable_only=True))
def test_a_broken_manifest_still_gets_a_status_answer(
    deployment: Deployment, broken_manifest: Callable[[str], str], case_id: str
) -> None:
    # GET /sets/{name} answers (so issue-now can follow the repairing rotation)
    broken_manifest(case_id)
    with changes_nothing(deployment):
        status, text = signed(deployment, "GET", "/sets/" + deployment.spare.replace("/", "%2F"))
    body = json.loads(text)
    assert status == 200, text
    assert body["serial"] is None and body["version"]
    assert_no_key_bytes(deployment, text)


# --------------------------------------------------------------------------
# Rotation events, to the real handler in its environment


@pytest.mark.parametrize(
    ("event", "message"), [pytest.param(*row[1:], id=row[0]) for row in cases.ROTATION_EVENT_CASES]
)
def test_a_bad_rotation_event_is_refused_before_anything_is_written(
    deployment: Deployment, event: Any, message: str
) -> None:
    from certrotor.handlers.rotate import lambda_handler

    if isinstance(event, dict):
        event = {k: v.replace("{good}", deployment.good) if isinstance(v, str) else v for k, v in event.items()}
    with (
        changes_nothing(deployment),
        deployment.emulator.activated(deployment.env.lambda_env()),
        pytest.raises(CertrotorError) as refused,
    ):
        lambda_handler(event, LambdaContext())
    assert_one_clear_line(str(refused.value), message)
    assert_no_key_bytes(deployment, str(refused.value))


# --------------------------------------------------------------------------
# certrotor revoke


@pytest.mark.parametrize(
    ("serial", "extra", "code", "message"), [pytest.param(*row[1:], id=row[0]) for row in cases.REVOKE_CASES]
)
def test_a_bad_revocation_is_refused_and_records_nothing(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
    serial: str,
    extra: list[str],
    code: int,
    message: str,
) -> None:
    argv = ["revoke", "--serial", serial, "--table", deployment.gateway.tables.ledger]
    argv += ["--ca-arn", deployment.env.ca_arn, *extra]
    capsys.readouterr()
    with changes_nothing(deployment), deployment.emulator.activated():
        exit_code = cli.main(argv)
    captured = capsys.readouterr()
    assert exit_code == code, captured
    assert_one_clear_line(captured.err, re.escape(message), "certrotor revoke:")
    assert captured.out == ""


# --------------------------------------------------------------------------
# The certrotor command's other arguments


@pytest.mark.parametrize(("argv", "code", "message"), [pytest.param(*row[1:], id=row[0]) for row in cases.CLI_CASES])
def test_a_bad_command_line_is_one_line_and_changes_nothing(
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    for name, value in deployment.emulator.env().items():
        monkeypatch.setenv(name, value)
    if argv[0] == "no-region":
        argv = argv[1:]
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(name, raising=False)
    argv = [a.format(dir=tmp_path / "out") for a in argv]
    capsys.readouterr()
    with changes_nothing(deployment, tmp_path):
        try:
            exit_code = cli.main(argv)
        except SystemExit as exit_:
            exit_code = int(exit_.code or 0)
    captured = capsys.readouterr()
    assert exit_code == code, captured
    assert_one_clear_line(captured.err, re.escape(message), "certrotor")
    assert_no_key_bytes(deployment, captured.out, captured.err)


# --------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(("changes", "field"), [pytest.param(*row[1:], id=row[0]) for row in cases.CONFIG_CASES])
def test_a_bad_configuration_is_one_line_naming_the_field(changes: list[tuple[str, Any]], field: str) -> None:
    data = cases.config_with(*changes)
    with pytest.raises(ConfigError) as refused:
        load_config(data)
    assert_one_clear_line(str(refused.value), field)


APP = Path(__file__).resolve().parents[3] / "app.py"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param([("issuer_policies.0.allow_ip", "false")], "allow_ip", id="synth-allow-ip"),
        pytest.param([("service_name", 123)], "service_name", id="synth-service-name"),
    ],
)
def test_python_app_py_reports_a_bad_configuration_in_one_line(
    tmp_path: Path, changes: list[tuple[str, Any]], field: str
) -> None:
    import subprocess
    import sys

    env = {
        **os.environ,
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "CDK_CONTEXT_JSON": json.dumps({"certrotor": cases.config_with(*changes)}),
    }
    done = subprocess.run([sys.executable, str(APP)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert_one_clear_line(done.stderr, field, "certrotor: configuration error:")
    assert not (tmp_path / "cdk.out").exists() or not list((tmp_path / "cdk.out").glob("*.template.json"))


def matrix_size() -> int:
    """How many bad inputs the matrix checks (README states this number)."""
    return (
        len(cases.CSR_CASES)
        + len(cases.BODY_CASES)
        + len(cases.ROUTE_CASES)
        + len(cases.FRAMING_CASES)
        + len(cases.FETCH_ARGUMENT_CASES)
        + len(cases.FETCH_SET_CASES)
        + len(_manifest_cases())
        + len(_manifest_cases(unparsable_only=True))
        + len(cases.ROTATION_EVENT_CASES)
        + len(cases.REVOKE_CASES)
        + len(cases.CONFIG_CASES)
        + len(cases.CLI_CASES)
        + 2
    )


def test_the_readme_states_the_matrix_size() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert f"bad-input matrix of {matrix_size()} cases" in readme, matrix_size()

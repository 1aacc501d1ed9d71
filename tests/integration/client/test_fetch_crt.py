"""certrotor-fetch's start without botocore, over real HTTP: awscrt signs
the reads, a front server between certrotor-fetch and the emulator records
every request and injects AWS error answers, and a local container
credentials endpoint stands in for ECS's (or EKS Pod Identity's)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from certrotor.layout import Manifest

from .conftest import FETCH, RotatedSet


@dataclass
class Seen:
    target: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Front:
    """Forwards Secrets Manager requests to the emulator; answers the targets
    in `faults` itself with (status, JSON body)."""

    upstream: str
    faults: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def targets(self) -> list[str]:
        return [s.target for s in self.seen]


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def front(emulator: Any) -> Iterator[Front]:
    state = Front(emulator.endpoint_url)
    upstream = urlsplit(emulator.endpoint_url)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            target = self.headers.get("X-Amz-Target", "").removeprefix("secretsmanager.")
            state.seen.append(Seen(target, {k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
            if target in state.faults:
                status, answer = state.faults[target]
                payload = json.dumps(answer).encode()
            else:
                connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=10)
                connection.request("POST", "/", body=body, headers=dict(self.headers))
                response = connection.getresponse()
                status, payload = response.status, response.read()
                connection.close()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server, state.url = _serve(Handler)
    yield state
    server.shutdown()


@dataclass
class CredentialsEndpoint:
    """The container credentials endpoint: fails the first `failures` requests with 500."""

    document: dict[str, str]
    failures: int = 0
    authorizations: list[str | None] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def credentials_endpoint() -> Iterator[CredentialsEndpoint]:
    state = CredentialsEndpoint(
        {
            "AccessKeyId": "ASIACONTAINERKEY",
            "SecretAccessKey": "container-secret",
            "Token": "container-session-token",
            "Expiration": "2099-01-01T00:00:00Z",
        }
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.authorizations.append(self.headers.get("Authorization"))
            if state.failures > 0:
                state.failures -= 1
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = json.dumps(state.document).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server, base = _serve(Handler)
    state.url = f"{base}/v1/credentials"
    yield state
    server.shutdown()


def environ_for(shared_set: RotatedSet, front: Front, **extra: str) -> dict[str, str]:
    return shared_set.env_vars({"AWS_ENDPOINT_URL": front.url, **extra})


def fetch(args: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FETCH, *args], env=environ, capture_output=True, text=True, timeout=60, check=False)


def manifest_of(shared_set: RotatedSet) -> Manifest:
    return Manifest.from_json(shared_set.current(shared_set.name)["SecretString"])


def test_a_start_signs_with_awscrt_and_reads_the_set_in_two_calls(shared_set, front, tmp_path):
    # Given a container's environment: keys, a region and an endpoint
    environ = environ_for(shared_set, front)
    # When certrotor-fetch starts
    result = fetch(["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "-v"], environ)
    # Then awscrt signed the manifest's read and the parts' batch, and the files are written
    assert result.returncode == 0, result.stderr
    assert "reading with awscrt SigV4, credentials from the environment" in result.stderr
    assert front.targets() == ["GetSecretValue", "BatchGetSecretValue"]
    for seen in front.seen:
        assert seen.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=certrotor-local/")
        assert "/us-east-1/secretsmanager/aws4_request, SignedHeaders=" in seen.headers["authorization"]
        assert seen.headers["content-type"] == "application/x-amz-json-1.1"
    assert front.seen[0].body == {"SecretId": shared_set.name, "VersionStage": "AWSCURRENT"}
    assert (tmp_path / "tls" / "key.pem").is_file()


IMPORTS_AFTER_MAIN = textwrap.dedent(
    """
    import sys
    from certrotor.client.start import main
    code = main(sys.argv[1:])
    heavy = {"botocore", "boto3", "urllib3", "awscrt", "dataclasses", "inspect"}
    print(sorted({m.split(".")[0] for m in sys.modules} & heavy))
    sys.exit(code)
    """
)


def test_a_start_on_the_crt_path_imports_neither_botocore_nor_dataclasses(shared_set, front, tmp_path):
    args = ["--set", shared_set.name, "--dir", str(tmp_path / "tls")]
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_AFTER_MAIN, *args],
        env=environ_for(shared_set, front),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['awscrt']"


def test_a_throttled_batch_falls_back_to_each_part_by_version(shared_set, front, tmp_path):
    # Given a BatchGetSecretValue quota exhausted
    front.faults["BatchGetSecretValue"] = (400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
    # When a container starts
    result = fetch(["--set", shared_set.name, "--dir", str(tmp_path / "tls")], environ_for(shared_set, front))
    # Then it starts: after one throttled batch (not retried), each part is read at the manifest's version
    assert result.returncode == 0, result.stderr
    manifest = manifest_of(shared_set)
    by_version = [s.body for s in front.seen if s.target == "GetSecretValue" and "VersionId" in s.body]
    assert front.targets().count("BatchGetSecretValue") == 1
    assert sorted(b["SecretId"] for b in by_version) == sorted(p.name for p in manifest.parts)
    assert {b["VersionId"] for b in by_version} == {manifest.version}
    assert (tmp_path / "tls" / "fullchain.pem").is_file()


def test_container_credentials_are_fetched_with_the_token_and_sign_the_reads(
    shared_set, front, credentials_endpoint, tmp_path
):
    # Given no keys in the environment, a credentials endpoint that fails once, and its token
    credentials_endpoint.failures = 1
    environ = {k: v for k, v in environ_for(shared_set, front).items() if not k.startswith("AWS_ACCESS_KEY_ID")}
    environ.pop("AWS_SECRET_ACCESS_KEY")
    environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = credentials_endpoint.url
    environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "pod-identity-token"
    # When certrotor-fetch starts
    result = fetch(["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "-v"], environ)
    # Then the failed fetch was retried, the token sent, and the task's credentials signed every read
    assert result.returncode == 0, result.stderr
    assert "credentials from the container endpoint" in result.stderr
    assert credentials_endpoint.authorizations == ["pod-identity-token", "pod-identity-token"]
    assert front.seen
    for seen in front.seen:
        assert seen.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIACONTAINERKEY/")
        assert seen.headers["x-amz-security-token"] == "container-session-token"


def test_an_unreachable_credentials_endpoint_exits_3_at_the_deadline(shared_set, front, closed_port, tmp_path):
    environ = {k: v for k, v in environ_for(shared_set, front).items() if "ACCESS_KEY" not in k}
    environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"http://127.0.0.1:{closed_port}/creds"
    result = fetch(["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "--deadline", "1"], environ)
    assert result.returncode == 3
    assert result.stderr.startswith(f"certrotor-fetch: {shared_set.name}: gave up after 1s and ")
    assert "container credentials: connection failed (EndpointConnectionError)" in result.stderr
    assert front.seen == []
    assert not (tmp_path / "tls").exists()


def botocore_environ(environ: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The same environment with a shared config file: botocore reads it."""
    config = tmp_path / "aws-config"
    config.write_text("[default]\n")
    return {**environ, "AWS_CONFIG_FILE": str(config)}


@pytest.mark.parametrize(
    "code, message",
    [
        ("AccessDeniedException", "not authorized to perform: secretsmanager:GetSecretValue"),
        ("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
    ],
)
def test_refusals_give_the_same_one_line_error_on_both_paths(shared_set, front, tmp_path, code, message):
    # Given Secrets Manager refusing the manifest's read
    front.faults["GetSecretValue"] = (400, {"__type": code, "message": message})
    environ = environ_for(shared_set, front)
    # When certrotor-fetch starts with awscrt, and again with botocore
    crt = fetch(["--set", shared_set.name, "--dir", str(tmp_path / "a")], environ)
    boto = fetch(["--set", shared_set.name, "--dir", str(tmp_path / "b")], botocore_environ(environ, tmp_path))
    # Then both exit 3 with the same single line, and write nothing
    assert crt.returncode == boto.returncode == 3
    assert crt.stderr == boto.stderr
    assert crt.stderr.count("\n") == 1
    assert code in crt.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_with_a_shared_config_file_botocore_reads_the_set(shared_set, front, tmp_path):
    environ = botocore_environ(environ_for(shared_set, front), tmp_path)
    result = fetch(["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "-v"], environ)
    assert result.returncode == 0, result.stderr
    assert "reading with botocore, default credentials chain" in result.stderr
    assert front.seen[0].headers["user-agent"].startswith("Botocore/")

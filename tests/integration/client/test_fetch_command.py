"""certrotor-fetch against the emulator: a real set, a real subprocess, real
files; and every way a set is refused, with one line and nothing written."""

from __future__ import annotations

import datetime as dt
import json
import sys
import textwrap
import uuid

from certrotor.aws.secrets import SecretStore
from certrotor.client.fetch import fetch_set
from certrotor.config import KeyAlgorithm
from certrotor.layout import LayoutSpec, split_bundle
from certrotor.local.ca import LocalCA
from certrotor.local.driver import RotationDriver
from certrotor.pki.bundle import Bundle, parse_certificates
from certrotor.pki.keys import generate_key, key_to_pem
from certrotor.services.reader import SetReader

# The child proves the files are in place before it runs: it prints each
# file's mode and the directory's.
SHOW_MODES = textwrap.dedent(
    """
    import os, stat, sys
    d = sys.argv[1]
    print("dir", oct(stat.S_IMODE(os.stat(d).st_mode)))
    for name in sorted(os.listdir(d)):
        print(name, oct(stat.S_IMODE(os.stat(os.path.join(d, name)).st_mode)))
    """
)


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_the_command_runs_with_the_files_in_place_and_private(shared_set, run_fetch, tmp_path):
    # Given a shared_set set and a directory that does not exist yet
    target = tmp_path / "run" / "certrotor"
    # When certrotor-fetch runs with a child command
    result = run_fetch(
        ["--set", shared_set.name, "--dir", str(target), "--", sys.executable, "-c", SHOW_MODES, str(target)],
        shared_set.env_vars(),
    )
    # Then the child ran (exec'd) and saw every file with its mode
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == [
        "dir 0o700",
        "cert.pem 0o444",
        "chain.pem 0o444",
        "fullchain.pem 0o444",
        "key.pem 0o400",
        "trust.pem 0o444",
        "",
    ]
    assert result.stderr == ""


def test_the_files_hold_the_current_set(shared_set, fetch_in_process, tmp_path):
    # Given the set's current manifest
    manifest = json.loads(shared_set.current(shared_set.name)["SecretString"])
    # When certrotor-fetch runs without a command
    code, err = fetch_in_process(["--set", shared_set.name, "--dir", str(tmp_path / "tls")], shared_set.aws_vars())
    # Then it exits 0 and cert.pem is the manifest's certificate, key.pem the key part's value
    assert code == 0, err
    assert (tmp_path / "tls" / "cert.pem").read_text() == manifest["certificate"]
    assert (tmp_path / "tls" / "key.pem").read_text() == shared_set.current(f"{shared_set.name}/key")["SecretString"]
    chain = parse_certificates((tmp_path / "tls" / "chain.pem").read_text())
    assert chain[-1] == shared_set.env.root.certificate


def test_verbose_progress_names_the_steps_but_never_the_key(shared_set, fetch_in_process, tmp_path):
    # Given / When
    code, err = fetch_in_process(
        ["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "--verbose"], shared_set.aws_vars()
    )
    # Then
    assert code == 0, err
    assert "AWS call(s)" in err and "wrote cert.pem" in err
    key = (tmp_path / "tls" / "key.pem").read_text()
    body = "".join(key.splitlines()[1:-1])
    assert body[:40] not in err and "PRIVATE KEY" not in err


def test_a_steady_state_fetch_takes_two_aws_calls(shared_set):
    # Given a reader over the emulator
    reader = SetReader(SecretStore(shared_set.secrets))
    # When the set is fetched in-process
    verified = fetch_set(reader, shared_set.name)
    # Then it took GetSecretValue + one BatchGetSecretValue
    assert reader.last.calls == 2
    assert verified.manifest.set_name == shared_set.name


def test_a_tampered_chain_part_is_refused_and_nothing_is_written(rotated, fetch_in_process, tmp_path):
    # Given a new version whose chain-0 differs from what its manifest's digest says
    version = str(uuid.uuid4())
    manifest = json.loads(rotated.current(rotated.name)["SecretString"])
    manifest["version"] = version
    tampered = {
        f"{rotated.name}/key": rotated.current(f"{rotated.name}/key")["SecretString"],
        f"{rotated.name}/chain-0": rotated.current(f"{rotated.name}/chain-0")["SecretString"] + "\n",
        f"{rotated.name}/chain-1": rotated.current(f"{rotated.name}/chain-1")["SecretString"],
        rotated.name: json.dumps(manifest),
    }
    rotated.put_current(tampered, version)
    # When
    code, err = fetch_in_process(["--set", rotated.name, "--dir", str(tmp_path / "tls")], rotated.aws_vars())
    # Then exit 2 with the reason, and no directory
    assert code == 2
    assert one_line(err) == (
        f"certrotor-fetch: {rotated.name}: part {rotated.name}/chain-0 does not match the manifest's digest"
    )
    assert not (tmp_path / "tls").exists()


def test_a_manifest_whose_parts_lack_its_version_is_refused(rotated, fetch_in_process, tmp_path):
    # Given a manifest at a version no part has (parts from another rotation)
    version = str(uuid.uuid4())
    manifest = json.loads(rotated.current(rotated.name)["SecretString"])
    manifest["version"] = version
    rotated.put_current({rotated.name: json.dumps(manifest)}, version)
    # When
    code, err = fetch_in_process(["--set", rotated.name, "--dir", str(tmp_path / "tls")], rotated.aws_vars())
    # Then
    assert code == 2
    line = one_line(err)
    assert f"has no version {version}, the manifest's: the set's parts are from different rotations" in line
    assert not (tmp_path / "tls").exists()


def test_an_old_manifest_restored_as_a_new_version_is_refused(rotated, fetch_in_process, tmp_path):
    # Given the current manifest value written again under another VersionId
    old = rotated.current(rotated.name)
    rotated.put_current({rotated.name: old["SecretString"]}, str(uuid.uuid4()))
    # When
    code, err = fetch_in_process(["--set", rotated.name, "--dir", str(tmp_path / "tls")], rotated.aws_vars())
    # Then
    assert code == 2
    assert f"manifest names version {old['VersionId']} but was read at" in one_line(err)


def test_a_key_part_whose_current_stage_lags_is_read_at_the_manifests_version(rotated):
    # Given a second rotation, then the key part's AWSCURRENT moved back to the first
    # (what a reader sees while finishSecret is moving stages)
    first_key = rotated.current(f"{rotated.name}/key")
    RotationDriver(rotated.env).rotate(rotated.name)
    second_key = rotated.current(f"{rotated.name}/key")
    rotated.secrets.update_secret_version_stage(
        SecretId=f"{rotated.name}/key",
        VersionStage="AWSCURRENT",
        MoveToVersionId=first_key["VersionId"],
        RemoveFromVersionId=second_key["VersionId"],
    )
    # When the set is fetched
    verified = fetch_set(SetReader(SecretStore(rotated.secrets)), rotated.name)
    # Then the key is the manifest's rotation's, not the one at AWSCURRENT
    assert verified.key_pem == second_key["SecretString"]


def test_an_expired_certificate_is_refused(rotated, fetch_in_process, tmp_path):
    # Given a set whose certificate expired yesterday, written consistently
    key = generate_key(KeyAlgorithm.EC_P256)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    leaf = rotated.env.root.issue_leaf(key.public_key(), "localhost", ("localhost",), days=30, not_before=long_ago)
    version = str(uuid.uuid4())
    layout = split_bundle(
        LayoutSpec(rotated.name, chain_parts=2, value_limit=4096),
        version,
        key_to_pem(key),
        Bundle(leaf, (rotated.env.root.certificate,)),
    )
    rotated.put_current({**layout.parts, rotated.name: layout.manifest_value}, version)
    # When
    code, err = fetch_in_process(["--set", rotated.name, "--dir", str(tmp_path / "tls")], rotated.aws_vars())
    # Then
    assert code == 2
    assert "CN=localhost is not valid at" in one_line(err)
    assert not (tmp_path / "tls").exists()


def test_a_certificate_expiring_before_min_valid_is_refused(shared_set, fetch_in_process, tmp_path):
    # Given the set's expiry
    not_after = dt.datetime.fromisoformat(json.loads(shared_set.current(shared_set.name)["SecretString"])["not_after"])
    days_left = (not_after - dt.datetime.now(dt.UTC)).days
    # When it must stay valid a day longer than it will
    code, err = fetch_in_process(
        ["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "--min-valid", f"{days_left + 1}d"],
        shared_set.aws_vars(),
    )
    # Then
    assert code == 2
    assert "sooner than required" in one_line(err)


def test_with_the_root_as_ca_file_the_set_is_accepted(shared_set, fetch_in_process, tmp_path):
    # Given the local root that signed the Private CA
    ca_file = tmp_path / "root.pem"
    ca_file.write_text(shared_set.env.root.pem)
    # When / Then
    code, err = fetch_in_process(
        ["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "--ca-file", str(ca_file)], shared_set.aws_vars()
    )
    assert code == 0, err


def test_a_chain_not_leading_to_the_ca_file_is_refused(shared_set, fetch_in_process, tmp_path):
    # Given a CA file naming a root that did not sign the chain
    ca_file = tmp_path / "root.pem"
    ca_file.write_text(LocalCA.create_root("someone else's root").pem)
    # When
    code, err = fetch_in_process(
        ["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "--ca-file", str(ca_file)], shared_set.aws_vars()
    )
    # Then
    assert code == 2
    assert "chain does not lead to the trusted CA" in one_line(err)


def test_a_set_never_issued_is_refused_with_what_to_do(make_env, fetch_in_process, tmp_path):
    # Given a provisioned set that has never been rotated
    env = make_env()
    name = env.config.sets[0].name
    # When
    code, err = fetch_in_process(["--set", name, "--dir", str(tmp_path / "tls")], env.emulator.env())
    # Then
    assert code == 2
    assert "no certificate has been issued for this set yet" in one_line(err)


def test_a_set_that_does_not_exist_exits_3(shared_set, fetch_in_process, tmp_path):
    # Given / When
    code, err = fetch_in_process(
        ["--set", f"{shared_set.name}-missing", "--dir", str(tmp_path / "tls")], shared_set.aws_vars()
    )
    # Then
    assert code == 3
    assert "not found (ResourceNotFoundException)" in one_line(err)


def test_an_unreachable_endpoint_exits_3_once_the_deadline_passes(shared_set, run_fetch, tmp_path, closed_port):
    # Given an endpoint with nothing listening
    environ = shared_set.env_vars({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}"})
    # When
    result = run_fetch(["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "--deadline", "4"], environ)
    # Then exit 3 and one line saying why
    assert result.returncode == 3
    line = one_line(result.stderr)
    assert line.startswith(f"certrotor-fetch: {shared_set.name}: gave up after 4s and ")
    assert "connection failed (EndpointConnectionError)" in line
    assert not (tmp_path / "tls").exists()


def test_a_directory_open_to_others_is_refused_and_the_command_not_run(shared_set, run_fetch, tmp_path):
    # Given a directory with mode 0755
    target = tmp_path / "tls"
    target.mkdir()
    target.chmod(0o755)
    marker = tmp_path / "ran"
    # When
    result = run_fetch(
        ["--set", shared_set.name, "--dir", str(target), "--", "touch", str(marker)], shared_set.env_vars()
    )
    # Then exit 4, the reason, nothing written, no command run
    assert result.returncode == 4
    assert "has mode 0755; it must be 0700" in one_line(result.stderr)
    assert list(target.iterdir()) == [] and not marker.exists()


def test_a_command_that_does_not_exist_exits_127(shared_set, run_fetch, tmp_path):
    # Given / When
    result = run_fetch(
        ["--set", shared_set.name, "--dir", str(tmp_path / "tls"), "--", "certrotor-no-such-command"],
        shared_set.env_vars(),
    )
    # Then
    assert result.returncode == 127
    assert one_line(result.stderr) == "certrotor-fetch: certrotor-no-such-command: command not found"

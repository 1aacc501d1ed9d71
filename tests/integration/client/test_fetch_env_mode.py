"""certrotor-fetch --from-env: the set as ECS injects it (task definition
`secrets`, one variable per part secret's AWSCURRENT value)."""

from __future__ import annotations

import datetime as dt
import sys
import textwrap

import pytest

from certrotor.local.ca import LocalCA
from certrotor.local.driver import RotationDriver
from certrotor.services.trust import TrustDocument, trust_secret_name

# The child prints which CERTROTOR_ variables it can see, one unrelated
# variable, and whether the key file is in place.
SHOW_ENV = textwrap.dedent(
    """
    import os, sys
    print(sorted(k for k in os.environ if k.startswith("CERTROTOR_")))
    print(os.environ.get("APP_SETTING"))
    print(os.path.isfile(os.path.join(sys.argv[1], "key.pem")))
    """
)


def injected(rotated_set, trust: bool = False) -> dict[str, str]:
    """What ECS would set from the task definition's `secrets` entries."""
    name = rotated_set.name
    variables = {
        "CERTROTOR_MANIFEST": rotated_set.current(name)["SecretString"],
        "CERTROTOR_KEY": rotated_set.current(f"{name}/key")["SecretString"],
        "CERTROTOR_CHAIN_0": rotated_set.current(f"{name}/chain-0")["SecretString"],
        "CERTROTOR_CHAIN_1": rotated_set.current(f"{name}/chain-1")["SecretString"],
    }
    if trust:
        variables["CERTROTOR_TRUST"] = rotated_set.current(trust_secret_name(rotated_set.env.config.rotator_id))[
            "SecretString"
        ]
    return variables


def test_env_mode_writes_the_files_and_the_child_never_sees_the_material(shared_set, run_fetch, tmp_path, closed_port):
    # Given the set's parts in variables, and AWS unreachable (env mode must not need it)
    target = tmp_path / "tls"
    environ = shared_set.env_vars(
        {**injected(shared_set), "APP_SETTING": "kept", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}"}
    )
    # When
    result = run_fetch(
        [
            "--from-env",
            "--set",
            shared_set.name,
            "--dir",
            str(target),
            "--",
            sys.executable,
            "-c",
            SHOW_ENV,
            str(target),
        ],
        environ,
    )
    # Then the child ran with the files, without the CERTROTOR_ variables, with the rest
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "kept", "True"]
    assert (target / "key.pem").read_text() == environ["CERTROTOR_KEY"]


def test_env_mode_refuses_a_key_from_the_previous_rotation(rotated, fetch_in_process, tmp_path):
    # Given a task started while AWSCURRENT moved: the key variable from the
    # first rotation, the manifest from the second
    first = injected(rotated)
    RotationDriver(rotated.env).rotate(rotated.name)
    environ = {**injected(rotated), "CERTROTOR_KEY": first["CERTROTOR_KEY"]}
    # When
    code, err = fetch_in_process(["--from-env", "--set", rotated.name, "--dir", str(tmp_path / "tls")], environ)
    # Then exit 2 with the reason, nothing written
    assert code == 2
    assert err == (f"certrotor-fetch: {rotated.name}: part {rotated.name}/key does not match the manifest's digest\n")
    assert not (tmp_path / "tls").exists()


def child(target) -> list[str]:
    return [sys.executable, "-c", SHOW_ENV, str(target)]


def test_env_mode_verifies_against_the_injected_trust_bundle_and_writes_trust_pem(
    shared_set, run_fetch, tmp_path, closed_port
):
    # Given the set's parts and its rotator's trust secret in variables, AWS unreachable
    target = tmp_path / "tls"
    environ = shared_set.env_vars(
        {**injected(shared_set, trust=True), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}"}
    )
    # When
    result = run_fetch(
        ["--from-env", "--verbose", "--set", shared_set.name, "--dir", str(target), "--", *child(target)],
        environ,
    )
    # Then it was checked against the bundle, trust.pem holds the rotator's root, and the child sees no variable
    assert result.returncode == 0, result.stderr
    trust = trust_secret_name(shared_set.env.config.rotator_id)
    assert f"against trust bundle {trust}" in result.stderr
    assert (target / "trust.pem").read_text() == shared_set.env.root.pem
    assert result.stdout.splitlines() == ["[]", "None", "True"]


def test_env_mode_refuses_a_set_outside_the_injected_trust_bundle(rotated, fetch_in_process, tmp_path):
    # Given a trust secret that trusts another root only
    other = LocalCA.create_root("certrotor other root")
    document = TrustDocument(rotator=rotated.env.config.rotator_id).with_ca(
        "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "0" * 36,
        other.pem,
        "active",
        dt.datetime.now(dt.UTC),
    )
    environ = {**injected(rotated), "CERTROTOR_TRUST": document.to_json()}
    # When
    code, err = fetch_in_process(["--from-env", "--set", rotated.name, "--dir", str(tmp_path / "tls")], environ)
    # Then exit 2, one line naming the bundle's CA, nothing written
    assert code == 2
    assert "does not verify to any CA of its trust bundle" in err and "certrotor other root" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "tls").exists()


@pytest.mark.parametrize("value", ["not json", '{"format":"certrotor-trust/9"}'])
def test_env_mode_refuses_a_malformed_trust_variable(rotated, fetch_in_process, tmp_path, value):
    environ = {**injected(rotated), "CERTROTOR_TRUST": value}
    code, err = fetch_in_process(["--from-env", "--set", rotated.name, "--dir", str(tmp_path / "tls")], environ)
    assert code == 2
    assert err.startswith(f"certrotor-fetch: {rotated.name}: trust bundle") and len(err.splitlines()) == 1
    assert not (tmp_path / "tls").exists()


def test_env_mode_without_the_trust_variable_says_how_to_inject_it(shared_set, fetch_in_process, tmp_path, monkeypatch):
    monkeypatch.delenv("CERTROTOR_TRUST", raising=False)
    code, err = fetch_in_process(
        ["--from-env", "--verbose", "--set", shared_set.name, "--dir", str(tmp_path / "tls")], injected(shared_set)
    )
    assert code == 0, err
    assert "CERTROTOR_TRUST is not set" in err and "against the chain's own top certificate" in err
    assert not (tmp_path / "tls" / "trust.pem").exists()

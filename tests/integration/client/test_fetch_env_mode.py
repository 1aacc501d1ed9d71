"""certrotor-fetch --from-env: the set as ECS injects it (task definition
`secrets`, one variable per part secret's AWSCURRENT value)."""

from __future__ import annotations

import sys
import textwrap

from certrotor.local.driver import RotationDriver

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


def injected(rotated_set) -> dict[str, str]:
    """What ECS would set from the task definition's `secrets` entries."""
    name = rotated_set.name
    return {
        "CERTROTOR_MANIFEST": rotated_set.current(name)["SecretString"],
        "CERTROTOR_KEY": rotated_set.current(f"{name}/key")["SecretString"],
        "CERTROTOR_CHAIN_0": rotated_set.current(f"{name}/chain-0")["SecretString"],
        "CERTROTOR_CHAIN_1": rotated_set.current(f"{name}/chain-1")["SecretString"],
    }


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

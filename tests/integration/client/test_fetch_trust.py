"""certrotor-fetch and the rotator's trust bundle: verified against it when
no --ca-file is given, written as trust.pem, read in the parts' batch."""

from __future__ import annotations

import datetime as dt

from certrotor.local.ca import LocalCA
from certrotor.local.provision import trust_store
from certrotor.services.trust import TrustDocument


def test_without_ca_file_the_set_is_verified_against_the_trust_bundle_and_trust_pem_written(
    shared_set, fetch_in_process, tmp_path
):
    # Given a rotated set whose rotator publishes its root
    target = tmp_path / "files"
    # When certrotor-fetch runs without --ca-file
    code, err = fetch_in_process(["--set", shared_set.name, "--dir", str(target), "-v"], shared_set.aws_vars())
    # Then it checked the chain against the trust bundle, in two AWS calls,
    # and wrote the bundle (the local root) as trust.pem
    assert code == 0, err
    assert "against trust bundle" in err
    assert "in 2 AWS call(s)" in err
    assert (target / "trust.pem").read_text() == shared_set.env.root.pem
    assert oct((target / "trust.pem").stat().st_mode & 0o777) == "0o444"


def test_a_set_whose_ca_is_not_in_the_trust_bundle_is_refused_and_nothing_written(rotated, fetch_in_process, tmp_path):
    # Given a trust bundle that holds only another root
    store = trust_store(rotated.env.emulator, rotated.env.config)
    other = LocalCA.create_root("someone else's root")
    arn = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "e" * 36
    store.save(TrustDocument(rotator=store.rotator).with_ca(arn, other.pem, "active", dt.datetime.now(dt.UTC)))
    target = tmp_path / "files"
    # When certrotor-fetch runs without --ca-file
    code, err = fetch_in_process(["--set", rotated.name, "--dir", str(target)], rotated.aws_vars())
    # Then the set is refused (exit 2) and no file exists
    assert code == 2, err
    assert "does not verify to any CA of its trust bundle" in err
    assert not target.exists()


def test_an_unreadable_trust_bundle_fails_the_fetch_unless_ca_file_is_given(rotated, fetch_in_process, tmp_path):
    # Given the trust secret the manifest names is gone
    store = trust_store(rotated.env.emulator, rotated.env.config)
    rotated.secrets.delete_secret(SecretId=store.name, ForceDeleteWithoutRecovery=True)
    # When certrotor-fetch runs without --ca-file, then with one
    code, err = fetch_in_process(["--set", rotated.name, "--dir", str(tmp_path / "a")], rotated.aws_vars())
    root_file = tmp_path / "root.pem"
    root_file.write_text(rotated.env.root.pem)
    with_ca, err_ca = fetch_in_process(
        ["--set", rotated.name, "--dir", str(tmp_path / "b"), "--ca-file", str(root_file)], rotated.aws_vars()
    )
    # Then the first fails as an AWS failure naming the secret, nothing written;
    # the second verifies against the given CA and writes no trust.pem
    assert code == 3, err
    assert store.name in err and "--ca-file" in err
    assert not (tmp_path / "a").exists()
    assert with_ca == 0, err_ca
    assert not (tmp_path / "b" / "trust.pem").exists()


def test_a_bundle_not_published_yet_falls_back_to_the_consistency_check(rotated, fetch_in_process, tmp_path):
    # Given the trust secret still holds the stack's initial value
    store = trust_store(rotated.env.emulator, rotated.env.config)
    rotated.secrets.put_secret_value(
        SecretId=store.name, SecretString='{"certrotor":"no certificate issued yet"}', VersionStages=["AWSCURRENT"]
    )
    # When certrotor-fetch runs without --ca-file
    code, err = fetch_in_process(["--set", rotated.name, "--dir", str(tmp_path / "f"), "-v"], rotated.aws_vars())
    # Then it says what it checked and writes no trust.pem
    assert code == 0, err
    assert "no --ca-file and no trust bundle" in err
    assert not (tmp_path / "f" / "trust.pem").exists()

"""Writing key material: modes, the private directory rule, atomic replacement."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from certrotor.client import files as files_module
from certrotor.client.files import MaterialDirectoryError, write_atomically, write_material


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_missing_directory_is_created_private(tmp_path, material):
    # Given a directory that does not exist yet
    target = tmp_path / "run" / "certrotor"
    # When the material is written there
    write_material(target, material.key_pem, material.bundle)
    # Then it exists with mode 0700
    assert mode_of(target) == 0o700


def test_the_key_is_readable_only_by_its_owner(tmp_path, material):
    # Given / When
    written = write_material(tmp_path / "tls", material.key_pem, material.bundle)
    # Then key.pem is 0400
    assert mode_of(written.key) == 0o400


def test_certificate_files_are_readable_by_all_and_writable_by_none(tmp_path, material):
    # Given / When
    written = write_material(tmp_path / "tls", material.key_pem, material.bundle)
    # Then cert, chain and fullchain are 0444
    assert [mode_of(p) for p in (written.cert, written.chain, written.fullchain)] == [0o444] * 3


def test_the_files_hold_the_key_the_leaf_its_issuers_and_the_full_chain(tmp_path, material):
    # Given / When
    written = write_material(tmp_path / "tls", material.key_pem, material.bundle)
    # Then each file holds exactly its part of the material
    assert written.key.read_text() == material.key_pem
    assert written.cert.read_text() == material.bundle.leaf_pem
    assert written.chain.read_text() == material.bundle.chain_pem
    assert written.fullchain.read_text() == material.bundle.leaf_pem + material.bundle.chain_pem


def test_optional_files_are_not_written_unless_asked(tmp_path, material):
    # Given / When
    written = write_material(tmp_path / "tls", material.key_pem, material.bundle)
    # Then the directory holds only the four standard files
    assert sorted(p.name for p in written.directory.iterdir()) == ["cert.pem", "chain.pem", "fullchain.pem", "key.pem"]


def test_a_directory_open_to_others_is_refused_and_left_empty(tmp_path, material):
    # Given an existing directory with mode 0755
    target = tmp_path / "tls"
    target.mkdir()
    os.chmod(target, 0o755)  # noqa: S103 - the unsafe mode under test
    # When the material is written there
    with pytest.raises(MaterialDirectoryError, match="has mode 0755; it must be 0700"):
        write_material(target, material.key_pem, material.bundle)
    # Then nothing was written
    assert list(target.iterdir()) == []


def test_a_directory_owned_by_another_user_is_refused(tmp_path, material, monkeypatch):
    # Given a private directory, seen by a process running as another user
    target = tmp_path / "tls"
    target.mkdir(mode=0o700)
    monkeypatch.setattr(files_module.os, "geteuid", lambda: os.lstat(target).st_uid + 1)
    # When / Then
    with pytest.raises(MaterialDirectoryError, match="is owned by uid"):
        write_material(target, material.key_pem, material.bundle)
    assert list(target.iterdir()) == []


def test_a_symbolic_link_in_place_of_the_directory_is_refused(tmp_path, material):
    # Given a private directory reached through a symlink
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "tls"
    link.symlink_to(real)
    # When / Then
    with pytest.raises(MaterialDirectoryError, match="symbolic link"):
        write_material(link, material.key_pem, material.bundle)
    assert list(real.iterdir()) == []


def test_a_file_in_place_of_the_directory_is_refused(tmp_path, material):
    # Given a regular file where the directory should be
    target = tmp_path / "tls"
    target.write_text("not a directory")
    # When / Then
    with pytest.raises(MaterialDirectoryError, match="is not a directory"):
        write_material(target, material.key_pem, material.bundle)


def test_writing_again_replaces_every_file_and_leaves_no_temporaries(tmp_path, material, other_material):
    # Given a directory holding one set's files
    target = tmp_path / "tls"
    write_material(target, material.key_pem, material.bundle)
    # When another set is written over it
    written = write_material(target, other_material.key_pem, other_material.bundle)
    # Then the files are the new set's, read-only as before, and nothing else is there
    assert written.key.read_text() == other_material.key_pem
    assert written.cert.read_text() == other_material.bundle.leaf_pem
    assert sorted(p.name for p in target.iterdir()) == ["cert.pem", "chain.pem", "fullchain.pem", "key.pem"]


def test_a_file_is_complete_and_has_its_final_mode_before_it_takes_its_name(tmp_path, monkeypatch):
    # Given a rename that records what the temporary file held at that moment
    seen: list[tuple[bytes, int]] = []
    real_replace = os.replace

    def recording_replace(source, destination):
        seen.append((Path(source).read_bytes(), mode_of(Path(source))))
        real_replace(source, destination)

    monkeypatch.setattr(files_module.os, "replace", recording_replace)
    data = b"-----BEGIN " + b"PRIVATE KEY-----\n" + b"A" * 100_000 + b"\n"
    # When a file is written atomically
    write_atomically(tmp_path / "key.pem", data, 0o400)
    # Then before the rename the temporary file already held all of it, with mode 0400
    assert seen == [(data, 0o400)]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    # Given a file already in place
    target = tmp_path / "cert.pem"
    write_atomically(target, b"old", 0o444)

    # When writing its replacement fails at fsync (disk full, say)
    def failing_fsync(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files_module.os, "fsync", failing_fsync)
    with pytest.raises(MaterialDirectoryError, match="No space left on device"):
        write_atomically(target, b"new", 0o444)
    # Then the old file is intact and no temporary remains
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["cert.pem"]


def test_the_combined_file_holds_the_key_then_the_full_chain_privately(tmp_path, material):
    # Given / When
    written = write_material(tmp_path / "tls", material.key_pem, material.bundle, combined=True)
    # Then
    assert written.combined is not None
    assert written.combined.read_text() == material.key_pem + material.bundle.fullchain_pem
    assert mode_of(written.combined) == 0o400


def test_a_pkcs12_file_without_password_loads_back_the_key_leaf_and_chain(tmp_path, material):
    # Given / When
    written = write_material(tmp_path / "tls", material.key_pem, material.bundle, pkcs12=True)
    # Then it loads with no password and carries the same certificates
    assert written.pkcs12 is not None
    loaded = pkcs12.load_pkcs12(written.pkcs12.read_bytes(), None)
    assert loaded.cert is not None and loaded.cert.certificate == material.bundle.leaf
    assert [c.certificate for c in loaded.additional_certs] == list(material.bundle.chain)
    assert mode_of(written.pkcs12) == 0o400


def test_a_pkcs12_file_with_a_password_cannot_be_opened_without_it(tmp_path, material):
    # Given a PKCS#12 written with a password
    written = write_material(
        tmp_path / "tls", material.key_pem, material.bundle, pkcs12=True, pkcs12_password=b"s3cret"
    )
    assert written.pkcs12 is not None
    data = written.pkcs12.read_bytes()
    # When / Then: the right password opens it, none does not
    assert pkcs12.load_pkcs12(data, b"s3cret").key is not None
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(data, None)


def test_a_pkcs12_password_without_pkcs12_is_refused(tmp_path, material):
    # Given / When / Then
    with pytest.raises(ValueError, match="pkcs12_password given without pkcs12"):
        write_material(tmp_path / "tls", material.key_pem, material.bundle, pkcs12_password=b"x")
    assert not (tmp_path / "tls").exists()

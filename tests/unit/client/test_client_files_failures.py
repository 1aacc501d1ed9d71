"""write_material and write_all_or_nothing under faults injected into the
OS calls: what is restored, what is left, which message names the failure;
and the exact way files and the staging directory are opened."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from certrotor.client import files as files_module
from certrotor.client.files import (
    MaterialDirectoryError,
    prepare_directory,
    write_all_or_nothing,
    write_atomically,
    write_material,
)

if TYPE_CHECKING:
    from tests.unit.client.conftest import Material

TRUST = "-----BEGIN CERTIFICATE-----\nTRUST\n-----END CERTIFICATE-----\n"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def failing_on(real: Callable[..., Any], predicate: Callable[..., bool], error: OSError) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        if predicate(*args, **kwargs):
            raise error
        return real(*args, **kwargs)

    return call


def test_the_trust_bundle_is_written_first_readable_by_all(tmp_path: Path, material: Material, monkeypatch) -> None:
    order: list[str] = []
    real_replace = os.replace

    def recording(source: Any, destination: Any) -> None:
        order.append(Path(destination).name)
        real_replace(source, destination)

    monkeypatch.setattr(files_module.os, "replace", recording)
    written = write_material(tmp_path / "tls", material.key_pem, material.bundle, trust_pem=TRUST)
    assert written.trust == tmp_path / "tls" / "trust.pem"
    assert written.trust.read_text() == TRUST
    assert mode_of(written.trust) == 0o444
    assert order == ["trust.pem", "cert.pem", "chain.pem", "fullchain.pem", "key.pem"]
    assert written.paths()[-1] == written.trust


@pytest.mark.parametrize("trust", [None, ""])
def test_no_trust_file_without_a_trust_bundle(tmp_path: Path, material: Material, trust: str | None) -> None:
    written = write_material(tmp_path / "tls", material.key_pem, material.bundle, trust_pem=trust)
    assert written.trust is None
    assert not (tmp_path / "tls" / "trust.pem").exists()


def test_a_failure_after_some_renames_restores_every_previous_file(
    tmp_path: Path, material: Material, other_material: Material, monkeypatch
) -> None:
    target = tmp_path / "tls"
    write_material(target, material.key_pem, material.bundle)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    real_replace = os.replace
    monkeypatch.setattr(
        files_module.os,
        "replace",
        failing_on(real_replace, lambda s, d: Path(d) == target / "key.pem", OSError(28, "No space left on device")),
    )
    with pytest.raises(MaterialDirectoryError) as failed:
        write_material(target, other_material.key_pem, other_material.bundle, combined=True, trust_pem=TRUST)
    assert str(failed.value) == f"cannot write {target / 'key.pem'}: No space left on device"
    # Replaced files have their old contents; files that were new are gone.
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before


def test_a_restore_that_fails_does_not_stop_the_others_or_hide_the_failure(
    tmp_path: Path, material: Material, other_material: Material, monkeypatch
) -> None:
    target = tmp_path / "tls"
    write_material(target, material.key_pem, material.bundle)
    old_cert = (target / "cert.pem").read_bytes()
    monkeypatch.setattr(
        files_module.os,
        "replace",
        failing_on(os.replace, lambda s, d: Path(d) == target / "key.pem", OSError(5, "Input/output error")),
    )
    # Removing the new combined.pem fails too.
    monkeypatch.setattr(
        files_module.os,
        "unlink",
        failing_on(os.unlink, lambda p, *a, **k: Path(p).name == "combined.pem", OSError(5, "Input/output error")),
    )
    with pytest.raises(MaterialDirectoryError, match=r"cannot write .*key\.pem: Input/output error"):
        write_material(target, other_material.key_pem, other_material.bundle, combined=True)
    assert (target / "cert.pem").read_bytes() == old_cert


def test_the_staging_directory_is_hidden_inside_the_target_and_removed(tmp_path: Path, monkeypatch) -> None:
    sources: list[Path] = []
    real_replace = os.replace

    def recording(source: Any, destination: Any) -> None:
        sources.append(Path(source))
        real_replace(source, destination)

    monkeypatch.setattr(files_module.os, "replace", recording)
    write_all_or_nothing(tmp_path, [("a.pem", b"a", 0o444), ("b.pem", b"b", 0o400)])
    assert [s.parent.parent for s in sources] == [tmp_path, tmp_path]
    assert all(s.parent.name.startswith(".staging-") for s in sources)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pem", "b.pem"]


def test_a_staging_directory_that_cannot_be_made_is_reported(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        files_module.os,
        "mkdir",
        failing_on(os.mkdir, lambda p, *a, **k: ".staging-" in str(p), PermissionError(13, "Permission denied")),
    )
    with pytest.raises(MaterialDirectoryError) as failed:
        write_atomically(tmp_path / "a.pem", b"a", 0o444)
    assert str(failed.value) == f"cannot write in {tmp_path}: Permission denied"
    assert list(tmp_path.iterdir()) == []


def test_a_staging_directory_that_cannot_be_removed_does_not_fail_the_write(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        files_module.os,
        "rmdir",
        failing_on(os.rmdir, lambda p, *a, **k: ".staging-" in str(p), OSError(16, "Device or resource busy")),
    )
    write_atomically(tmp_path / "a.pem", b"a", 0o444)
    assert (tmp_path / "a.pem").read_bytes() == b"a"


def test_a_name_taken_by_a_directory_is_refused_before_anything_is_written(tmp_path: Path, material: Material) -> None:
    target = tmp_path / "tls"
    target.mkdir(mode=0o700)
    (target / "key.pem").mkdir()
    with pytest.raises(MaterialDirectoryError) as refused:
        write_material(target, material.key_pem, material.bundle)
    assert str(refused.value) == f"{target / 'key.pem'} exists and is not a regular file; refusing to replace it"
    assert sorted(p.name for p in target.iterdir()) == ["key.pem"]


def test_a_name_that_cannot_be_inspected_is_reported(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        files_module.os,
        "lstat",
        failing_on(os.lstat, lambda p, *a, **k: Path(p).name == "a.pem", OSError(5, "Input/output error")),
    )
    with pytest.raises(MaterialDirectoryError) as failed:
        write_atomically(tmp_path / "a.pem", b"a", 0o444)
    assert str(failed.value) == f"cannot inspect {tmp_path / 'a.pem'}: Input/output error"


def test_a_directory_that_cannot_be_inspected_or_created_is_reported(tmp_path: Path, monkeypatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(
            files_module.os,
            "lstat",
            failing_on(os.lstat, lambda p, *a, **k: Path(p).name == "tls", OSError(5, "Input/output error")),
        )
        with pytest.raises(MaterialDirectoryError) as failed:
            prepare_directory(tmp_path / "tls")
        assert str(failed.value) == f"cannot inspect {tmp_path / 'tls'}: Input/output error"

    def refuse(self: Path, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(MaterialDirectoryError) as failed:
        prepare_directory(tmp_path / "other")
    assert str(failed.value) == f"cannot create {tmp_path / 'other'}: Permission denied"


def test_missing_parents_are_created_and_only_the_last_directory_is_private(tmp_path: Path) -> None:
    path = prepare_directory(tmp_path / "a" / "b" / "tls")
    assert path == tmp_path / "a" / "b" / "tls"
    assert mode_of(path) == 0o700
    assert (tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_directory_name_is_refused(name: str) -> None:
    with pytest.raises(MaterialDirectoryError) as refused:
        prepare_directory(name)
    assert str(refused.value) == "the directory name is empty; name the directory for the key material"


def test_a_directory_of_another_user_is_refused_with_both_uids(tmp_path: Path, monkeypatch) -> None:
    path = prepare_directory(tmp_path / "tls")
    uid = os.geteuid()
    monkeypatch.setattr(files_module.os, "geteuid", lambda: uid + 1)
    with pytest.raises(MaterialDirectoryError) as refused:
        prepare_directory(path)
    assert str(refused.value) == (
        f"{path} is owned by uid {uid}, not by this user (uid {uid + 1}); refusing to write a private key there"
    )


def test_files_are_created_new_never_through_a_link_and_closed_on_exec(tmp_path: Path, monkeypatch) -> None:
    opened: list[tuple[str, int, int | None]] = []
    real_open = os.open

    def recording(path: Any, flags: int, mode: int | None = None, **kwargs: Any) -> int:
        opened.append((Path(path).name, flags, mode))
        return real_open(path, flags, mode, **kwargs) if mode is not None else real_open(path, flags, **kwargs)

    monkeypatch.setattr(files_module.os, "open", recording)
    write_atomically(tmp_path / "key.pem", b"k", 0o400)
    file_opens = [o for o in opened if o[0] == "key.pem"]
    assert len(file_opens) == 1
    _, flags, mode = file_opens[0]
    for flag in (os.O_WRONLY, os.O_CREAT, os.O_EXCL, os.O_NOFOLLOW, os.O_CLOEXEC):
        assert flags & flag == flag
    assert mode == 0o400


def test_the_renames_are_made_durable_by_syncing_the_directory(tmp_path: Path, material: Material, monkeypatch) -> None:
    synced: list[str] = []
    opened: dict[int, tuple[str, int]] = {}
    real_open, real_fsync = os.open, os.fsync

    def recording_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        descriptor = real_open(path, flags, *args, **kwargs)
        opened[descriptor] = (str(path), flags)
        return descriptor

    def recording_fsync(descriptor: int) -> None:
        synced.append(opened[descriptor][0])
        real_fsync(descriptor)

    monkeypatch.setattr(files_module.os, "open", recording_open)
    monkeypatch.setattr(files_module.os, "fsync", recording_fsync)
    target = tmp_path / "tls"
    write_material(target, material.key_pem, material.bundle)
    # Every file is synced, then the directory itself, last, opened as a directory.
    assert synced[-1] == str(target)
    assert len(synced) == 5
    directory_flags = next(flags for path, flags in opened.values() if path == str(target))
    assert directory_flags & os.O_DIRECTORY == os.O_DIRECTORY


def test_a_directory_that_cannot_be_synced_does_not_fail_the_write(
    tmp_path: Path, material: Material, monkeypatch
) -> None:
    target = tmp_path / "tls"
    monkeypatch.setattr(
        files_module.os,
        "open",
        failing_on(os.open, lambda p, *a, **k: Path(p) == target, OSError(22, "Invalid argument")),
    )
    written = write_material(target, material.key_pem, material.bundle)
    assert written.key.read_text() == material.key_pem


def test_a_write_the_kernel_takes_in_pieces_is_complete(tmp_path: Path, monkeypatch) -> None:
    real_write = os.write

    def one_byte(descriptor: int, data: Any) -> int:
        return real_write(descriptor, bytes(data[:1]))

    monkeypatch.setattr(files_module.os, "write", one_byte)
    write_atomically(tmp_path / "a.pem", b"abcdef", 0o444)
    assert (tmp_path / "a.pem").read_bytes() == b"abcdef"


def test_the_pkcs12_file_names_its_entry_certrotor(tmp_path: Path, material: Material) -> None:
    written = write_material(tmp_path / "tls", material.key_pem, material.bundle, pkcs12=True)
    assert written.pkcs12 is not None
    loaded = pkcs12.load_pkcs12(written.pkcs12.read_bytes(), None)
    assert loaded.cert is not None and loaded.cert.friendly_name == b"certrotor"


def test_a_pkcs12_password_without_pkcs12_is_refused_with_its_reason(tmp_path: Path, material: Material) -> None:
    with pytest.raises(ValueError) as refused:
        write_material(tmp_path / "tls", material.key_pem, material.bundle, pkcs12_password=b"x")
    assert str(refused.value) == "pkcs12_password given without pkcs12=True"
    assert not (tmp_path / "tls").exists()


def test_a_key_without_its_final_newline_is_still_its_own_block_in_the_combined_file(
    tmp_path: Path, material: Material
) -> None:
    key = material.key_pem.rstrip("\n")
    written = write_material(tmp_path / "tls", key, material.bundle, combined=True)
    assert written.combined is not None
    assert written.combined.read_text() == key + "\n" + material.bundle.fullchain_pem

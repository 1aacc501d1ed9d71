"""The staging directory write_all_or_nothing writes into before renaming:
private, unguessable, new each time, and gone afterwards with everything in
it, even when some of it cannot be removed."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from certrotor.client import files as files_module
from certrotor.client.files import MaterialDirectoryError, write_all_or_nothing


def staging_dirs_seen(monkeypatch) -> list[tuple[Path, int]]:
    """Record each staging directory (and its mode) as a file leaves it."""
    seen: list[tuple[Path, int]] = []
    real_replace = os.replace

    def recording(source: Any, destination: Any) -> None:
        staging = Path(source).parent
        seen.append((staging, stat.S_IMODE(os.lstat(staging).st_mode)))
        real_replace(source, destination)

    monkeypatch.setattr(files_module.os, "replace", recording)
    return seen


def test_the_staging_directory_is_private_and_named_unguessably(tmp_path: Path, monkeypatch) -> None:
    # Given a umask that would leave a new directory readable by all
    seen = staging_dirs_seen(monkeypatch)
    old_umask = os.umask(0o022)
    try:
        # When two writes run
        write_all_or_nothing(tmp_path, [("a.pem", b"a", 0o444)])
        write_all_or_nothing(tmp_path, [("a.pem", b"b", 0o444)])
    finally:
        os.umask(old_umask)
    # Then each staged in its own 0700 directory with 128 random bits in its name
    (first, first_mode), (second, second_mode) = seen
    assert first_mode == second_mode == 0o700
    assert first != second
    for staging in (first, second):
        assert staging.parent == tmp_path
        suffix = staging.name.removeprefix(".staging-")
        assert staging.name.startswith(".staging-") and len(suffix) == 32 and int(suffix, 16) >= 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pem"]


def test_a_failed_write_removes_the_staging_directory_and_the_files_in_it(tmp_path: Path, monkeypatch) -> None:
    # Given a rename that fails after the files are staged
    def refuse(source: Any, destination: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files_module.os, "replace", refuse)
    # When / Then the write fails and leaves nothing behind
    with pytest.raises(MaterialDirectoryError, match="Permission denied"):
        write_all_or_nothing(tmp_path, [("a.pem", b"a", 0o444), ("key.pem", b"k", 0o400)])
    assert list(tmp_path.iterdir()) == []


def test_a_staged_file_that_cannot_be_removed_does_not_keep_the_others(tmp_path: Path, monkeypatch) -> None:
    # Given a rename that fails after staging, and one staged file that cannot be removed
    def refuse(source: Any, destination: Any) -> None:
        raise PermissionError(13, "Permission denied")

    real_unlink = os.unlink

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path).name == "a.pem":
            raise OSError(16, "Device or resource busy")
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(files_module.os, "replace", refuse)
    monkeypatch.setattr(files_module.os, "unlink", unlink)
    # When the write fails
    with pytest.raises(MaterialDirectoryError):
        write_all_or_nothing(tmp_path, [("a.pem", b"a", 0o444), ("key.pem", b"k", 0o400), ("z.pem", b"z", 0o444)])
    # Then the other staged files are removed all the same; only the stuck one and its directory stay
    (staging,) = tmp_path.iterdir()
    assert [p.name for p in staging.iterdir()] == ["a.pem"]

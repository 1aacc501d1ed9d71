"""A directory whose certificate files change together: what `--watch` and
`--sidecar` serve from.

Layout (`D` is `--dir`):

    D/.versions/<time>.<version>.<random>/   one complete set per delivery, 0700
    D/current -> .versions/<...>             the set being served (relative symlink)
    D/cert.pem -> current/cert.pem    the stable names servers are configured with
    D/key.pem  -> current/key.pem     (and chain.pem, fullchain.pem, combined.pem, cert.p12)

A delivery writes the whole new set into a fresh version directory (each file
fsynced, the key last), then renames a new `current` symlink over the old
one: rename(2) is atomic, so at every instant every stable name resolves
into one complete set, never a new certificate with an old key. The previous
version directory is always kept, and older ones only go once the version
that replaced them has been current for a minute, so a server that opened
`current/` just before a swap still finds its files, even when two
rotations come back to back.

A reader that opens two files one after the other can still straddle a swap;
the reload signal comes after the swap, so a server that reloads on it reads
a matching pair. A reader that must never straddle opens `D/current/` once
(a directory descriptor) and opens both files relative to it, or reads
combined.pem / cert.p12, which hold key and certificate in one file.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from certrotor.client.files import (
    MaterialDirectoryError,
    WrittenFiles,
    _sync_directory,
    prepare_directory,
    write_material,
)
from certrotor.pki.bundle import Bundle

VERSIONS = ".versions"
CURRENT_LINK = "current"
# How long a replaced version directory stays after its successor was swapped in.
PRUNE_GRACE_SECONDS = 60


def _delivered_ns(name: str) -> int:
    """The delivery time a version directory's name starts with (0 if none)."""
    head = name.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _replace_with_symlink(path: Path, target: str) -> None:
    """Point `path` at `target` atomically, whatever `path` was (file or link)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.lnk")
    try:
        os.symlink(target, temporary)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise MaterialDirectoryError(f"cannot link {path} to {target}: {exc.strerror}") from None


def _safe_version(version: str) -> str:
    """A version id as a directory name (Secrets Manager's are UUIDs)."""
    kept = "".join(c for c in version if c.isalnum() or c in "-_")
    return kept[:64] or "version"


class LiveDirectory:
    """Delivers verified sets into a directory by version, swapping atomically."""

    def __init__(self, directory: str | os.PathLike[str], clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self._clock = clock

    @property
    def current(self) -> Path:
        return self.directory / CURRENT_LINK

    def current_target(self) -> str | None:
        """The version directory `current` points at (None before the first delivery)."""
        try:
            return os.readlink(self.current)
        except OSError:
            return None

    def deliver(
        self,
        version: str,
        key_pem: str,
        bundle: Bundle,
        *,
        combined: bool = False,
        pkcs12: bool = False,
        pkcs12_password: bytes | None = None,
        trust_pem: str | None = None,
    ) -> WrittenFiles:
        """Write the set into a new version directory, then make it current.

        On any failure before the swap the new directory is removed and the
        served files are as they were.
        """
        folder = prepare_directory(self.directory)
        versions = folder / VERSIONS
        try:
            versions.mkdir(mode=0o700, exist_ok=True)
            os.chmod(versions, 0o700)
        except OSError as exc:
            raise MaterialDirectoryError(f"cannot create {versions}: {exc.strerror}") from None
        # Named by delivery time first, so the order of deliveries is the order of names.
        name = f"{int(self._clock() * 1e9):020d}.{_safe_version(version)}.{secrets.token_hex(4)}"
        staged = versions / name
        try:
            written = write_material(
                staged,
                key_pem,
                bundle,
                combined=combined,
                pkcs12=pkcs12,
                pkcs12_password=pkcs12_password,
                trust_pem=trust_pem,
            )
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        previous = self.current_target()
        _replace_with_symlink(self.current, f"{VERSIONS}/{name}")
        for path in written.paths():
            stable = folder / path.name
            target = f"{CURRENT_LINK}/{path.name}"
            if not (stable.is_symlink() and os.readlink(stable) == target):
                _replace_with_symlink(stable, target)
        # Durable: after a crash the directory holds the new names.
        _sync_directory(folder)
        self._prune(versions, keep={name, Path(previous).name if previous else ""})
        return WrittenFiles(
            directory=folder,
            cert=folder / written.cert.name,
            chain=folder / written.chain.name,
            fullchain=folder / written.fullchain.name,
            key=folder / written.key.name,
            combined=folder / written.combined.name if written.combined else None,
            pkcs12=folder / written.pkcs12.name if written.pkcs12 else None,
            trust=folder / written.trust.name if written.trust else None,
        )

    def _prune(self, versions: Path, keep: set[str]) -> None:
        """Remove version directories other than the current and the previous
        one, once the version that replaced them has been current for
        PRUNE_GRACE_SECONDS: a reader that opened one just before its swap
        has that long to finish, even when rotations come back to back."""
        now_ns = int(self._clock() * 1e9)
        with contextlib.suppress(OSError):
            entries = sorted(versions.iterdir(), key=lambda entry: _delivered_ns(entry.name))
            for older, newer in itertools.pairwise(entries):
                if older.name in keep:
                    continue
                if now_ns - _delivered_ns(newer.name) >= PRUNE_GRACE_SECONDS * 1e9:
                    shutil.rmtree(older, ignore_errors=True)

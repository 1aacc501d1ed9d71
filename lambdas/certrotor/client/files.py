"""Write a verified key and bundle to a private directory, atomically.

Layout of the directory (the names servers are configured with):
- cert.pem       the leaf certificate                     0444
- chain.pem      the issuers, leaf's issuer first         0444
- fullchain.pem  leaf then issuers                        0444
- key.pem        the private key, PKCS#8 PEM              0400
- combined.pem   key then full chain (optional)           0400
- cert.p12       PKCS#12 of key, leaf and chain (optional) 0400
- trust.pem      the rotator's trust bundle: the CAs peers'
                 certificates must chain to (when published) 0444

The directory must be 0700 or tighter and owned by the writing user; one that
is not is refused, never "fixed", because a looser directory means someone
else chose where the key goes.

Writing is all or nothing. Every file is first written with its final mode
into a private staging directory inside the target (same filesystem), and
fsynced; only then is each renamed over its final name, so a reader sees
either the old file or the new one, never half of one. If any step fails, the
files already renamed get their previous contents back (kept as hard links in
the staging directory), the staging directory is removed, and nothing new is
left behind: no combined.pem or cert.p12 (which hold the key) next to a
key.pem that could not be written. A final name that exists but is not a
regular file (a directory, a symbolic link) is refused before anything is
written.

POSIX only (containers): modes, owners, O_NOFOLLOW, O_CLOEXEC and
O_DIRECTORY are relied on, never emulated.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from certrotor.errors import CertrotorError
from certrotor.pki.bundle import Bundle
from certrotor.pki.keys import key_from_pem
from certrotor.record import record

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.serialization import KeySerializationEncryption

CERT_FILE = "cert.pem"
CHAIN_FILE = "chain.pem"
FULLCHAIN_FILE = "fullchain.pem"
KEY_FILE = "key.pem"
COMBINED_FILE = "combined.pem"
PKCS12_FILE = "cert.p12"
TRUST_FILE = "trust.pem"

DIRECTORY_MODE = 0o700
STAGING_PREFIX = ".staging-"
SECRET_MODE = 0o400
PUBLIC_MODE = 0o444
# Bits that give the group or others any access to the directory.
_SHARED_BITS = 0o077


class MaterialDirectoryError(CertrotorError):
    """The directory for key material is unsafe or cannot be written."""


@record
class WrittenFiles:
    """The paths written; optional files are None when not asked for."""

    directory: Path
    cert: Path
    chain: Path
    fullchain: Path
    key: Path
    combined: Path | None = None
    pkcs12: Path | None = None
    trust: Path | None = None

    def paths(self) -> tuple[Path, ...]:
        optional = tuple(p for p in (self.combined, self.pkcs12, self.trust) if p is not None)
        return (self.cert, self.chain, self.fullchain, self.key, *optional)


def prepare_directory(directory: str | os.PathLike[str]) -> Path:
    """Create `directory` 0700, or check an existing one is private to us.

    Missing parents are created with the default mode; only the last
    component holds key material and must be private. An empty name is
    refused: it would mean the current directory, which nobody chose.
    """
    if not os.fspath(directory).strip():
        raise MaterialDirectoryError("the directory name is empty; name the directory for the key material")
    path = Path(directory)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=DIRECTORY_MODE)
        # mkdir's mode is filtered by the umask; state it exactly.
        os.chmod(path, DIRECTORY_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise MaterialDirectoryError(f"cannot create {path}: {exc.strerror}") from None
    check_directory(path)
    return path


def check_directory(path: Path) -> None:
    """Refuse a directory that is a symlink, shared, or owned by another user."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise MaterialDirectoryError(f"cannot inspect {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise MaterialDirectoryError(f"{path} is a symbolic link; give the real directory")
    if not stat.S_ISDIR(info.st_mode):
        raise MaterialDirectoryError(f"{path} exists and is not a directory")
    if info.st_uid != os.geteuid():
        raise MaterialDirectoryError(
            f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}); "
            "refusing to write a private key there"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & _SHARED_BITS:
        raise MaterialDirectoryError(
            f"{path} has mode {mode:04o}; it must be 0700 (no group or other access) to hold a private key"
        )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (it must not exist) holding `data` with `mode`, fsynced."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(path, flags, mode)
    try:
        # The umask may have filtered `mode` (it cannot add bits); be exact.
        os.fchmod(descriptor, mode)
        view = memoryview(data)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` with `mode` so readers never see a partial file."""
    write_all_or_nothing(path.parent, [(path.name, data, mode)])


def _check_target(path: Path) -> bool:
    """True when `path` exists (as a regular file); refuses anything else there."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise MaterialDirectoryError(f"cannot inspect {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise MaterialDirectoryError(f"{path} exists and is not a regular file; refusing to replace it")
    return True


def _make_staging(folder: Path) -> Path:
    """A new directory in `folder`, 0700 (less any umask bits), with a name
    nobody can guess or have taken (128 random bits): tempfile.mkdtemp's
    guarantees without importing tempfile, shutil and their compression
    modules at every container start."""
    staging = folder / f"{STAGING_PREFIX}{os.urandom(16).hex()}"
    os.mkdir(staging, DIRECTORY_MODE)
    return staging


def _remove_staging(staging: Path) -> None:
    """Remove the staging directory and the files left in it, as many as
    can be (it never holds a directory); failures are ignored: the write
    itself has succeeded or failed by then."""
    with contextlib.suppress(OSError):
        for name in os.listdir(staging):
            with contextlib.suppress(OSError):
                os.unlink(staging / name)
        os.rmdir(staging)


def write_all_or_nothing(folder: Path, files: list[tuple[str, bytes, int]]) -> None:
    """Write every (name, data, mode) into `folder`, in order, or none of them.

    On any failure the names already replaced get their old contents back,
    new names are removed, and MaterialDirectoryError says what failed.
    """
    targets = [folder / name for name, _, _ in files]
    existed = [_check_target(target) for target in targets]
    try:
        staging = _make_staging(folder)
    except OSError as exc:
        raise MaterialDirectoryError(f"cannot write in {folder}: {exc.strerror}") from None
    replaced: list[int] = []
    try:
        for name, data, mode in files:
            try:
                _write_new(staging / name, data, mode)
            except OSError as exc:
                raise MaterialDirectoryError(f"cannot write {folder / name}: {exc.strerror}") from None
        for index, (name, _, _) in enumerate(files):
            target = targets[index]
            try:
                if existed[index]:
                    os.link(target, staging / f"{name}.previous", follow_symlinks=False)
                os.replace(staging / name, target)
            except OSError as exc:
                raise MaterialDirectoryError(f"cannot write {target}: {exc.strerror}") from None
            replaced.append(index)
    except BaseException:
        for index in reversed(replaced):
            with contextlib.suppress(OSError):
                if existed[index]:
                    os.replace(staging / f"{files[index][0]}.previous", targets[index])
                else:
                    os.unlink(targets[index])
        raise
    finally:
        _remove_staging(staging)


def _sync_directory(path: Path) -> None:
    """Make the renames durable (a crash after this keeps the new names)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def pkcs12_bytes(key_pem: str, bundle: Bundle, password: bytes | None, name: str = "certrotor") -> bytes:
    """PKCS#12 of the key, leaf and chain; encrypted only when a password is given."""
    # Only with --pkcs12: the serialization package is slow to import.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12 as pkcs12_format

    encryption: KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return pkcs12_format.serialize_key_and_certificates(
        name.encode("utf-8"),
        key_from_pem(key_pem),
        bundle.leaf,
        list(bundle.chain) or None,
        encryption,
    )


def write_material(
    directory: str | os.PathLike[str],
    key_pem: str,
    bundle: Bundle,
    *,
    combined: bool = False,
    pkcs12: bool = False,
    pkcs12_password: bytes | None = None,
    trust_pem: str | None = None,
) -> WrittenFiles:
    """Write the key and bundle into `directory` (created 0700 if missing).

    The key is written last, so a server watching the directory that sees a
    new key.pem also finds the certificate files for it already in place.
    """
    if pkcs12_password is not None and not pkcs12:
        raise ValueError("pkcs12_password given without pkcs12=True")
    folder = prepare_directory(directory)
    files = WrittenFiles(
        directory=folder,
        cert=folder / CERT_FILE,
        chain=folder / CHAIN_FILE,
        fullchain=folder / FULLCHAIN_FILE,
        key=folder / KEY_FILE,
        combined=folder / COMBINED_FILE if combined else None,
        pkcs12=folder / PKCS12_FILE if pkcs12 else None,
        trust=folder / TRUST_FILE if trust_pem else None,
    )
    contents = []
    if trust_pem:
        contents.append((TRUST_FILE, trust_pem.encode("ascii"), PUBLIC_MODE))
    contents += [
        (CERT_FILE, bundle.leaf_pem.encode("ascii"), PUBLIC_MODE),
        (CHAIN_FILE, bundle.chain_pem.encode("ascii"), PUBLIC_MODE),
        (FULLCHAIN_FILE, bundle.fullchain_pem.encode("ascii"), PUBLIC_MODE),
    ]
    if files.pkcs12 is not None:
        contents.append((PKCS12_FILE, pkcs12_bytes(key_pem, bundle, pkcs12_password), SECRET_MODE))
    if files.combined is not None:
        key_block = key_pem if key_pem.endswith("\n") else key_pem + "\n"
        contents.append((COMBINED_FILE, (key_block + bundle.fullchain_pem).encode("ascii"), SECRET_MODE))
    contents.append((KEY_FILE, key_pem.encode("ascii"), SECRET_MODE))
    write_all_or_nothing(folder, contents)
    _sync_directory(folder)
    return files

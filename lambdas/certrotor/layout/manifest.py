"""The manifest: the small JSON value of a set's rotated secret.

It names every part secret with a SHA-256 of its value and carries the leaf
certificate when it fits, so a reader can check that the parts it fetched
belong together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from certrotor.bounded_json import JsonRefused, parse_json_object
from certrotor.errors import IntegrityError, NotIssuedError
from certrotor.names import MAX_VALUE_LIMIT, chain_secret_name, key_secret_name
from certrotor.record import record

FORMAT_VERSION = 1
# The value every secret of a set holds before its first rotation: the stack
# creates secrets with it (CloudFormation cannot create a secret without a
# value), and readers recognise it to say "not issued yet".
INITIAL_VALUE = '{"certrotor":"no certificate issued yet"}'
# Bounds checked before parsing (a manifest is an object holding a list of
# part objects: depth 3); no secret value is larger than MAX_VALUE_LIMIT.
MAX_MANIFEST_CHARS = MAX_VALUE_LIMIT
MAX_MANIFEST_DEPTH = 3
MAX_PARTS = 21
# The certificates a set held before, newest first, that a manifest lists
# (services.supersede revokes each once after its grace). Bounded: a set
# rotated more often than this between two monitor runs drops the oldest.
MAX_SUPERSEDED = 8


class PartRole:
    KEY = "key"
    CHAIN = "chain"


def digest(value: str) -> str:
    """SHA-256 of a part's value, lowercase hex."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@record
class PartRef:
    """One part secret as the manifest lists it."""

    name: str
    role: str
    sha256: str


@record
class SupersededRef:
    """A certificate the set held before: its serial, the CA that issued it
    (None in manifests written before manifests named their CA) and the
    generation of the manifest that held it (0 before manifests counted)."""

    serial: str
    ca: str | None
    generation: int


@record
class Manifest:
    """What one rotation wrote: its version, certificate facts and parts."""

    set_name: str
    version: str
    serial: str
    not_before: str
    not_after: str
    fingerprint: str
    key_algorithm: str
    parts: tuple[PartRef, ...]
    certificate: str | None = None
    # The rotator's trust secret consumers verify against, and the CA that
    # issued this certificate (absent in manifests written before either).
    trust: str | None = None
    ca: str | None = None
    # Counts the set's rotations (absent before manifests counted them), and
    # the certificates this one superseded, newest first (MAX_SUPERSEDED).
    generation: int | None = None
    superseded: tuple[SupersededRef, ...] = ()

    @property
    def key_part(self) -> PartRef:
        return next(p for p in self.parts if p.role == PartRole.KEY)

    @property
    def chain_parts(self) -> tuple[PartRef, ...]:
        return tuple(p for p in self.parts if p.role == PartRole.CHAIN)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "set": self.set_name,
            "version": self.version,
            "serial": self.serial,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "fingerprint_sha256": self.fingerprint,
            "key_algorithm": self.key_algorithm,
            "parts": [{"name": p.name, "role": p.role, "sha256": p.sha256} for p in self.parts],
        }
        if self.certificate is not None:
            data["certificate"] = self.certificate
        if self.trust is not None:
            data["trust"] = self.trust
        if self.ca is not None:
            data["ca"] = self.ca
        if self.generation is not None:
            data["generation"] = self.generation
        if self.superseded:
            data["superseded"] = [
                {"serial": r.serial, "generation": r.generation, **({"ca": r.ca} if r.ca is not None else {})}
                for r in self.superseded
            ]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest; anything malformed is an IntegrityError."""
        if text == INITIAL_VALUE:
            raise NotIssuedError("no certificate has been issued for this set yet; rotate it (certrotor issue-now)")
        if not isinstance(text, str):
            raise IntegrityError("manifest is malformed: not text")
        try:
            data = parse_json_object(text, max_chars=MAX_MANIFEST_CHARS, max_depth=MAX_MANIFEST_DEPTH, what="manifest")
        except JsonRefused as exc:
            raise IntegrityError(f"manifest is malformed: {exc}") from None
        try:
            if data.get("format") != FORMAT_VERSION:
                raise IntegrityError(f"manifest format {data.get('format')!r} is not {FORMAT_VERSION}")
            if not isinstance(data["parts"], list) or len(data["parts"]) > MAX_PARTS:
                raise IntegrityError(f"manifest is malformed: parts is not a list of at most {MAX_PARTS}")
            parts = tuple(PartRef(str(p["name"]), str(p["role"]), str(p["sha256"])) for p in data["parts"])
            manifest = cls(
                set_name=str(data["set"]),
                version=str(data["version"]),
                serial=str(data["serial"]),
                not_before=str(data["not_before"]),
                not_after=str(data["not_after"]),
                fingerprint=str(data["fingerprint_sha256"]),
                key_algorithm=str(data["key_algorithm"]),
                parts=parts,
                certificate=data.get("certificate"),
                trust=data.get("trust"),
                ca=data.get("ca"),
                generation=_generation(data.get("generation")),
                superseded=_superseded(data.get("superseded", [])),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityError(f"manifest is malformed: {type(exc).__name__}") from None
        if manifest.certificate is not None and not isinstance(manifest.certificate, str):
            raise IntegrityError("manifest is malformed: certificate is not PEM text")
        names = (manifest.trust, manifest.ca, *(r.ca for r in manifest.superseded))
        if not all(isinstance(v, str | None) for v in names):
            raise IntegrityError("manifest is malformed: trust and ca must be names")
        for field_name in ("not_before", "not_after"):
            try:
                moment = dt.datetime.fromisoformat(getattr(manifest, field_name))
            except ValueError:
                raise IntegrityError(f"manifest is malformed: {field_name} is not an ISO 8601 time") from None
            if moment.tzinfo is None:
                raise IntegrityError(f"manifest is malformed: {field_name} has no time zone")
        if sum(1 for p in parts if p.role == PartRole.KEY) != 1:
            raise IntegrityError("manifest must list exactly one key part")
        if any(p.role not in (PartRole.KEY, PartRole.CHAIN) for p in parts):
            raise IntegrityError("manifest lists a part with an unknown role")
        # A manifest may only name its own set's secrets, in layout order, so
        # that no reader is sent to fetch (and combine) another set's key.
        own = [key_secret_name(manifest.set_name)]
        own += [chain_secret_name(manifest.set_name, i) for i in range(len(manifest.chain_parts))]
        if [manifest.key_part.name, *(p.name for p in manifest.chain_parts)] != own:
            raise IntegrityError(f"manifest of {manifest.set_name} lists parts that are not its own")
        return manifest


def check_belongs(manifest: Manifest, name: str) -> None:
    """The manifest must be this set's (Manifest.from_json already holds its
    parts to its own set's names): a manifest copied from another set would
    otherwise pull that set's key."""
    if manifest.set_name != name:
        raise IntegrityError(f"the manifest is for set {manifest.set_name}, not {name}")


def _generation(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise IntegrityError("manifest is malformed: generation is not a count")
    return value


def _superseded(value: Any) -> tuple[SupersededRef, ...]:
    if not isinstance(value, list) or len(value) > MAX_SUPERSEDED:
        raise IntegrityError(f"manifest is malformed: superseded is not a list of at most {MAX_SUPERSEDED}")
    refs = []
    for item in value:
        generation = item["generation"]
        if isinstance(generation, bool) or not isinstance(generation, int):
            raise IntegrityError("manifest is malformed: a superseded generation is not a number")
        refs.append(SupersededRef(str(item["serial"]), item.get("ca"), generation))
    return tuple(refs)


def history_after(previous: Manifest | None) -> tuple[int, tuple[SupersededRef, ...]]:
    """The generation and superseded list of the manifest that replaces
    `previous` (None: the set's first certificate, or an unreadable one)."""
    if previous is None:
        return 1, ()
    generation = previous.generation if previous.generation is not None else 0
    before = SupersededRef(previous.serial, previous.ca, generation)
    older = tuple(r for r in previous.superseded if r.serial != previous.serial)
    return generation + 1, (before, *older)[:MAX_SUPERSEDED]

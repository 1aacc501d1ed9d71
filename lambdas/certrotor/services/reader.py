"""Read a certificate set back from Secrets Manager and check it belongs together.

The manifest is read first (at AWSCURRENT, or at a given VersionId); every
part is then taken at the manifest's VersionId. For the current set that is
one BatchGetSecretValue in the steady state; only parts whose AWSCURRENT has
not moved yet (a rotation is finishing right now) are re-read by VersionId,
and every part is, when the caller may not use BatchGetSecretValue or the
batch is throttled.
"""

from __future__ import annotations

from collections.abc import Mapping

from certrotor.errors import AwsError, IntegrityError, NotFoundError, RetryableError, ThrottledError
from certrotor.layout import AssembledSet, Manifest, PartValue, assemble
from certrotor.layout.manifest import check_belongs
from certrotor.ports import CURRENT, SecretReadPort, SecretValue
from certrotor.record import record


@record
class ReadStats:
    """How many Secrets Manager calls a read took (for benchmarks and logs)."""

    calls: int


class SetReader:
    """Reads sets through a SecretReadPort (any SecretPort is one)."""

    def __init__(self, secrets: SecretReadPort) -> None:
        self._secrets = secrets
        self.last = ReadStats(0)
        # With `with_trust`: the trust secret the manifest names, read at
        # AWSCURRENT in the same batch as the parts (or the error reading it).
        self.trust: SecretValue | None = None
        self.trust_error: AwsError | None = None

    def read(
        self,
        name: str,
        version: str | None = None,
        provisioned_chain_parts: int | None = None,
        manifest_value: SecretValue | None = None,
        known_parts: Mapping[str, str] | None = None,
        with_trust: bool = False,
    ) -> AssembledSet:
        """The set at AWSCURRENT, or at `version` (a rotation's token); a caller
        that already holds the manifest's value may pass it in, and one that
        holds parts' values at `version` (versions are immutable) passes them
        as `known_parts` (secret name to value) so they are not read again.
        With `with_trust`, the trust secret the manifest names is read too (in
        the parts' batch: no extra call in the steady state) into `self.trust`."""
        calls = 0 if manifest_value is not None else 1
        if manifest_value is None:
            manifest_value = (
                self._secrets.get(name, stage=CURRENT) if version is None else self._secrets.get(name, version=version)
            )
        manifest = Manifest.from_json(manifest_value.value)
        check_belongs(manifest, name)
        names = [p.name for p in manifest.parts]
        trust_name = manifest.trust if with_trust else None
        self.trust, self.trust_error = None, None
        parts: dict[str, PartValue] = {}
        if known_parts and version is not None and manifest.version == version:
            parts.update({n: PartValue(known_parts[n], manifest.version) for n in names if n in known_parts})
        batch: dict[str, SecretValue] = {}
        if version is None:
            calls += 1
            try:
                batch = self._secrets.get_current_many([*names, *([trust_name] if trust_name else [])])
            except ThrottledError:
                # BatchGetSecretValue has its own quota (100 TPS per account),
                # far below GetSecretValue's (10,000 TPS): when many tasks start
                # at once, each part is read on its own below instead.
                batch = {}
            except RetryableError:
                raise
            except AwsError:
                # BatchGetSecretValue needs its own permission (on "*"), which a
                # reader granted through the secrets' resource policies lacks;
                # each part is then read on its own below.
                batch = {}
            for part_name, value in batch.items():
                if part_name in names and value.version == manifest.version:
                    parts[part_name] = PartValue(value.value, value.version)
        for part_name in names:
            if part_name not in parts:
                calls += 1
                try:
                    value = self._secrets.get(part_name, version=manifest.version)
                except NotFoundError:
                    # Not an AWS failure: the parts come from different rotations.
                    raise IntegrityError(
                        f"part {part_name} has no version {manifest.version}, the manifest's: "
                        "the set's parts are from different rotations"
                    ) from None
                parts[part_name] = PartValue(value.value, value.version)
        if trust_name is not None:
            self.trust = batch.get(trust_name)
            if self.trust is None:
                calls += 1
                try:
                    self.trust = self._secrets.get(trust_name, stage=CURRENT)
                except RetryableError:
                    raise
                except AwsError as exc:
                    self.trust_error = exc
        self.last = ReadStats(calls)
        return assemble(manifest_value.value, manifest_value.version, parts, provisioned_chain_parts)

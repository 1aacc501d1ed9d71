"""Split a certificate set into secret values that each fit a limit, and
assemble it back, refusing anything that does not belong together.

Layout of a set named N (see docs/ARCHITECTURE.md):
- N: the manifest (JSON), with the leaf certificate when it fits;
- N/key: the private key PEM alone;
- N/chain-0 .. N/chain-k: the chain PEM, split on certificate boundaries
  (inside a certificate only when one alone exceeds the limit). When the leaf
  does not fit in the manifest it leads the chain text instead. Parts the
  chain does not need hold a single newline, so that every provisioned part
  is written by every rotation and concatenating them is still valid PEM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cryptography import x509

from certrotor.errors import BundleError, CapacityError, IntegrityError
from certrotor.layout.manifest import Manifest, PartRef, PartRole, SupersededRef, digest
from certrotor.names import chain_secret_name, key_secret_name
from certrotor.pki.bundle import Bundle, cert_to_pem, fingerprint, parse_certificates, serial_hex
from certrotor.pki.keys import describe_key
from certrotor.record import record

UNUSED_PART = "\n"


@record
class LayoutSpec:
    """Where a set's parts live and how large each may be."""

    name: str
    chain_parts: int
    value_limit: int

    @property
    def key_name(self) -> str:
        return key_secret_name(self.name)

    def chain_name(self, index: int) -> str:
        return chain_secret_name(self.name, index)


@record
class SecretLayout:
    """The values one rotation writes: parts first, then the manifest."""

    manifest: Manifest
    manifest_value: str
    parts: dict[str, str]


@record
class PartValue:
    """A part as read back: its value and the VersionId it was read at.

    version is None where the reader cannot know it (values injected by ECS
    as environment variables); the digests still bind the parts together.
    """

    value: str
    version: str | None


@record
class AssembledSet:
    manifest: Manifest
    key_pem: str
    bundle_pem: str


def _pack(blocks: list[str], limit: int) -> list[str]:
    """Greedy packing on block boundaries; a block over the limit is cut."""
    packed: list[str] = []
    current = ""
    for block in blocks:
        if len(block) > limit:
            if current:
                packed.append(current)
                current = ""
            packed.extend(block[i : i + limit] for i in range(0, len(block), limit))
        elif len(current) + len(block) > limit:
            packed.append(current)
            current = block
        else:
            current += block
    if current:
        packed.append(current)
    return packed


def _check_key_fits(spec: LayoutSpec, key_pem: str) -> None:
    if len(key_pem) > spec.value_limit:
        raise CapacityError(
            f"set {spec.name}: the private key PEM is {len(key_pem)} characters, over value_limit={spec.value_limit}; "
            "raise value_limit or use a smaller key algorithm"
        )


def _pack_chain(spec: LayoutSpec, blocks: list[str]) -> list[str]:
    packed = _pack(blocks, spec.value_limit)
    if len(packed) > spec.chain_parts:
        raise CapacityError(
            f"set {spec.name}: the chain needs {len(packed)} chain parts at value_limit={spec.value_limit}, "
            f"but chain_parts={spec.chain_parts}; raise chain_parts (or value_limit)"
        )
    return packed


def check_capacity(spec: LayoutSpec, key_pem: str, chain: Sequence[x509.Certificate]) -> None:
    """What can be known before a certificate is issued: the key fits one part
    and the CA chain fits the chain parts. (Whether the leaf still fits in the
    manifest, or ahead of the chain, is known only once it is issued.)"""
    _check_key_fits(spec, key_pem)
    _pack_chain(spec, [cert_to_pem(c) for c in chain])


def split_bundle(
    spec: LayoutSpec,
    version: str,
    key_pem: str,
    bundle: Bundle,
    *,
    trust: str | None = None,
    ca_arn: str | None = None,
    generation: int | None = None,
    superseded: Sequence[SupersededRef] = (),
) -> SecretLayout:
    """Lay a key and bundle out as part values and a manifest within the limit;
    the manifest names the trust secret and the issuing CA when given, and
    the certificates it supersedes (the oldest dropped first when the
    manifest would not fit otherwise, down to the one it replaces)."""
    limit = spec.value_limit
    _check_key_fits(spec, key_pem)
    chain_blocks = [cert_to_pem(c) for c in bundle.chain]
    leaf_block = cert_to_pem(bundle.leaf)
    leaf = bundle.leaf

    def build(leaf_in_manifest: bool, history: Sequence[SupersededRef] = superseded) -> SecretLayout:
        blocks = chain_blocks if leaf_in_manifest else [leaf_block, *chain_blocks]
        packed = _pack_chain(spec, blocks)
        values = packed + [UNUSED_PART] * (spec.chain_parts - len(packed))
        parts = {spec.key_name: key_pem}
        parts.update({spec.chain_name(i): v for i, v in enumerate(values)})
        refs = [PartRef(spec.key_name, PartRole.KEY, digest(key_pem))]
        refs += [PartRef(spec.chain_name(i), PartRole.CHAIN, digest(v)) for i, v in enumerate(values)]
        manifest = Manifest(
            set_name=spec.name,
            version=version,
            serial=serial_hex(leaf),
            not_before=leaf.not_valid_before_utc.isoformat(),
            not_after=leaf.not_valid_after_utc.isoformat(),
            fingerprint=fingerprint(leaf),
            key_algorithm=describe_key(leaf.public_key()),  # type: ignore[arg-type]
            parts=tuple(refs),
            certificate=leaf_block if leaf_in_manifest else None,
            trust=trust,
            ca=ca_arn,
            generation=generation,
            superseded=tuple(history),
        )
        return SecretLayout(manifest=manifest, manifest_value=manifest.to_json(), parts=parts)

    layout = build(leaf_in_manifest=True)
    kept = len(superseded)
    while len(layout.manifest_value) > limit and kept > 1:
        kept -= 1
        layout = build(leaf_in_manifest=True, history=superseded[:kept])
    if len(layout.manifest_value) > limit:
        layout = build(leaf_in_manifest=False, history=superseded[:kept])
    if len(layout.manifest_value) > limit:
        raise CapacityError(
            f"set {spec.name}: the manifest is {len(layout.manifest_value)} characters, over value_limit={limit}; "
            "raise value_limit"
        )
    return layout


def assemble(
    manifest_value: str,
    manifest_version: str | None,
    parts: Mapping[str, PartValue],
    provisioned_chain_parts: int | None = None,
) -> AssembledSet:
    """Rebuild a set from its manifest and parts, or refuse.

    Refuses a malformed manifest, a missing part, a part whose VersionId is
    not the manifest's, a part whose digest differs from the manifest's, a
    manifest listing more chain parts than provisioned, and a leaf whose
    fingerprint is not the manifest's.
    """
    manifest = Manifest.from_json(manifest_value)
    if manifest_version is not None and manifest.version != manifest_version:
        raise IntegrityError(f"manifest names version {manifest.version} but was read at {manifest_version}")
    if provisioned_chain_parts is not None and len(manifest.chain_parts) > provisioned_chain_parts:
        raise CapacityError(
            f"set {manifest.set_name}: manifest lists {len(manifest.chain_parts)} chain parts but only "
            f"{provisioned_chain_parts} are provisioned; raise chain_parts"
        )
    values: dict[str, str] = {}
    for ref in manifest.parts:
        part = parts.get(ref.name)
        if part is None:
            raise IntegrityError(f"part {ref.name} is missing")
        if part.version is not None and part.version != manifest.version:
            raise IntegrityError(f"part {ref.name} is from version {part.version}, not {manifest.version}")
        if digest(part.value) != ref.sha256:
            raise IntegrityError(f"part {ref.name} does not match the manifest's digest")
        values[ref.name] = part.value
    chain_text = "".join(values[ref.name] for ref in manifest.chain_parts)
    bundle_pem = (manifest.certificate or "") + chain_text
    try:
        certs = parse_certificates(bundle_pem) if "BEGIN" in bundle_pem else []
    except BundleError:
        # Digests matched, so the text is what was written, or the manifest's
        # own leaf was damaged: either way the set does not hold together.
        raise IntegrityError("the set's certificate text is malformed") from None
    if not certs or fingerprint(certs[0]) != manifest.fingerprint:
        raise IntegrityError("the leaf certificate does not match the manifest's fingerprint")
    return AssembledSet(manifest=manifest, key_pem=values[manifest.key_part.name], bundle_pem=bundle_pem)

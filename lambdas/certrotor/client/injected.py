"""A set injected by ECS as environment variables (task definition `secrets`).

Convention (one `secrets` entry per part, valueFrom = the part secret's ARN):
- CERTROTOR_MANIFEST   the set's manifest secret (N)
- CERTROTOR_KEY        the key part (N/key)
- CERTROTOR_CHAIN_<i>  chain part i (N/chain-<i>), i = 0 .. chain_parts-1
- CERTROTOR_TRUST      the rotator's trust secret (<rotator>/trust), which
                       the manifest names: the set is verified against its
                       anchors and they are written as trust.pem

ECS reads each secret's AWSCURRENT on its own, so versions are unknown here:
the manifest's digests are what bind the parts. A task started while a
rotation is moving AWSCURRENT can get parts from two rotations; their digests
then differ from the manifest's and the set is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

from certrotor.errors import IntegrityError
from certrotor.layout import AssembledSet, Manifest, PartValue, assemble

MANIFEST_VARIABLE = "CERTROTOR_MANIFEST"
KEY_VARIABLE = "CERTROTOR_KEY"
CHAIN_VARIABLE_PREFIX = "CERTROTOR_CHAIN_"
TRUST_VARIABLE = "CERTROTOR_TRUST"


def chain_variable(index: int) -> str:
    return f"{CHAIN_VARIABLE_PREFIX}{index}"


def is_material_variable(name: str) -> bool:
    """True for the variables that carry a set's material or trust bundle
    (to keep from the child, which reads the files)."""
    if name in (MANIFEST_VARIABLE, KEY_VARIABLE, TRUST_VARIABLE):
        return True
    return name.startswith(CHAIN_VARIABLE_PREFIX) and name[len(CHAIN_VARIABLE_PREFIX) :].isdigit()


def without_material(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of the environment without the set's material variables."""
    return {k: v for k, v in environ.items() if not is_material_variable(k)}


def assemble_from_env(name: str, environ: Mapping[str, str]) -> AssembledSet:
    """Assemble set `name` from its injected variables, or refuse.

    The key part is taken from CERTROTOR_KEY and the manifest's i-th chain
    part from CERTROTOR_CHAIN_<i>; a missing variable is named in the error.
    """
    manifest_value = environ.get(MANIFEST_VARIABLE)
    if manifest_value is None:
        raise IntegrityError(f"{MANIFEST_VARIABLE} is not set (is the manifest secret in the task's `secrets`?)")
    manifest = Manifest.from_json(manifest_value)
    variables = {manifest.key_part.name: KEY_VARIABLE}
    variables.update({part.name: chain_variable(i) for i, part in enumerate(manifest.chain_parts)})
    parts: dict[str, PartValue] = {}
    for part_name, variable in variables.items():
        value = environ.get(variable)
        if value is None:
            raise IntegrityError(f"part {part_name} is missing: {variable} is not set")
        parts[part_name] = PartValue(value, None)
    return assemble(manifest_value, None, parts)


def trust_from_env(environ: Mapping[str, str]) -> str | None:
    """The anchors of the injected trust secret as PEM; None when it is not
    injected, "" when the stack has not published it yet. A malformed value
    is an IntegrityError."""
    value = environ.get(TRUST_VARIABLE)
    if value is None:
        return None
    from certrotor.services.trust import trust_pem_of

    return trust_pem_of(value)

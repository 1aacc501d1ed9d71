"""Pure layout: split a set into secret values within a limit, and assemble."""

from certrotor.layout.manifest import Manifest, PartRef, PartRole, digest
from certrotor.layout.split import (
    AssembledSet,
    LayoutSpec,
    PartValue,
    SecretLayout,
    assemble,
    split_bundle,
)

__all__ = [
    "AssembledSet",
    "LayoutSpec",
    "Manifest",
    "PartRef",
    "PartRole",
    "PartValue",
    "SecretLayout",
    "assemble",
    "digest",
    "split_bundle",
]

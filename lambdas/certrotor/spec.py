"""Where a certificate set's spec lives, and the one way to read it.

A set's spec is what ``CertificateSetConfig`` holds, minus its readers
(granted by resource policies, never needed at run time). It lives in the
description of the set's manifest secret, as ``certrotor-spec/1 {json}``,
next to the tag ``certrotor:rotator`` naming the rotator that serves it:

- rotation reads it from the DescribeSecret it makes anyway (no extra call);
- ``load_set_spec`` reads one set by name with one DescribeSecret;
- ``list_set_specs`` reads a rotator's whole fleet from ListSecrets pages
  (100 sets a call), which return descriptions and tags.

docs/ARCHITECTURE.md ("Where a set's spec lives") says why here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from certrotor.config import CertificateSetConfig, CertrotorConfig, _compact, load_set
from certrotor.errors import ConfigError
from certrotor.fleet import ROTATOR_TAG as FLEET_ROTATOR_TAG
from certrotor.ports import SecretInfo

# Contract shared with the CDK constructs and the fleet tools.
ROTATOR_TAG = FLEET_ROTATOR_TAG
"""On every manifest secret: the id of the rotator that serves the set."""
# Not prefixed "certrotor:rotator": ListSecrets' tag-key filter matches prefixes.
PART_TAG = "certrotor:part-of"
"""On a set's key and chain secrets and its KMS keys: the rotator id."""
SET_TAG = "certrotor:certificate-set"
"""On every resource of a set: the set's name."""
SPEC_PREFIX = "certrotor-spec/1 "
# Secrets Manager caps a secret's description at 2,048 characters.
DESCRIPTION_LIMIT = 2048
# A secret's ARN ends with its name, a hyphen and six random characters.
_ARN_NAME = re.compile(r"^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(?P<name>.+)-[A-Za-z0-9]{6}$")
# Fields the description leaves out: the name is the secret's own, readers
# are resource-policy grants.
_NOT_IN_SPEC = frozenset({"name", "reader_role_arns", "key_reader_role_arns"})


class SpecReader(Protocol):
    """What loading one spec needs of Secrets Manager (certrotor.aws.secrets.SecretStore)."""

    def describe(self, secret_id: str) -> SecretInfo: ...


class SpecLister(Protocol):
    """What listing a rotator's sets needs of Secrets Manager (SecretStore)."""

    def list_tagged(self, key: str, value: str) -> list[SecretInfo]: ...


def set_name_of(secret_id: str) -> str:
    """The secret name a SecretId (name or ARN, as Secrets Manager sends it) names."""
    match = _ARN_NAME.match(secret_id)
    return match.group("name") if match else secret_id


def spec_fields(cert_set: CertificateSetConfig) -> dict[str, Any]:
    """The spec as plain data: fields that differ from their default, minus name and readers."""
    compact = json.loads(json.dumps(_compact(cert_set)))
    return {key: value for key, value in compact.items() if key not in _NOT_IN_SPEC}


def spec_description(cert_set: CertificateSetConfig) -> str:
    """The manifest secret's description that carries ``cert_set``'s spec."""
    text = SPEC_PREFIX + json.dumps(spec_fields(cert_set), sort_keys=True, separators=(",", ":"))
    if len(text) > DESCRIPTION_LIMIT:
        raise ConfigError(
            f"sets[{cert_set.name}]: its spec is {len(text):,} characters, over the {DESCRIPTION_LIMIT:,} "
            "a secret description holds; use fewer names or services"
        )
    return text


def spec_from_description(set_name: str, description: str) -> CertificateSetConfig:
    """Parse and validate a spec read back from a manifest's description."""
    if not description.startswith(SPEC_PREFIX):
        raise ConfigError(f"{set_name}: the manifest's description holds no certrotor spec")
    try:
        data = json.loads(description[len(SPEC_PREFIX) :])
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{set_name}: the spec in the manifest's description is not JSON ({exc.msg})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{set_name}: the spec in the manifest's description is not an object")
    return load_set({**data, "name": set_name})


def set_spec(info: SecretInfo, rotator_id: str) -> CertificateSetConfig:
    """The spec of the set whose manifest ``info`` describes, if ``rotator_id`` serves it."""
    owner = info.tags.get(ROTATOR_TAG)
    if owner != rotator_id:
        raise ConfigError(
            f"{info.name}: not a set of rotator {rotator_id!r} (tag {ROTATOR_TAG} is {owner!r})"
            if owner
            else f"{info.name}: not a certrotor set (no {ROTATOR_TAG} tag)"
        )
    return spec_from_description(info.name, info.description)


def load_set_spec(secrets: SpecReader, set_name: str, rotator_id: str) -> CertificateSetConfig:
    """One set's spec by name: one DescribeSecret of its manifest."""
    return set_spec(secrets.describe(set_name), rotator_id)


def list_set_specs(secrets: SpecLister, rotator_id: str) -> tuple[list[CertificateSetConfig], list[str]]:
    """Every set ``rotator_id`` serves, and one line per manifest whose spec is unusable."""
    specs, problems = [], []
    for info in secrets.list_tagged(ROTATOR_TAG, rotator_id):
        try:
            specs.append(set_spec(info, rotator_id))
        except ConfigError as exc:
            problems.append(str(exc))
    return specs, problems


def managed_set(config: CertrotorConfig, secrets: SpecReader, set_name: str) -> CertificateSetConfig:
    """A set by name: from ``config`` when it lists the sets, else from its manifest."""
    if config.sets:
        return config.set_named(set_name)
    return load_set_spec(secrets, set_name, config.rotator_id)


def with_sets(config: CertrotorConfig, sets: Iterable[CertificateSetConfig]) -> CertrotorConfig:
    """``config`` serving ``sets`` as well as its own."""
    return replace(config, sets=(*config.sets, *sets))

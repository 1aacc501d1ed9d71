"""A set's spec on its manifest secret: encoding, reading back, ownership."""

from __future__ import annotations

import dataclasses
import json

import pytest

from certrotor.config import (
    CaConfig,
    CertificateSetConfig,
    CertrotorConfig,
    KeyAlgorithm,
    ServiceRef,
    Usage,
    load_set,
)
from certrotor.errors import ConfigError
from certrotor.ports import SecretInfo
from certrotor.record import replace
from certrotor.spec import (
    DESCRIPTION_LIMIT,
    PART_TAG,
    ROTATOR_TAG,
    SPEC_PREFIX,
    list_set_specs,
    load_set_spec,
    managed_set,
    set_name_of,
    set_spec,
    spec_description,
    spec_from_description,
)

ROLE = "arn:aws:iam::123456789012:role/web-task"
CA_ARN = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/12345678-1234-1234-1234-123456789012"


def a_set(**fields: object) -> CertificateSetConfig:
    data = {
        "name": "team/web",
        "dns_names": ["web.internal", "web.example.test"],
        "key_algorithm": "RSA_3072",
        "usage": "both",
        "validity_days": 14,
        "schedule": {"expression": "rate(5 days)", "window": "3h"},
        "services": [{"cluster": "main", "service": "web"}],
        "reader_role_arns": [ROLE],
        "key_reader_role_arns": [ROLE],
    }
    data.update(fields)
    return load_set(data)


def manifest_info(description: str, tags: dict[str, str]) -> SecretInfo:
    return SecretInfo(
        arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/web-AbCdEf",
        name="team/web",
        rotation_enabled=True,
        versions={},
        tags=tags,
        description=description,
    )


class Store:
    """DescribeSecret and ListSecrets over SecretInfo values, counting calls."""

    def __init__(self, *infos: SecretInfo) -> None:
        self.infos = {info.name: info for info in infos}
        self.calls: list[str] = []

    def describe(self, secret_id: str) -> SecretInfo:
        self.calls.append(f"DescribeSecret {secret_id}")
        return self.infos[secret_id]

    def list_tagged(self, key: str, value: str) -> list[SecretInfo]:
        self.calls.append(f"ListSecrets {key}={value}")
        return [info for info in self.infos.values() if info.tags.get(key) == value]


def test_a_spec_read_back_is_the_set_without_its_readers() -> None:
    # Given a set with every kind of field
    cert_set = a_set()
    # When its description is written and read back
    text = spec_description(cert_set)
    again = spec_from_description("team/web", text)
    # Then only the readers (resource-policy grants) are left out
    assert again == dataclasses.replace(cert_set, reader_role_arns=(), key_reader_role_arns=())
    assert again.key_algorithm is KeyAlgorithm.RSA_3072 and again.usage is Usage.BOTH
    assert again.services == (ServiceRef("main", "web"),)
    assert text.startswith(SPEC_PREFIX)
    assert ROLE not in text


def test_the_description_holds_only_what_differs_from_the_defaults() -> None:
    text = spec_description(load_set({"name": "a", "dns_names": ["a.internal"]}))
    assert json.loads(text[len(SPEC_PREFIX) :]) == {"common_name": "a.internal", "dns_names": ["a.internal"]}


def test_a_spec_longer_than_a_description_is_refused_naming_the_set() -> None:
    names = [f"host-{i:03d}.a-rather-long-internal-domain.example.test" for i in range(60)]
    with pytest.raises(ConfigError, match=rf"sets\[team/web\].*{DESCRIPTION_LIMIT:,}"):
        spec_description(a_set(dns_names=names))


@pytest.mark.parametrize(
    ("description", "match"),
    [
        ("certrotor manifest", "holds no certrotor spec"),
        (SPEC_PREFIX + "{not json", "not JSON"),
        (SPEC_PREFIX + "[]", "not an object"),
        (SPEC_PREFIX + '{"dns_names": ["web.internal"], "key_algorithm": "RSA_1024"}', "key_algorithm"),
        (SPEC_PREFIX + '{"dns_names": ["web.internal"], "surprise": 1}', "unknown field"),
    ],
)
def test_a_bad_spec_is_refused_with_one_line(description: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        spec_from_description("team/web", description)


def test_only_the_rotator_named_by_the_tag_gets_the_spec() -> None:
    text = spec_description(a_set())
    assert set_spec(manifest_info(text, {ROTATOR_TAG: "platform"}), "platform").name == "team/web"
    with pytest.raises(ConfigError, match="not a set of rotator 'platform'"):
        set_spec(manifest_info(text, {ROTATOR_TAG: "other"}), "platform")
    with pytest.raises(ConfigError, match="no certrotor:rotator tag"):
        set_spec(manifest_info(text, {}), "platform")


def test_loading_one_set_by_name_is_one_describe_call() -> None:
    store = Store(manifest_info(spec_description(a_set()), {ROTATOR_TAG: "platform"}))
    assert load_set_spec(store, "team/web", "platform").validity_days == 14
    assert store.calls == ["DescribeSecret team/web"]


def test_listing_a_rotators_sets_reports_unusable_specs_apart() -> None:
    good = manifest_info(spec_description(a_set()), {ROTATOR_TAG: "platform"})
    bad = replace(good, name="team/broken", description="hand edited")
    other = replace(good, name="team/theirs", tags={ROTATOR_TAG: "other"})
    specs, problems = list_set_specs(Store(good, bad, other), "platform")
    assert [s.name for s in specs] == ["team/web"]
    assert problems == ["team/broken: the manifest's description holds no certrotor spec"]


def test_a_config_listing_sets_needs_no_call_and_one_without_reads_the_manifest() -> None:
    listed = a_set(name="team/listed")
    store = Store(manifest_info(spec_description(a_set()), {ROTATOR_TAG: "platform"}))
    config = CertrotorConfig(ca=CaConfig(arn=CA_ARN), sets=(listed,), service_name="platform")
    assert managed_set(config, store, "team/listed") is listed
    with pytest.raises(ConfigError, match="no certificate set named 'team/web'"):
        managed_set(config, store, "team/web")
    assert store.calls == []
    rotator = dataclasses.replace(config, sets=())
    assert managed_set(rotator, store, "team/web").name == "team/web"
    assert store.calls == ["DescribeSecret team/web"]


@pytest.mark.parametrize(
    ("secret_id", "name"),
    [
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/web-AbCdEf", "team/web"),
        ("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a-b-c-123456", "a-b-c"),
        ("team/web", "team/web"),
    ],
)
def test_a_secret_id_names_its_set(secret_id: str, name: str) -> None:
    assert set_name_of(secret_id) == name


def test_the_part_tag_is_not_found_by_a_prefix_match_on_the_rotator_tag() -> None:
    # ListSecrets' tag-key filter matches prefixes: fleet tools listing
    # certrotor:rotator must never see a set's key or chain secrets.
    assert not PART_TAG.startswith(ROTATOR_TAG)

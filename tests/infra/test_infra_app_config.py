"""The app loads its configuration from context and refuses bad config before synth."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from certrotor.config import load_config
from certrotor.errors import ConfigError
from certrotor_cdk.app_config import config_from_context, context_flag
from certrotor_cdk.certrotor_construct import Certrotor, log_retention

MINIMAL: dict[str, Any] = {
    "ca": {"arn": "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"},
    "sets": [{"name": "tls/web", "dns_names": ["web.internal"]}],
}


def with_set(**fields: Any) -> dict[str, Any]:
    data = copy.deepcopy(MINIMAL)
    data["sets"][0].update(fields)
    return data


def load(data: dict[str, Any]) -> Any:
    return config_from_context({"certrotor": data})


def test_inline_context_object_is_loaded() -> None:
    config = load(MINIMAL)

    assert [s.name for s in config.sets] == ["tls/web"]


def test_inline_context_may_be_a_json_string_from_the_command_line() -> None:
    config = config_from_context({"certrotor": json.dumps(MINIMAL)})

    assert config.sets[0].dns_names == ("web.internal",)


def test_config_file_named_in_context_wins_over_the_inline_object(tmp_path: Path) -> None:
    other = with_set(name="tls/from-file")
    (tmp_path / "prod.json").write_text(json.dumps(other))

    config = config_from_context({"certrotor": MINIMAL, "certrotor_config_file": "prod.json"}, base_dir=tmp_path)

    assert config.sets[0].name == "tls/from-file"


def test_missing_configuration_names_both_context_keys() -> None:
    with pytest.raises(ConfigError, match="certrotor_config_file"):
        config_from_context({})


def test_unreadable_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        config_from_context({"certrotor_config_file": "missing.json"}, base_dir=tmp_path)


def test_config_file_that_is_not_json_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{sets: }")

    with pytest.raises(ConfigError, match="is not JSON"):
        config_from_context({"certrotor_config_file": "bad.json"}, base_dir=tmp_path)


def test_unknown_key_algorithm_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"key_algorithm: 'DSA_1024'"):
        load(with_set(key_algorithm="DSA_1024"))


@pytest.mark.parametrize("expression", ["rate(2 hours)", "cron(0 */2 * * ? *)", "cron(0 * * * ? *)"])
def test_schedule_more_often_than_every_four_hours_is_rejected(expression: str) -> None:
    with pytest.raises(ConfigError, match="more often than every 4 hours"):
        load(with_set(schedule=expression))


def test_set_without_dns_names_or_ip_addresses_is_rejected() -> None:
    data = copy.deepcopy(MINIMAL)
    data["sets"][0] = {"name": "tls/web"}

    with pytest.raises(ConfigError, match="needs at least one of dns_names or ip_addresses"):
        load(data)


def test_chain_parts_below_one_is_rejected() -> None:
    with pytest.raises(ConfigError, match="chain_parts: 0 is outside 1-20"):
        load(with_set(chain_parts=0))


@pytest.mark.parametrize("limit", [1023, 65537])
def test_value_limit_outside_1024_to_65536_is_rejected(limit: int) -> None:
    with pytest.raises(ConfigError, match="value_limit"):
        load(with_set(value_limit=limit))


def test_invalid_ca_arn_is_rejected() -> None:
    data = copy.deepcopy(MINIMAL)
    data["ca"]["arn"] = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/not-a-uuid"

    with pytest.raises(ConfigError, match=r"ca.arn: .* is not a Private CA ARN"):
        load(data)


def test_invalid_reader_role_arn_is_rejected() -> None:
    with pytest.raises(ConfigError, match="is not an IAM role ARN"):
        load(with_set(reader_role_arns=["arn:aws:iam::123456789012:user/alice"]))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("True", True), ("1", True), ("false", False), ("", False)],
)
def test_context_flag_reads_command_line_text(text: str, expected: bool) -> None:
    assert context_flag(text) is expected


def test_context_flag_keeps_json_booleans() -> None:
    assert context_flag(True) is True
    assert context_flag(None) is False


@pytest.mark.parametrize("value", ["maybe", "fasle", 1, "2"])
def test_context_flag_refuses_anything_but_true_or_false(value: object) -> None:
    with pytest.raises(ConfigError, match=r"certrotor:skip_bundling: .* is not true or false"):
        context_flag(value, "certrotor:skip_bundling")


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (1, logs.RetentionDays.ONE_DAY),
        (30, logs.RetentionDays.ONE_MONTH),
        (45, logs.RetentionDays.TWO_MONTHS),
    ],
)
def test_log_retention_rounds_up_to_a_period_cloudwatch_accepts(days: int, expected: logs.RetentionDays) -> None:
    assert log_retention(days) == expected


def test_the_functions_environment_does_not_grow_with_the_sets() -> None:
    # Given 40 sets (a count whose configuration overflowed Lambda's 4 KB environment)
    data = copy.deepcopy(MINIMAL)
    data["sets"] = [
        {
            "name": f"tls/service-{i}",
            "dns_names": [f"service-{i}.internal"],
            "services": [{"cluster": "main", "service": f"s{i}"}],
        }
        for i in range(40)
    ]
    stack = Stack(App(), "Many")
    # When the construct is built, then no set travels in the environment
    certrotor = Certrotor(stack, "Certrotor", config=load_config(data), code=lambda_.Code.from_inline("x"))
    variables = stack.resolve(certrotor.function_settings.environment)
    assert "service-" not in json.dumps(variables)

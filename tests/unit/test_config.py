"""The configuration model: every validation rule, and the JSON round trip."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from certrotor.config import (
    DEFAULT_VALUE_LIMIT,
    Delivery,
    KeyAlgorithm,
    Schedule,
    ServiceRef,
    Usage,
    load_config,
    load_config_json,
    template_arn,
)
from certrotor.errors import ConfigError

CA_ARN = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/12345678-1234-1234-1234-123456789012"
ROLE_ARN = "arn:aws:iam::123456789012:role/web-task"

BASE: dict[str, Any] = {
    "ca": {"arn": CA_ARN},
    "sets": [{"name": "team/web", "dns_names": ["web.example.test"]}],
}


def _config(**set_fields: Any) -> dict[str, Any]:
    """The base config with fields of its one set replaced."""
    data = copy.deepcopy(BASE)
    data["sets"][0].update(set_fields)
    return data


def _refused(data: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(data)


# --------------------------------------------------------------------------
# What a minimal config means


def test_a_minimal_set_gets_the_documented_defaults() -> None:
    # Given a set with a name and one DNS name / When
    cert_set = load_config(_config()).sets[0]
    # Then
    assert cert_set.common_name == "web.example.test"
    assert cert_set.key_algorithm is KeyAlgorithm.EC_P256
    assert cert_set.usage is Usage.SERVER
    assert cert_set.chain_parts == 2
    assert cert_set.value_limit == DEFAULT_VALUE_LIMIT == 4096
    assert cert_set.schedule == Schedule("rate(20 days)", None, True)


def test_the_common_name_defaults_to_the_first_ip_when_there_are_no_dns_names() -> None:
    cert_set = load_config(_config(dns_names=[], ip_addresses=["127.0.0.1"])).sets[0]
    assert cert_set.common_name == "127.0.0.1"


def test_a_set_names_its_part_secrets() -> None:
    cert_set = load_config(_config(chain_parts=3)).sets[0]
    assert cert_set.part_secret_names == ("team/web/key", "team/web/chain-0", "team/web/chain-1", "team/web/chain-2")


def test_template_arns_follow_the_usage() -> None:
    assert template_arn(Usage.SERVER) == "arn:aws:acm-pca:::template/EndEntityServerAuthCertificate/V1"
    assert template_arn(Usage.CLIENT, "aws-cn").startswith("arn:aws-cn:acm-pca:::template/EndEntityClientAuth")
    assert template_arn(Usage.BOTH).endswith("/EndEntityCertificate/V1")


def test_an_unknown_set_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="no certificate set named 'nope'"):
        load_config(_config()).set_named("nope")


# --------------------------------------------------------------------------
# Keys, names, sizes


def test_an_unknown_key_algorithm_is_refused_listing_the_choices() -> None:
    _refused(_config(key_algorithm="RSA_1024"), r"key_algorithm: 'RSA_1024' is not one of EC_prime256v1, .*RSA_4096")


def test_a_key_algorithm_of_the_wrong_type_is_refused() -> None:
    _refused(_config(key_algorithm=["RSA_2048"]), "key_algorithm")


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_every_key_algorithm_is_accepted(algorithm: KeyAlgorithm) -> None:
    assert load_config(_config(key_algorithm=algorithm.value)).sets[0].key_algorithm is algorithm


def test_a_set_with_no_names_is_refused() -> None:
    _refused(_config(dns_names=[], ip_addresses=[]), "needs at least one of dns_names or ip_addresses")


@pytest.mark.parametrize("name", ["-bad.example.test", "under_score.test", "a..b", "x" * 64 + ".test", "*.*.test"])
def test_an_invalid_dns_name_is_refused(name: str) -> None:
    _refused(_config(dns_names=[name], common_name="ok.test"), "is not a DNS name")


def test_an_invalid_ip_address_is_refused() -> None:
    _refused(_config(ip_addresses=["300.1.1.1"]), r"ip_addresses: '300\.1\.1\.1' is not an IP address")


def test_names_that_are_not_a_list_of_strings_are_refused() -> None:
    _refused(_config(dns_names="web.example.test"), "dns_names: expected a list of strings")


def test_a_common_name_not_among_the_sans_is_refused() -> None:
    # RFC 6125 6.4.4: a CN that is not also a SAN is a name nobody checks
    _refused(_config(common_name="other.example.test"), "must also be listed in dns_names or ip_addresses")


def test_a_common_name_over_64_characters_is_refused() -> None:
    long_name = "a" * 60 + ".test"
    _refused(_config(dns_names=[long_name], common_name=long_name), "common_name: 1-64 characters")


@pytest.mark.parametrize("chain_parts", [0, -1, 21])
def test_chain_parts_outside_1_to_20_is_refused(chain_parts: int) -> None:
    _refused(_config(chain_parts=chain_parts), "chain_parts")


@pytest.mark.parametrize("limit", [1023, 65537, 0])
def test_a_value_limit_outside_1024_to_65536_is_refused(limit: int) -> None:
    _refused(_config(value_limit=limit), r"value_limit: -?\d+ is outside 1,024-65,536")


@pytest.mark.parametrize("limit", [1024, 65536])
def test_a_value_limit_at_either_bound_is_accepted(limit: int) -> None:
    assert load_config(_config(value_limit=limit)).sets[0].value_limit == limit


@pytest.mark.parametrize("value", [True, "30", 1.5])
def test_a_number_of_the_wrong_type_is_refused(value: object) -> None:
    _refused(_config(validity_days=value), "validity_days: expected an integer")


def test_an_invalid_set_name_is_refused() -> None:
    _refused(_config(name="has space"), "is not a valid secret name")


def test_an_unknown_usage_is_refused() -> None:
    _refused(_config(usage="email"), "usage: expected one of server, client, both")


# --------------------------------------------------------------------------
# Schedule (Secrets Manager: at most every four hours)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 hour)",
        "rate(3 hours)",
        "rate(0 days)",
        "cron(0 */2 * * ? *)",
        "cron(0 * * * ? *)",
        "cron(0 0/3 * * ? *)",
    ],
)
def test_a_schedule_more_often_than_every_four_hours_is_refused(expression: str) -> None:
    _refused(_config(schedule=expression), "more often than every 4 hours")


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 0-23/2 * * ? *)",  # a stepped range
        "cron(0 1,2,3 * * ? *)",  # a list of adjacent hours
        "cron(0 8-11 * * ? *)",  # a range: hourly from 8 to 11
        "cron(0 0/7 * * ? *)",  # 21:00 then 00:00 the next day: steps restart daily
        "cron(0 22,1 * * ? *)",  # across midnight
    ],
)
def test_a_cron_whose_hours_are_closer_than_four_hours_is_refused(expression: str) -> None:
    _refused(_config(schedule=expression), "more often than every 4 hours")


@pytest.mark.parametrize(
    "expression",
    [
        "rate(4 hours)",
        "rate(1 day)",
        "rate(29 days)",
        "cron(0 4/12 * * ? *)",
        "cron(0 0/4 * * ? *)",
        "cron(0 2,14 * * ? *)",
        "cron(0 16 L * ? *)",
        "cron(0 8 ? * MON-FRI *)",
    ],
)
def test_a_schedule_of_four_hours_or_more_is_accepted(expression: str) -> None:
    # 45 days outlast the longest gap of each (a monthly cron: 31 days and a day's window).
    assert load_config(_config(schedule=expression, validity_days=45)).sets[0].schedule.expression == expression


def test_a_rate_in_minutes_is_refused_as_secrets_manager_has_none() -> None:
    # Secrets Manager rate() takes hours or days only
    _refused(_config(schedule="rate(240 minutes)"), r"is not rate\(N hours\|days\) or cron")


@pytest.mark.parametrize("expression", ["cron(30 8 * * ? *)", "cron(0/30 8 * * ? *)", "cron(* 8 * * ? *)"])
def test_a_cron_with_minutes_other_than_zero_is_refused(expression: str) -> None:
    # Secrets Manager rotation windows open on the hour: minutes must be 0
    _refused(_config(schedule=expression), "minutes must be 0")


def test_a_cron_with_a_year_is_refused() -> None:
    _refused(_config(schedule="cron(0 8 * * ? 2030)"), r"year must be \*")


@pytest.mark.parametrize("expression", ["cron(0 8 * *)", "cron(0 25 * * ? *)", "cron(0 a-b * * ? *)", "every day"])
def test_a_malformed_schedule_is_refused(expression: str) -> None:
    _refused(_config(schedule=expression), "schedule.expression")


def test_days_become_a_rate_expression() -> None:
    assert load_config(_config(schedule={"days": 7})).sets[0].schedule.expression == "rate(7 days)"
    assert load_config(_config(schedule={"days": 1})).sets[0].schedule.expression == "rate(1 day)"


def test_days_and_an_expression_together_are_refused() -> None:
    _refused(_config(schedule={"days": 7, "expression": "rate(7 days)"}), "either days or expression, not both")


@pytest.mark.parametrize("window", ["0h", "25h", "4 hours", "4"])
def test_a_window_that_is_not_1h_to_24h_is_refused(window: str) -> None:
    _refused(_config(schedule={"expression": "rate(1 day)", "window": window}), "schedule.window")


def test_a_window_longer_than_the_interval_is_refused() -> None:
    # The window must not reach into the next rotation window
    _refused(_config(schedule={"expression": "rate(6 hours)", "window": "8h"}), "window: 8h is longer than")


def test_a_cron_window_that_runs_into_the_next_day_is_refused() -> None:
    # The window must not extend into the next UTC day
    _refused(_config(schedule={"expression": "cron(0 22 * * ? *)", "window": "4h"}), "next UTC day")


def test_a_window_within_the_interval_is_accepted() -> None:
    schedule = load_config(_config(schedule={"expression": "cron(0 2/12 * * ? *)", "window": "3h"})).sets[0].schedule
    assert schedule.window == "3h"


# --------------------------------------------------------------------------
# CA, roles, services


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/not-a-uuid",
        "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
        "certificate-authority/12345678-1234-1234-1234-123456789012",
    ],
)
def test_an_invalid_ca_arn_is_refused(arn: str) -> None:
    data = _config()
    data["ca"] = {"arn": arn}
    _refused(data, "ca.arn: .* is not a Private CA ARN")


@pytest.mark.parametrize("ca", [{}, {"arn": CA_ARN, "create": True}, None])
def test_the_ca_needs_exactly_one_of_arn_or_create(ca: object) -> None:
    data = _config()
    data["ca"] = ca
    _refused(data, "ca: ")


def test_a_created_ca_needs_no_arn() -> None:
    data = _config()
    data["ca"] = {"create": True}
    assert load_config(data).ca.create


def test_an_unknown_ca_usage_mode_is_refused() -> None:
    data = _config()
    data["ca"] = {"arn": CA_ARN, "usage_mode": "CHEAP"}
    _refused(data, "ca.usage_mode")


@pytest.mark.parametrize("field", ["reader_role_arns", "key_reader_role_arns"])
@pytest.mark.parametrize(
    "arn",
    ["arn:aws:iam::123456789012:user/alice", "arn:aws:iam::12345:role/web", "web-task"],
)
def test_an_invalid_role_arn_is_refused(field: str, arn: str) -> None:
    _refused(_config(**{field: [ROLE_ARN, arn]}), "is not an IAM role ARN")


def test_valid_role_arns_are_kept() -> None:
    cert_set = load_config(_config(reader_role_arns=[ROLE_ARN], key_reader_role_arns=[ROLE_ARN])).sets[0]
    assert cert_set.reader_role_arns == (ROLE_ARN,)
    assert cert_set.key_reader_role_arns == (ROLE_ARN,)


def test_a_service_needs_a_cluster_and_a_service() -> None:
    _refused(_config(services=[{"cluster": "c"}]), r"services\[0\]: needs cluster and service")


def test_a_service_with_an_unknown_field_is_refused() -> None:
    _refused(_config(services=[{"cluster": "c", "service": "s", "servce": "t"}]), r"services\[0\]: unknown field")


def test_a_service_with_empty_names_is_refused() -> None:
    _refused(_config(services=[{"cluster": "", "service": "s"}]), r"services\[0\]")


def test_services_are_kept_in_order() -> None:
    services = [{"cluster": "c", "service": "a"}, {"cluster": "c", "service": "b"}]
    assert load_config(_config(services=services)).sets[0].services == (ServiceRef("c", "a"), ServiceRef("c", "b"))


# --------------------------------------------------------------------------
# Several sets


def test_duplicate_set_names_are_refused() -> None:
    data = _config()
    data["sets"].append(copy.deepcopy(data["sets"][0]))
    _refused(data, r"sets: duplicate names \['team/web'\]")


@pytest.mark.parametrize("other", ["team/web/key", "team/web/chain-0", "team/web/anything"])
def test_a_set_name_under_another_sets_name_is_refused(other: str) -> None:
    # Given a set whose name is, or could become, a part secret of another set
    data = _config()
    data["sets"].append({"name": other, "dns_names": ["other.example.test"]})
    # When / Then
    _refused(data, f"sets: '{other}' collides with the part secrets of 'team/web'")


def test_sets_that_only_share_a_prefix_are_accepted() -> None:
    data = _config()
    data["sets"].append({"name": "team/web2", "dns_names": ["other.example.test"]})
    assert [s.name for s in load_config(data).sets] == ["team/web", "team/web2"]


def test_no_sets_is_refused() -> None:
    data = _config()
    data["sets"] = []
    _refused(data, "at least one certificate set")


def test_a_short_lived_ca_refuses_validity_over_seven_days() -> None:
    data = _config(validity_days=8, schedule="rate(5 days)")
    data["ca"] = {"arn": CA_ARN, "usage_mode": "SHORT_LIVED_CERTIFICATE"}
    _refused(data, r"sets\[team/web\].validity_days: a short-lived CA issues at most 7 days")


def test_a_short_lived_ca_accepts_seven_days() -> None:
    data = _config(validity_days=7, schedule="rate(5 days)")
    data["ca"] = {"arn": CA_ARN, "usage_mode": "SHORT_LIVED_CERTIFICATE"}
    data["expiry_alarm_days"] = 2
    assert load_config(data).sets[0].validity_days == 7


# --------------------------------------------------------------------------
# Unknown fields and other top-level rules


@pytest.mark.parametrize(
    ("where", "data"),
    [
        ("config", {**BASE, "colour": "blue"}),
        (r"sets\[0\]", _config(colour="blue")),
        ("ca", {**BASE, "ca": {"arn": CA_ARN, "colour": "blue"}}),
        ("schedule", _config(schedule={"expression": "rate(1 day)", "colour": "blue"})),
        (r"issuer_policies\[0\]", {**BASE, "issuer_policies": [{"principal": "web", "colour": "blue"}]}),
    ],
)
def test_an_unknown_field_is_refused_naming_it(where: str, data: dict[str, Any]) -> None:
    _refused(data, f"{where}.*unknown field\\(s\\) colour")


def test_a_config_that_is_not_an_object_is_refused() -> None:
    _refused(["not", "an", "object"], "config: expected an object")


def test_an_unknown_log_level_is_refused() -> None:
    _refused({**BASE, "log_level": "LOUD"}, "log_level")


def test_an_issuer_policy_needs_a_principal() -> None:
    _refused({**BASE, "issuer_policies": [{"allowed_dns": ["*.svc.test"]}]}, "needs a principal")


def test_an_issuer_policy_cannot_lower_the_rsa_floor() -> None:
    _refused({**BASE, "issuer_policies": [{"principal": "web", "min_rsa_bits": 1024}]}, "min_rsa_bits")


def test_config_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(ConfigError, match="config is not JSON"):
        load_config_json("{not json")


# --------------------------------------------------------------------------
# Round trip


def test_a_full_config_round_trips_through_json() -> None:
    # Given a config using every kind of field
    data = {
        "ca": {"arn": CA_ARN, "usage_mode": "GENERAL_PURPOSE", "quota": 50_000},
        "sets": [
            {
                "name": "team/web",
                "common_name": "web.example.test",
                "dns_names": ["web.example.test", "*.web.example.test"],
                "ip_addresses": ["10.0.0.1", "2001:db8::1"],
                "key_algorithm": "RSA_3072",
                "usage": "both",
                "validity_days": 14,
                "chain_parts": 3,
                "value_limit": 8192,
                "schedule": {"expression": "cron(0 2/12 * * ? *)", "window": "2h", "rotate_immediately": False},
                "services": [{"cluster": "prod", "service": "web"}],
                "redeploy_strict": True,
                "reader_role_arns": [ROLE_ARN],
                "key_reader_role_arns": [ROLE_ARN],
            },
            {"name": "team/api", "ip_addresses": ["127.0.0.1"], "schedule": {"days": 7}},
        ],
        "issuer_policies": [
            {"principal": "web-task", "allowed_dns": ["*.svc.test"], "allowed_ips": ["10.0.0.0/8"], "sets": ["team/*"]}
        ],
        "service_name": "certrotor-test",
        "log_level": "debug",
        "log_retention_days": 90,
        "expiry_alarm_days": 10,
        "alarm_email": "ops@example.test",
    }
    config = load_config(data)
    # When it is serialized for the Lambda and read back
    again = load_config_json(config.to_json())
    # Then it is the same config, and serializing again gives the same text
    assert again == config
    assert again.to_json() == config.to_json()
    assert json.loads(config.to_json())["sets"][0]["key_algorithm"] == "RSA_3072"


def test_a_validity_shorter_than_the_rotation_interval_is_refused() -> None:
    # A certificate valid 7 days rotated every 20 would be expired for 13 days of each cycle
    _refused(_config(validity_days=7, schedule="rate(20 days)"), r"validity_days: 7 days does not outlast")


def test_a_rate_over_a_thousand_days_is_refused() -> None:
    _refused(_config(validity_days=3650, schedule="rate(1001 days)"), r"longer than Secrets Manager's 1000 days")


def test_an_alarm_email_that_is_not_an_address_is_refused() -> None:
    _refused({**BASE, "alarm_email": "ops"}, r"alarm_email: 'ops' is not an email address")


def test_the_serialized_config_leaves_defaults_out_and_loads_back_equal() -> None:
    # Given a config with mostly default fields
    config = load_config(_config())
    # When it is serialized for the function's environment
    text = config.to_json()
    # Then defaults are not spelled out, and loading restores them
    assert "value_limit" not in text and "chain_parts" not in text
    assert load_config_json(text) == config


# --------------------------------------------------------------------------
# Delivery mode


def test_delivery_defaults_to_redeploy_and_takes_reload_or_both() -> None:
    assert load_config(_config()).sets[0].delivery is Delivery.REDEPLOY
    assert load_config(_config()).sets[0].redeploys
    reload_set = load_config(_config(delivery="reload")).sets[0]
    assert reload_set.delivery is Delivery.RELOAD
    assert not reload_set.redeploys
    both = load_config(_config(delivery="both", services=[{"cluster": "prod", "service": "web"}])).sets[0]
    assert both.delivery is Delivery.BOTH
    assert both.redeploys


def test_the_delivery_mode_travels_with_the_set_through_json() -> None:
    config = load_config(_config(delivery="reload"))
    assert json.loads(config.to_json())["sets"][0]["delivery"] == "reload"
    assert load_config_json(config.to_json()).sets[0].delivery is Delivery.RELOAD
    # the default is left out, as every default is
    assert "delivery" not in json.loads(load_config(_config()).to_json())["sets"][0]


def test_an_unknown_delivery_mode_is_refused() -> None:
    _refused(_config(delivery="push"), r"sets\[team/web\]\.delivery: expected one of redeploy, reload, both")


def test_a_reload_set_with_services_to_redeploy_is_refused() -> None:
    _refused(
        _config(delivery="reload", services=[{"cluster": "prod", "service": "web"}]),
        r"services: delivery 'reload' redeploys nothing; remove services, or use delivery 'both'",
    )
    _refused(_config(delivery="reload", redeploy_strict=True), r"redeploy_strict: delivery 'reload' redeploys nothing")


def test_superseded_certificates_are_revoked_automatically_after_a_day_by_default() -> None:
    config = load_config(_config())
    assert (config.ca.revoke_superseded, config.ca.revoke_grace_hours) == ("auto", 24)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("revoke_superseded", "yes", "ca.revoke_superseded: 'yes' is not one of auto, on, off"),
        ("revoke_grace_hours", 0, "ca.revoke_grace_hours: 0 is outside 1-8,760"),
        ("revoke_grace_hours", "24", "ca.revoke_grace_hours: expected an integer"),
    ],
)
def test_bad_revocation_settings_are_refused_naming_the_field(field: str, value: Any, message: str) -> None:
    data = _config()
    data["ca"][field] = value
    with pytest.raises(ConfigError, match=message):
        load_config(data)


def test_a_created_ca_publishes_a_crl_and_no_ocsp_by_default() -> None:
    config = load_config(_config())
    assert (config.ca.crl, config.ca.ocsp) == (True, False)


def test_revocation_flags_must_be_booleans() -> None:
    data = _config()
    data["ca"]["ocsp"] = "yes"
    with pytest.raises(ConfigError, match=r"ca\.ocsp: expected true or false"):
        load_config(data)


PREVIOUS = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "b" * 36


@pytest.mark.parametrize(
    ("previous", "message"),
    [
        ("not a list", "a list of at most 10"),
        (["arn:nope"], "is not a Private CA ARN"),
        ([PREVIOUS, PREVIOUS], "listed twice"),
    ],
)
def test_previous_cas_must_be_distinct_private_ca_arns(previous: Any, message: str) -> None:
    arn = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "a" * 36
    data: dict[str, Any] = {
        "ca": {"arn": arn, "previous_arns": previous},
        "sets": [{"name": "tls/x", "dns_names": ["x.internal"]}],
    }
    with pytest.raises(ConfigError, match=message):
        load_config(data)


def test_the_current_ca_is_not_a_previous_ca() -> None:
    arn = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "a" * 36
    with pytest.raises(ConfigError, match=r"is ca\.arn or ca\.next_arn already"):
        load_config({"ca": {"arn": arn, "previous_arns": [arn]}, "sets": [{"name": "tls/x", "dns_names": ["x.in"]}]})


def test_previous_cas_reach_the_functions_settings() -> None:
    arn = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "a" * 36
    config = load_config(
        {"ca": {"arn": arn, "previous_arns": [PREVIOUS]}, "sets": [{"name": "tls/x", "dns_names": ["x.in"]}]}
    )
    assert load_config_json(config.to_json()).ca.previous_arns == (PREVIOUS,)

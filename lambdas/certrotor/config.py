"""The one typed configuration model, shared by the CDK stack, the Lambda
functions and local mode.

`load_config(mapping)` validates everything once and returns frozen values;
bad config raises ConfigError naming the field, before anything is built.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import Any

from certrotor.errors import ConfigError

MIN_VALUE_LIMIT = 1024
MAX_VALUE_LIMIT = 65536
DEFAULT_VALUE_LIMIT = 4096
# Rotating more often than this would burn Private CA quota and hit the
# Secrets Manager write limits (50 TPS shared) for no security gain.
MIN_ROTATION_HOURS = 4
DEFAULT_PCA_QUOTA = 1_000_000
# Curves a CSR may use (NIST SP 800-57: at least 128-bit security strength).
ISSUER_CURVES = ("secp256r1", "secp384r1", "secp521r1")

_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+$")
_PCA_ARN = re.compile(r"^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/[0-9a-f-]{36}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
# Secret names: 1-512 chars of letters, digits and /_+=.@-; ours add "/key" etc.
_SET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,400}$")
_DNS = re.compile(
    r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
# Secrets Manager rate() takes hours or days only (no minutes).
_RATE = re.compile(r"^rate\((\d+) (hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# One item of a cron() hours field: *, H or H-H, each with an optional /step.
_CRON_HOURS_ITEM = re.compile(r"^(\*|\d{1,2}(?:-\d{1,2})?)(?:/(\d{1,2}))?$")
_DURATION = re.compile(r"^(\d+)h$")


def key_secret_name(set_name: str) -> str:
    """The secret holding a set's private key alone."""
    return f"{set_name}/key"


def chain_secret_name(set_name: str, index: int) -> str:
    """The secret holding a set's chain part `index`."""
    return f"{set_name}/chain-{index}"


class KeyAlgorithm(StrEnum):
    """Key types a set may use; anything weaker is refused."""

    EC_P256 = "EC_prime256v1"
    EC_P384 = "EC_secp384r1"
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"


class Usage(StrEnum):
    """What the certificate is for; selects the Private CA template."""

    SERVER = "server"
    CLIENT = "client"
    BOTH = "both"


class Delivery(StrEnum):
    """How a rotation reaches running consumers.

    - redeploy: finishSecret forces a new deployment of the set's ECS services
      (tasks fetch the new set at start).
    - reload: no redeploy; consumers run `certrotor-fetch --watch`/`--sidecar`
      (or the Lambda provider) and pick the new set up within their interval.
    - both: the redeploy, and consumers that reload.
    """

    REDEPLOY = "redeploy"
    RELOAD = "reload"
    BOTH = "both"


TEMPLATES: dict[Usage, str] = {
    Usage.SERVER: "EndEntityServerAuthCertificate/V1",
    Usage.CLIENT: "EndEntityClientAuthCertificate/V1",
    Usage.BOTH: "EndEntityCertificate/V1",
}


def template_arn(usage: Usage, partition: str = "aws") -> str:
    """The Private CA template ARN for a usage."""
    return f"arn:{partition}:acm-pca:::template/{TEMPLATES[usage]}"


@dataclass(frozen=True)
class Schedule:
    """When Secrets Manager rotates the set.

    `expression` is `rate(N days|hours)` or `cron(...)`; `window` is the
    rotation window duration such as `4h`.
    """

    expression: str = "rate(20 days)"
    window: str | None = None
    rotate_immediately: bool = True

    def rate_hours(self) -> int | None:
        """The interval in hours for a rate() expression, else None."""
        match = _RATE.match(self.expression)
        if not match:
            return None
        value, unit = int(match.group(1)), match.group(2)
        if unit.startswith("hour"):
            return value
        return value * 24


@dataclass(frozen=True)
class ServiceRef:
    """An ECS service that must be redeployed after a rotation."""

    cluster: str
    service: str


@dataclass(frozen=True)
class CertificateSetConfig:
    """One certificate set: what to issue, where to store it, who reads it."""

    name: str
    common_name: str
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    key_algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256
    usage: Usage = Usage.SERVER
    validity_days: int = 30
    chain_parts: int = 2
    value_limit: int = DEFAULT_VALUE_LIMIT
    schedule: Schedule = field(default_factory=Schedule)
    services: tuple[ServiceRef, ...] = ()
    redeploy_strict: bool = False
    reader_role_arns: tuple[str, ...] = ()
    key_reader_role_arns: tuple[str, ...] = ()
    delivery: Delivery = Delivery.REDEPLOY

    @property
    def redeploys(self) -> bool:
        """finishSecret redeploys the set's services (delivery redeploy or both)."""
        return self.delivery is not Delivery.RELOAD

    @property
    def key_secret_name(self) -> str:
        return key_secret_name(self.name)

    def chain_secret_name(self, index: int) -> str:
        return chain_secret_name(self.name, index)

    @property
    def chain_secret_names(self) -> tuple[str, ...]:
        return tuple(self.chain_secret_name(i) for i in range(self.chain_parts))

    @property
    def part_secret_names(self) -> tuple[str, ...]:
        """Every secret of the set except the manifest: key, then chain parts."""
        return (self.key_secret_name, *self.chain_secret_names)

    @property
    def all_names(self) -> tuple[str, ...]:
        """DNS names and IP addresses, for SANs."""
        return (*self.dns_names, *self.ip_addresses)


@dataclass(frozen=True)
class CaConfig:
    """The Private CA: referenced by ARN, or created by the stack."""

    arn: str | None = None
    create: bool = False
    # "GENERAL_PURPOSE" or "SHORT_LIVED_CERTIFICATE" (validity <= 7 days).
    usage_mode: str = "GENERAL_PURPOSE"
    common_name: str = "certrotor CA"
    quota: int = DEFAULT_PCA_QUOTA
    # Revoke the certificate a rotation superseded once it was delivered and
    # this grace has passed: "auto" does it only when the CA publishes a CRL
    # or OCSP (revocation nobody can see is pointless), "on" always, "off" never.
    revoke_superseded: str = "auto"
    revoke_grace_hours: int = 24
    # For a CA the stack creates: publish a CRL (to an S3 bucket the stack
    # creates) and/or answer OCSP (billed per query).
    crl: bool = True
    ocsp: bool = False
    # The CA `certrotor ca rotate` moves the sets to: the rotation function
    # may issue from it and the monitor may revoke on it.
    next_arn: str | None = None


REVOKE_SUPERSEDED_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class IssuerPolicy:
    """What one caller of the on-demand issuer may ask for."""

    principal: str
    allowed_dns: tuple[str, ...] = ()
    allow_ip: bool = False
    min_rsa_bits: int = 2048
    allowed_curves: tuple[str, ...] = ("secp256r1", "secp384r1")
    max_validity_days: int = 30
    usage: Usage = Usage.SERVER
    rate_per_minute: int = 60
    sets: tuple[str, ...] = ()


@dataclass(frozen=True)
class CertrotorConfig:
    """The whole configuration: one CA and the certificate sets."""

    ca: CaConfig
    sets: tuple[CertificateSetConfig, ...]
    issuer_policies: tuple[IssuerPolicy, ...] = ()
    service_name: str = "certrotor"
    log_level: str = "INFO"
    log_retention_days: int = 30
    expiry_alarm_days: int = 7
    alarm_email: str | None = None

    def set_named(self, name: str) -> CertificateSetConfig:
        """The set whose manifest secret has this name."""
        for cert_set in self.sets:
            if cert_set.name == name:
                return cert_set
        raise ConfigError(f"no certificate set named {name!r} in the configuration")

    def to_json(self) -> str:
        """Serialize for the Lambda's settings (no secrets live in config).

        Fields at their default are left out: Lambda caps a function's whole
        environment at 4 KB, and load_config fills the defaults back in.
        """
        return json.dumps(_compact(self), sort_keys=True, separators=(",", ":"))


def _compact(value: Any) -> Any:
    """A dataclass as plain data, without the fields that hold their default."""
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for spec in fields(value):
            item = getattr(value, spec.name)
            if spec.default is not MISSING and item == spec.default:
                continue
            if spec.default_factory is not MISSING and item == spec.default_factory():
                continue
            out[spec.name] = _compact(item)
        return out
    if isinstance(value, tuple | list):
        return [_compact(v) for v in value]
    return value


# --------------------------------------------------------------------------
# Validation


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    _require(
        isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, str) for v in value),
        f"{where}: expected a list of strings",
    )
    return tuple(value)


def _int(value: Any, where: str, low: int, high: int) -> int:
    _require(isinstance(value, int) and not isinstance(value, bool), f"{where}: expected an integer, got {value!r}")
    _require(low <= value <= high, f"{where}: {value} is outside {low:,}-{high:,}")
    return int(value)


def _unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    _require(not extra, f"{where}: unknown field(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")


def _cron_hours(field: str, where: str) -> list[int]:
    """The hours of the day (0-23) a cron() hours field selects."""
    hours: set[int] = set()
    for item in field.split(","):
        match = _CRON_HOURS_ITEM.match(item)
        if match is None:
            raise ConfigError(f"{where}: hours field {field!r} is not *, H, H-H or a list of those, with /step")
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            low, high = 0, 23
        elif "-" in span:
            low, high = (int(bound) for bound in span.split("-"))
        else:
            # "H/step" runs from H to the end of the day; plain "H" is one hour.
            low = int(span)
            high = 23 if match.group(2) else low
        _require(0 <= low <= high <= 23 and step >= 1, f"{where}: hours field {field!r} is outside 0-23")
        hours.update(range(low, high + 1, step))
    return sorted(hours)


def _closest_hours(hours: list[int]) -> int:
    """The shortest time between two rotations at these hours of every day.

    Secrets Manager restarts hour steps each day, so the gap from the last
    hour to the first hour of the next day counts too.
    """
    gaps = [later - earlier for earlier, later in itertools.pairwise(hours)]
    return min([*gaps, hours[0] + 24 - hours[-1]])


def _schedule(data: Any, where: str) -> Schedule:
    """Validate a rotation schedule against Secrets Manager's rules.

    Rotation at most every four hours (MIN_ROTATION_HOURS); rate() in hours or
    days; cron() with minutes 0 and year * (rotation windows open on the hour);
    a window of 1h-24h that reaches neither the next window nor the next UTC day.
    """
    if data is None:
        return Schedule()
    if isinstance(data, str):
        data = {"expression": data}
    _require(isinstance(data, Mapping), f"{where}: expected an object or an expression string")
    _unknown(data, {"expression", "days", "window", "rotate_immediately"}, where)
    if "days" in data:
        _require("expression" not in data, f"{where}: give either days or expression, not both")
        days = _int(data["days"], f"{where}.days", 1, 1000)
        expression = f"rate({days} {'day' if days == 1 else 'days'})"
    else:
        expression = str(data.get("expression", Schedule.expression))
    schedule = Schedule(
        expression=expression,
        window=data.get("window"),
        rotate_immediately=bool(data.get("rotate_immediately", True)),
    )
    cron = _CRON.match(expression)
    # Hours between rotations, and the latest hour a window opens (cron only).
    if cron:
        fields = cron.group(1).split()
        _require(len(fields) == 6, f"{where}.expression: cron() needs 6 fields, got {len(fields)}")
        _require(fields[0] == "0", f"{where}.expression: minutes must be 0 (rotation windows open on the hour)")
        _require(fields[5] == "*", f"{where}.expression: year must be * (schedules repeat within a year)")
        hours = _cron_hours(fields[1], f"{where}.expression")
        hours_between = _closest_hours(hours)
        _require(
            hours_between >= MIN_ROTATION_HOURS,
            f"{where}.expression: rotates at hours {', '.join(map(str, hours))}, {hours_between} hour(s) apart "
            f"at the closest: more often than every {MIN_ROTATION_HOURS} hours",
        )
        last_opening = hours[-1]
    else:
        rate_hours = schedule.rate_hours()
        if rate_hours is None:
            raise ConfigError(f"{where}.expression: {expression!r} is not rate(N hours|days) or cron(...)")
        _require(
            rate_hours <= 1000 * 24, f"{where}.expression: {expression!r} is longer than Secrets Manager's 1000 days"
        )
        _require(
            rate_hours >= MIN_ROTATION_HOURS,
            f"{where}.expression: {expression!r} rotates more often than every {MIN_ROTATION_HOURS} hours",
        )
        hours_between, last_opening = rate_hours, 0
    if schedule.window is not None:
        window = _DURATION.match(str(schedule.window))
        _require(bool(window), f"{where}.window: expected a duration such as '4h'")
        window_hours = int(window.group(1)) if window else 0
        _require(1 <= window_hours <= 24, f"{where}.window: must be between 1h and 24h")
        _require(
            window_hours <= hours_between,
            f"{where}.window: {schedule.window} is longer than the {hours_between} hours between rotations",
        )
        _require(
            last_opening + window_hours <= 24,
            f"{where}.window: {schedule.window} from {last_opening}:00 runs into the next UTC day",
        )
    return schedule


def _set(data: Any, index: int) -> CertificateSetConfig:
    where = f"sets[{index}]"
    _require(isinstance(data, Mapping), f"{where}: expected an object")
    allowed = {f for f in CertificateSetConfig.__dataclass_fields__}
    _unknown(data, allowed, where)
    name = data.get("name")
    _require(
        isinstance(name, str) and bool(_SET_NAME.match(name)), f"{where}.name: {name!r} is not a valid secret name"
    )
    where = f"sets[{name}]"
    common_name = data.get("common_name")
    dns_names = _strings(data.get("dns_names"), f"{where}.dns_names")
    ip_addresses = _strings(data.get("ip_addresses"), f"{where}.ip_addresses")
    _require(bool(dns_names or ip_addresses), f"{where}: needs at least one of dns_names or ip_addresses")
    for dns in dns_names:
        _require(bool(_DNS.match(dns)) and len(dns) <= 253, f"{where}.dns_names: {dns!r} is not a DNS name")
    for ip in ip_addresses:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ConfigError(f"{where}.ip_addresses: {ip!r} is not an IP address") from None
    if common_name is None:
        common_name = (dns_names or ip_addresses)[0]
    _require(isinstance(common_name, str) and 0 < len(common_name) <= 64, f"{where}.common_name: 1-64 characters")
    # RFC 6125 section 6.4.4: clients ignore the CN when SANs exist, so a CN
    # that is not also a SAN would be a name nobody can verify.
    _require(
        common_name in dns_names or common_name in ip_addresses,
        f"{where}.common_name: {common_name!r} must also be listed in dns_names or ip_addresses",
    )
    try:
        key_algorithm = KeyAlgorithm(data.get("key_algorithm", KeyAlgorithm.EC_P256))
    except ValueError:
        choices = ", ".join(k.value for k in KeyAlgorithm)
        raise ConfigError(f"{where}.key_algorithm: {data.get('key_algorithm')!r} is not one of {choices}") from None
    try:
        usage = Usage(data.get("usage", Usage.SERVER))
    except ValueError:
        raise ConfigError(f"{where}.usage: expected one of server, client, both") from None
    services = []
    for i, svc in enumerate(data.get("services") or ()):
        at = f"{where}.services[{i}]"
        _require(isinstance(svc, Mapping) and {"cluster", "service"} <= set(svc), f"{at}: needs cluster and service")
        _unknown(svc, {"cluster", "service"}, at)
        _require(
            all(isinstance(svc[k], str) and svc[k] for k in ("cluster", "service")),
            f"{at}: cluster and service must be non-empty strings",
        )
        services.append(ServiceRef(cluster=svc["cluster"], service=svc["service"]))
    try:
        delivery = Delivery(data.get("delivery", Delivery.REDEPLOY))
    except ValueError:
        raise ConfigError(f"{where}.delivery: expected one of redeploy, reload, both") from None
    if delivery is Delivery.RELOAD:
        _require(
            not services,
            f"{where}.services: delivery 'reload' redeploys nothing; remove services, or use delivery 'both'",
        )
        _require(
            not data.get("redeploy_strict", False),
            f"{where}.redeploy_strict: delivery 'reload' redeploys nothing; remove redeploy_strict",
        )
    roles = _strings(data.get("reader_role_arns"), f"{where}.reader_role_arns")
    key_roles = _strings(data.get("key_reader_role_arns"), f"{where}.key_reader_role_arns")
    for arn in (*roles, *key_roles):
        _require(bool(_ROLE_ARN.match(arn)), f"{where}: {arn!r} is not an IAM role ARN")
    validity_days = _int(data.get("validity_days", 30), f"{where}.validity_days", 1, 3650)
    schedule = _schedule(data.get("schedule"), f"{where}.schedule")
    interval = schedule.rate_hours()
    # A certificate must outlive the interval between rotations, or it expires
    # before the next one replaces it (cron schedules are not checked here).
    _require(
        interval is None or validity_days * 24 > interval,
        f"{where}.validity_days: {validity_days} days does not outlast the rotation interval "
        f"({schedule.expression}); certificates would expire before they rotate",
    )
    return CertificateSetConfig(
        name=name,
        common_name=common_name,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        key_algorithm=key_algorithm,
        usage=usage,
        validity_days=validity_days,
        chain_parts=_int(data.get("chain_parts", 2), f"{where}.chain_parts", 1, 20),
        value_limit=_int(
            data.get("value_limit", DEFAULT_VALUE_LIMIT), f"{where}.value_limit", MIN_VALUE_LIMIT, MAX_VALUE_LIMIT
        ),
        schedule=schedule,
        services=tuple(services),
        redeploy_strict=bool(data.get("redeploy_strict", False)),
        reader_role_arns=roles,
        key_reader_role_arns=key_roles,
        delivery=delivery,
    )


def _ca(data: Any) -> CaConfig:
    _require(isinstance(data, Mapping), "ca: expected an object with arn, or create: true")
    _unknown(data, set(CaConfig.__dataclass_fields__), "ca")
    arn = data.get("arn")
    create = bool(data.get("create", False))
    _require(bool(arn) != create, "ca: give exactly one of arn or create: true")
    if arn is not None:
        _require(isinstance(arn, str) and bool(_PCA_ARN.match(arn)), f"ca.arn: {arn!r} is not a Private CA ARN")
    mode = data.get("usage_mode", "GENERAL_PURPOSE")
    _require(
        mode in ("GENERAL_PURPOSE", "SHORT_LIVED_CERTIFICATE"),
        "ca.usage_mode: GENERAL_PURPOSE or SHORT_LIVED_CERTIFICATE",
    )
    return CaConfig(
        arn=arn,
        create=create,
        usage_mode=mode,
        common_name=str(data.get("common_name", CaConfig.common_name)),
        quota=_int(data.get("quota", DEFAULT_PCA_QUOTA), "ca.quota", 1, 10_000_000),
        revoke_superseded=_revoke_mode(data.get("revoke_superseded", "auto")),
        # At least an hour: tasks draining the old certificate need that much.
        revoke_grace_hours=_int(data.get("revoke_grace_hours", 24), "ca.revoke_grace_hours", 1, 8760),
        crl=_flag(data.get("crl", True), "ca.crl"),
        ocsp=_flag(data.get("ocsp", False), "ca.ocsp"),
        next_arn=_next_arn(data.get("next_arn"), arn),
    )


def _next_arn(value: Any, arn: Any) -> str | None:
    if value is None:
        return None
    _require(isinstance(value, str) and bool(_PCA_ARN.match(value)), f"ca.next_arn: {value!r} is not a Private CA ARN")
    _require(value != arn, "ca.next_arn: the CA to rotate to must differ from ca.arn")
    return str(value)


def _flag(value: Any, where: str) -> bool:
    _require(isinstance(value, bool), f"{where}: expected true or false, got {value!r}")
    return bool(value)


def _revoke_mode(value: Any) -> str:
    _require(
        value in REVOKE_SUPERSEDED_MODES,
        f"ca.revoke_superseded: {value!r} is not one of {', '.join(REVOKE_SUPERSEDED_MODES)}",
    )
    return str(value)


def _policy(data: Any, index: int) -> IssuerPolicy:
    where = f"issuer_policies[{index}]"
    _require(isinstance(data, Mapping) and isinstance(data.get("principal"), str), f"{where}: needs a principal")
    _unknown(data, set(IssuerPolicy.__dataclass_fields__), where)
    try:
        usage = Usage(data.get("usage", Usage.SERVER))
    except ValueError:
        raise ConfigError(f"{where}.usage: expected one of server, client, both") from None
    curves = _strings(data.get("allowed_curves", ("secp256r1", "secp384r1")), f"{where}.allowed_curves")
    weak = sorted(set(curves) - set(ISSUER_CURVES))
    _require(not weak, f"{where}.allowed_curves: {', '.join(weak)} not allowed; choose from {', '.join(ISSUER_CURVES)}")
    return IssuerPolicy(
        principal=data["principal"],
        allowed_dns=_strings(data.get("allowed_dns"), f"{where}.allowed_dns"),
        allow_ip=bool(data.get("allow_ip", False)),
        min_rsa_bits=_int(data.get("min_rsa_bits", 2048), f"{where}.min_rsa_bits", 2048, 4096),
        allowed_curves=curves,
        max_validity_days=_int(data.get("max_validity_days", 30), f"{where}.max_validity_days", 1, 3650),
        usage=usage,
        rate_per_minute=_int(data.get("rate_per_minute", 60), f"{where}.rate_per_minute", 1, 100_000),
        sets=_strings(data.get("sets"), f"{where}.sets"),
    )


def _email(value: Any) -> str | None:
    if value is None:
        return None
    _require(isinstance(value, str) and bool(_EMAIL.match(value)), f"alarm_email: {value!r} is not an email address")
    return str(value)


def load_config(data: Mapping[str, Any]) -> CertrotorConfig:
    """Validate a plain mapping (cdk.json context, a JSON file, an env value)."""
    _require(isinstance(data, Mapping), "config: expected an object")
    _unknown(data, set(CertrotorConfig.__dataclass_fields__), "config")
    raw_sets = data.get("sets")
    if not isinstance(raw_sets, Sequence) or isinstance(raw_sets, str) or not raw_sets:
        raise ConfigError("sets: at least one certificate set is needed")
    sets = tuple(_set(item, i) for i, item in enumerate(raw_sets))
    names = [s.name for s in sets]
    _require(len(names) == len(set(names)), f"sets: duplicate names {sorted({n for n in names if names.count(n) > 1})}")
    for cert_set in sets:
        for other in names:
            _require(
                other == cert_set.name or not other.startswith(cert_set.name + "/"),
                f"sets: {other!r} collides with the part secrets of {cert_set.name!r}",
            )
    ca = _ca(data.get("ca"))
    if ca.usage_mode == "SHORT_LIVED_CERTIFICATE":
        for cert_set in sets:
            _require(
                cert_set.validity_days <= 7,
                f"sets[{cert_set.name}].validity_days: a short-lived CA issues at most 7 days",
            )
    level = str(data.get("log_level", "INFO")).upper()
    _require(level in ("DEBUG", "INFO", "WARNING", "ERROR"), "log_level: DEBUG, INFO, WARNING or ERROR")
    return CertrotorConfig(
        ca=ca,
        sets=sets,
        issuer_policies=tuple(_policy(p, i) for i, p in enumerate(data.get("issuer_policies") or ())),
        service_name=str(data.get("service_name", "certrotor")),
        log_level=level,
        log_retention_days=_int(data.get("log_retention_days", 30), "log_retention_days", 1, 3653),
        expiry_alarm_days=_int(data.get("expiry_alarm_days", 7), "expiry_alarm_days", 1, 365),
        alarm_email=_email(data.get("alarm_email")),
    )


def load_config_json(text: str) -> CertrotorConfig:
    """Parse and validate config serialized with `CertrotorConfig.to_json`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return load_config(data)

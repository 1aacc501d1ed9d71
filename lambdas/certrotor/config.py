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
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import Any

from certrotor.bounded_json import JsonRefused, parse_json
from certrotor.errors import ConfigError
from certrotor.names import MAX_VALUE_LIMIT, KeyAlgorithm, Usage, chain_secret_name, key_secret_name

__all__ = ["MAX_VALUE_LIMIT", "KeyAlgorithm", "Usage", "chain_secret_name", "key_secret_name"]

MIN_VALUE_LIMIT = 1024
DEFAULT_VALUE_LIMIT = 4096
# Rotating more often than this would burn Private CA quota and hit the
# Secrets Manager write limits (50 TPS shared) for no security gain.
MIN_ROTATION_HOURS = 4
DEFAULT_PCA_QUOTA = 1_000_000
# Serialized config: Lambda's environment holds 4 KB, a config file far less
# than this; its deepest honest nesting is sets[].services[] objects.
MAX_CONFIG_CHARS = 1024 * 1024
MAX_CONFIG_DEPTH = 8
# Curves a CSR may use (NIST SP 800-57: at least 128-bit security strength).
ISSUER_CURVES = ("secp256r1", "secp384r1", "secp521r1")

_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+$")
PCA_ARN_PATTERN = _PCA_ARN = re.compile(
    r"^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/[0-9a-f-]{36}$"
)
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
# A rotator's id: tag value, metric dimension and function-name part, unique
# per account and region.
_ROTATOR_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
DEFAULT_ROTATOR_ID = "certrotor"
# One item of a cron() hours field: *, H or H-H, each with an optional /step.
_CRON_HOURS_ITEM = re.compile(r"^(\*|\d{1,2}(?:-\d{1,2})?)(?:/(\d{1,2}))?$")
_DURATION = re.compile(r"^(\d{1,3})h$")
# service_name becomes part of resource names and the Powertools service.
SERVICE_NAME_PATTERN = _SERVICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
# One DNS label (RFC 1123 section 2.1).
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_COMMON_NAME = 64  # RFC 5280 appendix A.1: ub-common-name


# The longest PKCS#8 PEM each algorithm gives (measured, plus a little room):
# the key part alone must fit value_limit, or every createSecret fails.
MAX_KEY_PEM_CHARS: dict[KeyAlgorithm, int] = {
    KeyAlgorithm.EC_P256: 250,
    KeyAlgorithm.EC_P384: 320,
    KeyAlgorithm.RSA_2048: 1720,
    KeyAlgorithm.RSA_3072: 2500,
    KeyAlgorithm.RSA_4096: 3290,
}


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
    # A rate() is deployed as a cron() whose day and hour a hash of the set's
    # name picks (certrotor.fleet.spread); false deploys the rate() as written.
    spread: bool = True

    def rotation_rules(self) -> dict[str, str]:
        """Secrets Manager's RotationRules for this schedule."""
        return {"ScheduleExpression": self.expression, **({"Duration": self.window} if self.window else {})}

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
class CaRotationTarget:
    """A CA rotation asked for by the deploy: the monitor begins it and
    advances it on each run (services.ca_rotation.CaRotation.advance),
    stopping before stage `until` when given (e.g. "prune", to check before
    the old CA leaves the bundle)."""

    to_arn: str
    until: str | None = None


CA_ROTATION_STOPS = ("move", "prune")


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
    # CAs the sets issued from before (the old CA of a finished CA rotation):
    # nothing is issued from them, but the monitor may still revoke their
    # superseded certificates whose grace is running. Drop one once its
    # certificates are revoked (certrotor status) or expired.
    previous_arns: tuple[str, ...] = ()
    # A CA rotation the monitor runs (to next_arn), set by the deploy.
    rotation: CaRotationTarget | None = None


REVOKE_SUPERSEDED_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class IssuerPolicy:
    """What one caller of the on-demand issuer may ask for."""

    principal: str
    allowed_dns: tuple[str, ...] = ()
    allowed_ips: tuple[str, ...] = ()
    """CIDRs whose addresses a CSR may name as IP SANs; none by default."""
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
    service_name: str = DEFAULT_ROTATOR_ID
    log_level: str = "INFO"
    log_retention_days: int = 30
    expiry_alarm_days: int = 7
    alarm_email: str | None = None

    @property
    def rotator_id(self) -> str:
        """The rotator's id: ``service_name``, the value of every set's
        ``certrotor:rotator`` tag and the metrics' ``service`` dimension."""
        return self.service_name

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


def _bool(value: Any, where: str) -> bool:
    """A JSON true or false; never a string ("false" is not false)."""
    _require(isinstance(value, bool), f"{where}: expected true or false, got {value!r}")
    return bool(value)


def _text(value: Any, where: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
    _require(isinstance(value, str), f"{where}: expected a string, got {type(value).__name__} {value!r}")
    _require(pattern is None or bool(pattern.match(value)), f"{where}: {value!r} is not {hint}")
    return str(value)


def dns_pattern_problem(pattern: str) -> str | None:
    """Why an allowed_dns entry could never match a name, or None.

    A pattern is a DNS name, or "*." and a name of at least two labels (RFC
    6125 section 6.4.3: "*.internal" would cover a whole top-level domain, and
    the issuer never matches it); ASCII, at most 253 characters.
    """
    if not pattern.isascii() or not 0 < len(pattern) <= 253 or pattern.endswith("."):
        return "not an ASCII DNS name of 1-253 characters without a trailing dot"
    labels = pattern.lower().split(".")
    if labels[0] == "*":
        if len(labels) < 3:
            return "a wildcard needs at least two labels after '*.' (such as *.svc.internal)"
        labels = labels[1:]
    if not all(_LABEL.match(label) for label in labels):
        return "not a DNS name (letters, digits and inner hyphens; '*' only as the whole first label)"
    return None


# Addresses a certificate may name only when a policy lists them on purpose:
# narrowest first, so the metadata address is not covered by link-local.
SPECIAL_NETWORKS: tuple[tuple[str, str], ...] = (
    ("169.254.169.254/32", "the instance metadata address"),
    ("fd00:ec2::254/128", "the instance metadata address"),
    ("169.254.170.2/32", "the ECS task metadata address"),
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
)
# Never a certificate's address: unspecified, multicast, broadcast.
NEVER_NETWORKS = ("0.0.0.0/32", "::/128", "224.0.0.0/4", "ff00::/8", "255.255.255.255/32")


def _networks(value: Any, where: str) -> tuple[str, ...]:
    """CIDRs in canonical form; no network that allows any address."""
    out = []
    for text in _strings(value, where):
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError:
            raise ConfigError(f"{where}: {text!r} is not a CIDR such as 10.0.0.0/8 (host bits must be zero)") from None
        _require(
            network.prefixlen > 0,
            f"{where}: {text!r} allows every address; list the networks your callers use",
        )
        for never in NEVER_NETWORKS:
            other = ipaddress.ip_network(never)
            _require(
                network.version != other.version or not network.overlaps(other),  # type: ignore[arg-type]
                f"{where}: {text!r} includes {never}, which no certificate should name",
            )
        out.append(str(network))
    return tuple(out)


def _int(value: Any, where: str, low: int, high: int) -> int:
    _require(isinstance(value, int) and not isinstance(value, bool), f"{where}: expected an integer, got {value!r}")
    _require(low <= value <= high, f"{where}: {value} is outside {low:,}-{high:,}")
    return int(value)


def _unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    _require(not extra, f"{where}: unknown field(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")


def cron_hours(field: str, where: str = "schedule") -> list[int]:
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


def _widest_hours(hours: list[int]) -> int:
    """The longest time between two rotations at these hours of a day."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(hours)]
    return max([*gaps, hours[0] + 24 - hours[-1]])


def _cron_day_gap_days(fields: list[str]) -> int:
    """The most days between two rotation days of a cron() expression: 1 when
    it runs every day, else an upper bound from the day-of-month and
    day-of-week fields (a month, 31 days, when they are anything else)."""
    day_of_month, month, day_of_week = fields[2], fields[3], fields[4]
    if month not in ("*", "?"):
        return 366
    if day_of_month in ("*", "?") and day_of_week in ("*", "?"):
        return 1
    if day_of_month in ("*", "?"):
        days = _weekdays(day_of_week)
        if days is None:
            return 31
        ordered = sorted(days)
        return max([later - earlier for earlier, later in itertools.pairwise(ordered)] + [ordered[0] + 7 - ordered[-1]])
    month_days = _month_days(day_of_month)
    if month_days is None or day_of_week not in ("*", "?"):
        return 31
    return month_days_gap(month_days)


def _month_days(field: str) -> list[int] | None:
    """Days 1-28 a plain day-of-month list names (e.g. "3,17"), or None:
    such days exist in every month, so the gaps are exact."""
    if not re.fullmatch(r"\d{1,2}(,\d{1,2})*", field):
        return None
    days = sorted({int(day) for day in field.split(",")})
    return days if days[0] >= 1 and days[-1] <= 28 else None


def month_days_gap(days: list[int]) -> int:
    """The most days between two rotations on these days (1-28) of every
    month: within a month, or from the last one to the first of the next
    month after a 31-day month."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(days)]
    return max([*gaps, 31 - days[-1] + days[0]])


def _weekdays(field: str) -> set[int] | None:
    """Days 1-7 a plain day-of-week list or range names (SUN-SAT or 1-7), or None."""
    names = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
    days: set[int] = set()
    for item in field.upper().split(","):
        bounds = item.split("-")
        try:
            values = [names[b] if b in names else int(b) for b in bounds]
        except ValueError:
            return None
        if len(values) == 1:
            days.add(values[0])
        elif len(values) == 2 and values[0] <= values[1]:
            days.update(range(values[0], values[1] + 1))
        else:
            return None
    return days if days and all(1 <= d <= 7 for d in days) else None


def longest_gap_hours(schedule: Schedule) -> int:
    """The longest time, in hours, from one rotation to the next."""
    cron = _CRON.match(schedule.expression)
    if cron is None:
        return schedule.rate_hours() or 0
    fields = cron.group(1).split()
    day_gap = _cron_day_gap_days(fields)
    hours = cron_hours(fields[1], "schedule")
    if day_gap == 1:
        return _widest_hours(hours)
    # From the last opening of one rotation day to the first of the next.
    return day_gap * 24 - hours[-1] + hours[0]


def rotation_window_hours(schedule: Schedule) -> int:
    """How long after its opening a rotation may still start: the window, or
    Secrets Manager's default (one hour for schedules in hours, the rest of
    the UTC day otherwise)."""
    if schedule.window is not None:
        match = _DURATION.match(schedule.window)
        return int(match.group(1)) if match else 24
    rate = schedule.rate_hours()
    if rate is not None and rate < 24:
        return 1
    return 24


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
    _unknown(data, {"expression", "days", "window", "rotate_immediately", "spread"}, where)
    if "days" in data:
        _require("expression" not in data, f"{where}: give either days or expression, not both")
        days = _int(data["days"], f"{where}.days", 1, 1000)
        expression = f"rate({days} {'day' if days == 1 else 'days'})"
    else:
        expression = _text(data.get("expression", Schedule.expression), f"{where}.expression")
    schedule = Schedule(
        expression=expression,
        window=data.get("window"),
        rotate_immediately=_bool(data.get("rotate_immediately", True), f"{where}.rotate_immediately"),
        spread=_bool(data.get("spread", True), f"{where}.spread"),
    )
    cron = _CRON.match(expression)
    # Hours between rotations, and the latest hour a window opens (cron only).
    if cron:
        fields = cron.group(1).split()
        _require(len(fields) == 6, f"{where}.expression: cron() needs 6 fields, got {len(fields)}")
        _require(fields[0] == "0", f"{where}.expression: minutes must be 0 (rotation windows open on the hour)")
        _require(fields[5] == "*", f"{where}.expression: year must be * (schedules repeat within a year)")
        hours = cron_hours(fields[1], f"{where}.expression")
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
        window = _DURATION.match(schedule.window) if isinstance(schedule.window, str) else None
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
    _require(
        isinstance(common_name, str) and 0 < len(common_name) <= MAX_COMMON_NAME,
        f"{where}.common_name: 1-{MAX_COMMON_NAME} characters",
    )
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
    # A certificate must outlive the longest gap between two rotations plus
    # the window the rotation may run in, or it expires before the next one
    # replaces it.
    needed = longest_gap_hours(schedule) + rotation_window_hours(schedule)
    _require(
        validity_days * 24 >= needed,
        f"{where}.validity_days: {validity_days} days does not outlast the longest gap between rotations "
        f"({schedule.expression}: {needed} hours with the rotation window); certificates would expire "
        "before they rotate",
    )
    value_limit = _int(
        data.get("value_limit", DEFAULT_VALUE_LIMIT), f"{where}.value_limit", MIN_VALUE_LIMIT, MAX_VALUE_LIMIT
    )
    _require(
        value_limit >= MAX_KEY_PEM_CHARS[key_algorithm],
        f"{where}.value_limit: {value_limit} cannot hold a {key_algorithm.value} private key "
        f"(up to {MAX_KEY_PEM_CHARS[key_algorithm]} characters); raise value_limit or choose a smaller key",
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
        value_limit=value_limit,
        schedule=schedule,
        services=tuple(services),
        redeploy_strict=_bool(data.get("redeploy_strict", False), f"{where}.redeploy_strict"),
        reader_role_arns=roles,
        key_reader_role_arns=key_roles,
        delivery=delivery,
    )


def _ca(data: Any) -> CaConfig:
    _require(isinstance(data, Mapping), "ca: expected an object with arn, or create: true")
    _unknown(data, set(CaConfig.__dataclass_fields__), "ca")
    arn = data.get("arn")
    create = _bool(data.get("create", False), "ca.create")
    _require(bool(arn) != create, "ca: give exactly one of arn or create: true")
    if arn is not None:
        _require(isinstance(arn, str) and bool(_PCA_ARN.match(arn)), f"ca.arn: {arn!r} is not a Private CA ARN")
    mode = data.get("usage_mode", "GENERAL_PURPOSE")
    _require(
        mode in ("GENERAL_PURPOSE", "SHORT_LIVED_CERTIFICATE"),
        "ca.usage_mode: GENERAL_PURPOSE or SHORT_LIVED_CERTIFICATE",
    )
    rotation = _ca_rotation(data.get("rotation"), arn, data.get("next_arn"))
    return CaConfig(
        arn=arn,
        create=create,
        usage_mode=mode,
        common_name=_ca_common_name(data.get("common_name", CaConfig.common_name)),
        quota=_int(data.get("quota", DEFAULT_PCA_QUOTA), "ca.quota", 1, 10_000_000),
        revoke_superseded=_revoke_mode(data.get("revoke_superseded", "auto")),
        # At least an hour: tasks draining the old certificate need that much.
        revoke_grace_hours=_int(data.get("revoke_grace_hours", 24), "ca.revoke_grace_hours", 1, 8760),
        crl=_flag(data.get("crl", True), "ca.crl"),
        ocsp=_flag(data.get("ocsp", False), "ca.ocsp"),
        # A CA rotation's target is the CA the sets may issue from next.
        next_arn=_next_arn(data.get("next_arn", rotation.to_arn if rotation else None), arn),
        previous_arns=_previous_arns(data.get("previous_arns", []), arn, data.get("next_arn")),
        rotation=rotation,
    )


def _ca_rotation(value: Any, arn: Any, next_arn: Any) -> CaRotationTarget | None:
    if value is None:
        return None
    _require(isinstance(value, dict), "ca.rotation: an object with to_arn (and until)")
    _require(set(value) <= {"to_arn", "until"}, f"ca.rotation: unknown keys {sorted(set(value) - {'to_arn', 'until'})}")
    to_arn = value.get("to_arn")
    _require(
        isinstance(to_arn, str) and bool(_PCA_ARN.match(to_arn)),
        f"ca.rotation.to_arn: {to_arn!r} is not a Private CA ARN",
    )
    _require(to_arn != arn, "ca.rotation.to_arn: the CA to rotate to must differ from ca.arn")
    _require(
        next_arn is None or next_arn == to_arn,
        "ca.rotation.to_arn: must be ca.next_arn (the CA the sets may issue from)",
    )
    until = value.get("until")
    _require(until is None or until in CA_ROTATION_STOPS, f"ca.rotation.until: one of {', '.join(CA_ROTATION_STOPS)}")
    return CaRotationTarget(str(to_arn), None if until is None else str(until))


def _previous_arns(value: Any, arn: Any, next_arn: Any) -> tuple[str, ...]:
    _require(isinstance(value, list) and len(value) <= 10, "ca.previous_arns: a list of at most 10 Private CA ARNs")
    for item in value:
        _require(
            isinstance(item, str) and bool(_PCA_ARN.match(item)), f"ca.previous_arns: {item!r} is not a Private CA ARN"
        )
        _require(item not in (arn, next_arn), f"ca.previous_arns: {item} is ca.arn or ca.next_arn already")
    _require(len(set(value)) == len(value), "ca.previous_arns: an ARN is listed twice")
    return tuple(value)


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


def _ca_common_name(value: Any) -> str:
    name = _text(value, "ca.common_name")
    _require(len(name.strip()) > 0 and len(name) <= MAX_COMMON_NAME, f"ca.common_name: 1-{MAX_COMMON_NAME} characters")
    return name


def _policy(data: Any, index: int) -> IssuerPolicy:
    where = f"issuer_policies[{index}]"
    _require(isinstance(data, Mapping) and isinstance(data.get("principal"), str), f"{where}: needs a principal")
    _require(
        "allow_ip" not in data,
        f'{where}.allow_ip: replaced by allowed_ips, a list of CIDRs such as ["10.0.0.0/8"] '
        "(allow_ip: true allowed any address, loopback and the metadata address included)",
    )
    _unknown(data, set(IssuerPolicy.__dataclass_fields__), where)
    allowed_dns = _strings(data.get("allowed_dns"), f"{where}.allowed_dns")
    for pattern in allowed_dns:
        problem = dns_pattern_problem(pattern)
        _require(problem is None, f"{where}.allowed_dns: {pattern!r} is {problem}")
    try:
        usage = Usage(data.get("usage", Usage.SERVER))
    except ValueError:
        raise ConfigError(f"{where}.usage: expected one of server, client, both") from None
    curves = _strings(data.get("allowed_curves", ("secp256r1", "secp384r1")), f"{where}.allowed_curves")
    weak = sorted(set(curves) - set(ISSUER_CURVES))
    _require(not weak, f"{where}.allowed_curves: {', '.join(weak)} not allowed; choose from {', '.join(ISSUER_CURVES)}")
    return IssuerPolicy(
        principal=data["principal"],
        allowed_dns=allowed_dns,
        allowed_ips=_networks(data.get("allowed_ips"), f"{where}.allowed_ips"),
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


def check_rotator_id(value: Any) -> str:
    """A validated rotator id: 1-32 lowercase letters, digits and inner hyphens."""
    _require(
        isinstance(value, str) and bool(_ROTATOR_ID.match(value)),
        f"rotator_id: {value!r} is not 1-32 lowercase letters, digits and inner hyphens",
    )
    return str(value)


def load_set(data: Mapping[str, Any]) -> CertificateSetConfig:
    """Validate one certificate set on its own (a set's spec, see certrotor.spec)."""
    return _set(data, 0)


def load_config(data: Mapping[str, Any], *, require_sets: bool = True) -> CertrotorConfig:
    """Validate a plain mapping (cdk.json context, a JSON file, an env value).

    ``require_sets=False`` accepts a configuration without sets: a rotator's
    own settings, whose sets are declared where their services live.
    """
    _require(isinstance(data, Mapping), "config: expected an object")
    _unknown(data, set(CertrotorConfig.__dataclass_fields__), "config")
    raw_sets = data.get("sets", () if not require_sets else None)
    if not isinstance(raw_sets, Sequence) or isinstance(raw_sets, str) or (require_sets and not raw_sets):
        raise ConfigError("sets: at least one certificate set is needed")
    sets = tuple(_set(item, i) for i, item in enumerate(raw_sets))
    counts = Counter(s.name for s in sets)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    _require(not duplicates, f"sets: duplicate names {duplicates}")
    # A name under another set's name ("a/key" under "a") collides with its
    # part secrets: check each name's prefixes, not every pair of names.
    for other in counts:
        for cut in (i for i, char in enumerate(other) if char == "/"):
            _require(
                other[:cut] not in counts,
                f"sets: {other!r} collides with the part secrets of {other[:cut]!r}",
            )
    ca = _ca(data.get("ca"))
    if ca.usage_mode == "SHORT_LIVED_CERTIFICATE":
        for cert_set in sets:
            _require(
                cert_set.validity_days <= 7,
                f"sets[{cert_set.name}].validity_days: a short-lived CA issues at most 7 days",
            )
    level = _text(data.get("log_level", "INFO"), "log_level").upper()
    _require(level in ("DEBUG", "INFO", "WARNING", "ERROR"), "log_level: DEBUG, INFO, WARNING or ERROR")
    expiry_alarm_days = _int(data.get("expiry_alarm_days", 7), "expiry_alarm_days", 1, 365)
    for cert_set in sets:
        # An alarm at or above the validity would fire on every new certificate.
        _require(
            expiry_alarm_days < cert_set.validity_days,
            f"expiry_alarm_days: {expiry_alarm_days} days is not less than the {cert_set.validity_days}-day "
            f"validity of {cert_set.name}; the alarm would fire on every new certificate",
        )
    raw_policies = data.get("issuer_policies")
    _require(
        raw_policies is None or (isinstance(raw_policies, Sequence) and not isinstance(raw_policies, str)),
        "issuer_policies: expected a list of policies",
    )
    return CertrotorConfig(
        ca=ca,
        sets=sets,
        issuer_policies=tuple(_policy(p, i) for i, p in enumerate(raw_policies or ())),
        service_name=_text(
            data.get("service_name", "certrotor"), "service_name", _SERVICE_NAME, "1-40 letters, digits and hyphens"
        ),
        log_level=level,
        log_retention_days=_int(data.get("log_retention_days", 30), "log_retention_days", 1, 3653),
        expiry_alarm_days=expiry_alarm_days,
        alarm_email=_email(data.get("alarm_email")),
    )


def load_config_json(text: str, *, require_sets: bool = True) -> CertrotorConfig:
    """Parse and validate config serialized with `CertrotorConfig.to_json`."""
    try:
        data = parse_json(text, max_chars=MAX_CONFIG_CHARS, max_depth=MAX_CONFIG_DEPTH, what="config")
    except JsonRefused as exc:
        raise ConfigError(str(exc)) from None
    return load_config(data, require_sets=require_sets)

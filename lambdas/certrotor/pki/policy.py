"""What a caller of the on-demand issuer may ask for: pure rules.

Each rule is a small function that returns the checked value or raises
`RequestRefused` carrying the rule's name (`not_pem`, `weak_key`, ...), so a
refusal always says which rule it broke. `decide` runs them in order and
returns a `PolicyDecision`; nothing here touches AWS, the clock is passed in.

Wildcards (RFC 6125 section 6.4.3): an allowed name "*.svc.internal" permits
exactly one label in its place ("a.svc.internal"), neither "svc.internal"
itself nor "a.b.svc.internal". A CSR that asks for a wildcard name
("*.svc.internal") is allowed only when the policy lists that same wildcard.
Names compare case-insensitively (RFC 4343).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives._serialization import Encoding  # not the package: pki/keys.py
from cryptography.x509.oid import NameOID

from certrotor.config import MAX_COMMON_NAME, NEVER_NETWORKS, SPECIAL_NETWORKS, IssuerPolicy, Usage
from certrotor.errors import PolicyError
from certrotor.pki.csr import Names, csr_names, csr_public_key
from certrotor.pki.keys import check_key_strength, describe_key

# A PEM CSR with a 4096-bit RSA key and a few dozen names is ~3 KiB; 16 KiB
# leaves room for honest requests and refuses anything that is not one.
MAX_REQUEST_BYTES = 16 * 1024
# A short-lived-certificate CA (Private CA usage mode) issues at most 7 days.
SHORT_LIVED_MAX_DAYS = 7

_PEM_CSR_BEGIN = b"-----BEGIN CERTIFICATE REQUEST-----"
# One DNS label (RFC 1123 section 2.1), letters, digits and inner hyphens.
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_ASSUMED_ROLE = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/(.+)$")
_IAM_ROLE = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$")


class Rule:
    """The names of the rules; a refusal carries one of these."""

    NOT_PEM = "not_pem"
    BAD_SIGNATURE = "bad_signature"
    WEAK_KEY = "weak_key"
    NAME_NOT_ALLOWED = "name_not_allowed"
    IP_NOT_ALLOWED = "ip_not_allowed"
    CN_NOT_IN_SANS = "cn_not_in_sans"
    VALIDITY_EXCEEDS_POLICY = "validity_exceeds_policy"
    VALIDITY_EXCEEDS_CA = "validity_exceeds_ca"
    TOO_LARGE = "too_large"
    UNKNOWN_PRINCIPAL = "unknown_principal"
    RATE_LIMITED = "rate_limited"
    INVALID_REQUEST = "invalid_request"
    SUBJECT_NOT_ALLOWED = "subject_not_allowed"
    SAN_TYPE_NOT_ALLOWED = "san_type_not_allowed"
    EXTENSION_NOT_ALLOWED = "extension_not_allowed"
    SET_NOT_ALLOWED = "set_not_allowed"
    UNKNOWN_SET = "unknown_set"


class RequestRefused(PolicyError):
    """A request broke `rule`; nothing was issued. `retry_after` (seconds) is
    set when the same request may succeed later (rate limits)."""

    def __init__(self, rule: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    """The IAM principal behind a request, as the Function URL reports it.

    `role_arn` is the role of an assumed-role session (sessions of one task
    role share its policy, rate and idempotency), else the ARN itself.
    """

    arn: str
    role_name: str | None
    role_arn: str


@dataclass(frozen=True)
class PolicyDecision:
    """An approved request: what to ask Private CA for, and for whom."""

    caller: Caller
    policy: IssuerPolicy
    csr_pem: str
    csr_sha256: str
    names: Names
    validity_days: int
    key: str

    @property
    def usage(self) -> Usage:
        return self.policy.usage


# --------------------------------------------------------------------------
# Who is asking


def caller_from_arn(user_arn: str) -> Caller:
    """Parse `requestContext.authorizer.iam.userArn`.

    `arn:aws:sts::123456789012:assumed-role/orders-task/abcd` is the role
    `orders-task` (ARN `arn:aws:iam::123456789012:role/orders-task`).
    """
    if not user_arn.startswith("arn:"):
        raise RequestRefused(Rule.UNKNOWN_PRINCIPAL, "the request carries no IAM principal")
    assumed = _ASSUMED_ROLE.match(user_arn)
    if assumed:
        partition, account, role = assumed.group(1), assumed.group(2), assumed.group(3)
        return Caller(user_arn, role, f"arn:{partition}:iam::{account}:role/{role}")
    role_arn = _IAM_ROLE.match(user_arn)
    if role_arn:
        return Caller(user_arn, role_arn.group(3), user_arn)
    return Caller(user_arn, None, user_arn)


def select_policy(policies: Sequence[IssuerPolicy], caller: Caller, home_account: str | None = None) -> IssuerPolicy:
    """The first policy whose principal matches the caller.

    A principal starting with "arn:" is an fnmatch pattern over the role ARN
    (or the caller's own ARN); anything else is a role-name pattern, which
    names roles of the deploying account (`home_account`) only: a role of the
    same name in another account is someone else.
    """
    caller_account = caller.role_arn.split(":")[4] if caller.role_arn.count(":") >= 5 else None
    for policy in policies:
        pattern = policy.principal
        if pattern.startswith("arn:"):
            if fnmatch.fnmatchcase(caller.role_arn, pattern) or fnmatch.fnmatchcase(caller.arn, pattern):
                return policy
        elif (
            caller.role_name is not None
            and (home_account is None or caller_account == home_account)
            and fnmatch.fnmatchcase(caller.role_name, pattern)
        ):
            return policy
    raise RequestRefused(Rule.UNKNOWN_PRINCIPAL, f"{caller.role_arn} has no issuer policy")


def check_set_allowed(policy: IssuerPolicy, set_name: str) -> None:
    """A policy names the managed sets (fnmatch patterns) its caller may issue."""
    if not any(fnmatch.fnmatchcase(set_name, pattern) for pattern in policy.sets):
        raise RequestRefused(Rule.SET_NOT_ALLOWED, f"{policy.principal} may not issue or read set {set_name!r}")


# --------------------------------------------------------------------------
# The CSR


def check_size(body: bytes | str, limit: int = MAX_REQUEST_BYTES) -> None:
    size = len(body.encode("utf-8") if isinstance(body, str) else body)
    if size > limit:
        raise RequestRefused(Rule.TOO_LARGE, f"request is {size} bytes, at most {limit}")


def load_csr(pem: object) -> x509.CertificateSigningRequest:
    """A PEM CSR whose self-signature verifies (proof the caller holds the key)."""
    if not isinstance(pem, str):
        raise RequestRefused(Rule.NOT_PEM, "csr must be a PEM text")
    check_size(pem)
    data = pem.encode("utf-8")
    if _PEM_CSR_BEGIN not in data:
        raise RequestRefused(Rule.NOT_PEM, "csr is not a PEM certificate request")
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        raise RequestRefused(Rule.NOT_PEM, "csr is not a well-formed PEM certificate request") from None
    try:
        valid = csr.is_signature_valid
    except (ValueError, TypeError):  # an unsupported signature algorithm
        valid = False
    if not valid:
        raise RequestRefused(Rule.BAD_SIGNATURE, "the CSR's signature does not verify with its public key")
    return csr


def csr_digest(csr: x509.CertificateSigningRequest) -> str:
    """SHA-256 of the CSR's DER: the same request however it is wrapped."""
    return hashlib.sha256(csr.public_bytes(Encoding.DER)).hexdigest()


def check_key(policy: IssuerPolicy, csr: x509.CertificateSigningRequest) -> str:
    """RSA >= the policy's bits (never < 2048), EC only on allowed curves."""
    try:
        key = csr_public_key(csr)
        check_key_strength(key, policy.min_rsa_bits, policy.allowed_curves)
    except PolicyError as exc:
        raise RequestRefused(Rule.WEAK_KEY, str(exc)) from None
    return describe_key(key)


# Extensions a CSR may carry. Private CA's end-entity templates set basic
# constraints and key usage themselves, but a request that asks for more than
# an end-entity TLS certificate is refused rather than trusted to be ignored.
_ALLOWED_EXTENSIONS = (
    x509.SubjectAlternativeName,
    x509.BasicConstraints,
    x509.KeyUsage,
    x509.ExtendedKeyUsage,
    x509.SubjectKeyIdentifier,
)


def check_contents(csr: x509.CertificateSigningRequest) -> None:
    """Only what the policy checks may reach Private CA, which copies the
    subject and SANs from the CSR: a subject of at most one CN, SANs of DNS
    names and IP addresses only, no request to be a CA.

    OpenSSL clients match a hostname against every CN when a certificate has
    no DNS SAN, and other systems authorize on URI SANs or subject O/OU: an
    unchecked field would be a name nobody allowed.
    """
    attributes = list(csr.subject)
    if len(attributes) > 1 or any(a.oid != NameOID.COMMON_NAME for a in attributes):
        raise RequestRefused(Rule.SUBJECT_NOT_ALLOWED, "the CSR's subject may hold one common name and nothing else")
    for attribute in attributes:
        # RFC 5280 appendix A.1: ub-common-name is 64; an empty CN names nothing.
        value = str(attribute.value)  # a parsed common name is always text
        if not value.strip() or len(value) > MAX_COMMON_NAME:
            raise RequestRefused(
                Rule.SUBJECT_NOT_ALLOWED, f"the CSR's common name must be 1-{MAX_COMMON_NAME} characters"
            )
    try:
        extensions = list(csr.extensions)
    except (x509.DuplicateExtension, ValueError):
        raise RequestRefused(Rule.NOT_PEM, "the CSR's extensions are malformed or repeated") from None
    for extension in extensions:
        value = extension.value
        if not isinstance(value, _ALLOWED_EXTENSIONS):
            raise RequestRefused(
                Rule.EXTENSION_NOT_ALLOWED, f"the CSR may not carry the {extension.oid._name} extension"
            )
        if isinstance(value, x509.BasicConstraints) and value.ca:
            raise RequestRefused(Rule.EXTENSION_NOT_ALLOWED, "the CSR asks to be a CA")
        if isinstance(value, x509.SubjectAlternativeName):
            others = [n for n in value if not isinstance(n, x509.DNSName | x509.IPAddress)]
            if others:
                kinds = ", ".join(sorted({type(n).__name__ for n in others}))
                raise RequestRefused(Rule.SAN_TYPE_NOT_ALLOWED, f"only DNS and IP subject alternative names: {kinds}")


def _labels(name: str) -> list[str] | None:
    """The labels of a DNS name (a leading "*" kept), or None if not a name."""
    # ASCII first: lower() maps some non-ASCII letters onto ASCII ones (the
    # Kelvin sign becomes "k"), and the name issued must be the name checked.
    if not name or len(name) > 253 or not name.isascii():
        return None
    # An empty label (a trailing dot, "a..b") fails the label rule below.
    labels = name.lower().split(".")
    for index, label in enumerate(labels):
        if label == "*" and index == 0 and len(labels) > 2:
            continue
        if not _LABEL.fullmatch(label):
            return None
    return labels


def dns_name_allowed(name: str, allowed: Sequence[str]) -> bool:
    """Exact match, or one label in place of an allowed wildcard's "*"."""
    labels = _labels(name)
    if labels is None:
        return False
    for pattern in allowed:
        wanted = _labels(pattern)
        if wanted is None:
            continue
        if labels == wanted:
            return True
        # A requested wildcard matched only the same wildcard, just above.
        if wanted[0] == "*" and labels[1:] == wanted[1:]:
            return True
    return False


def check_names(policy: IssuerPolicy, names: Names) -> None:
    """Every SAN allowed by the policy; the CN, if any, is one of the SANs
    (RFC 6125 section 6.4.4: clients ignore the CN when SANs exist)."""
    if not names.dns_names and not names.ip_addresses:
        raise RequestRefused(Rule.NAME_NOT_ALLOWED, "the CSR asks for no DNS or IP subject alternative names")
    for name in names.dns_names:
        if not dns_name_allowed(name, policy.allowed_dns):
            raise RequestRefused(Rule.NAME_NOT_ALLOWED, f"{name!r} is not allowed for {policy.principal}")
    for address in names.ip_addresses:
        problem = ip_address_problem(address, policy.allowed_ips)
        if problem is not None:
            raise RequestRefused(Rule.IP_NOT_ALLOWED, f"{address} is not allowed for {policy.principal}: {problem}")
    if names.common_name and not _cn_among_sans(names):
        raise RequestRefused(Rule.CN_NOT_IN_SANS, f"common name {names.common_name!r} is not among the SANs")


def ip_address_problem(address: str, allowed: Sequence[str]) -> str | None:
    """Why an IP SAN is refused, or None when a listed CIDR allows it.

    Nothing is allowed unless a CIDR lists it. Loopback, link-local and the
    instance and task metadata addresses need a CIDR inside that special range
    (such as 127.0.0.1/32): a broad CIDR that happens to cover them is not a
    decision to certify them. Unspecified, multicast and broadcast addresses
    and IPv4-mapped IPv6 are never allowed.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address; ask for the IPv4 address"
    if any(ip in ipaddress.ip_network(never) for never in NEVER_NETWORKS if ip.version == _version(never)):
        return "unspecified, multicast and broadcast addresses are never certified"
    if not allowed:
        return "the policy lists no allowed_ips"
    special = next(
        (
            (ipaddress.ip_network(net), what)
            for net, what in SPECIAL_NETWORKS
            if ip.version == _version(net) and ip in ipaddress.ip_network(net)
        ),
        None,
    )
    for text in allowed:
        network = ipaddress.ip_network(text)
        if network.version != ip.version or ip not in network:
            continue
        if special is None or network.subnet_of(special[0]):  # type: ignore[arg-type]
            return None
    if special is not None:
        return f"{special[1]} ({special[0]}) must be listed in allowed_ips itself"
    return "not in the policy's allowed_ips"


def _version(network: str) -> int:
    return 6 if ":" in network else 4


def _cn_among_sans(names: Names) -> bool:
    cn = names.common_name
    if cn.lower() in {n.lower() for n in names.dns_names}:
        return True
    try:
        return str(ipaddress.ip_address(cn)) in names.ip_addresses
    except ValueError:
        return False


# --------------------------------------------------------------------------
# Validity


def check_validity(
    policy: IssuerPolicy,
    validity_days: object,
    ca_not_after: dt.datetime,
    now: dt.datetime,
    short_lived_ca: bool = False,
) -> int:
    """Whole days, 1 to the policy's maximum, ending before the CA itself does
    (RFC 5280 section 6.1.3: a certificate outliving its issuer stops
    verifying when the issuer expires)."""
    if isinstance(validity_days, bool) or not isinstance(validity_days, int) or validity_days < 1:
        raise RequestRefused(Rule.INVALID_REQUEST, "validity_days must be a whole number of days, at least 1")
    if validity_days > policy.max_validity_days:
        raise RequestRefused(
            Rule.VALIDITY_EXCEEDS_POLICY,
            f"{validity_days} days is more than the {policy.max_validity_days} days allowed for {policy.principal}",
        )
    if short_lived_ca and validity_days > SHORT_LIVED_MAX_DAYS:
        raise RequestRefused(
            Rule.VALIDITY_EXCEEDS_CA,
            f"the CA is in short-lived mode and issues at most {SHORT_LIVED_MAX_DAYS} days",
        )
    if now + dt.timedelta(days=validity_days) > ca_not_after:
        raise RequestRefused(
            Rule.VALIDITY_EXCEEDS_CA,
            f"{validity_days} days would outlive the CA, which expires {ca_not_after.isoformat()}",
        )
    return validity_days


# --------------------------------------------------------------------------


def decide(
    policy: IssuerPolicy,
    caller: Caller,
    csr_pem: object,
    validity_days: object,
    ca_not_after: dt.datetime,
    now: dt.datetime,
    short_lived_ca: bool = False,
) -> PolicyDecision:
    """Every rule, in order: the CSR is PEM and signed, the key is strong,
    the names are allowed, the validity fits the policy and the CA."""
    csr = load_csr(csr_pem)
    key = check_key(policy, csr)
    check_contents(csr)
    names = csr_names(csr)
    check_names(policy, names)
    days = check_validity(policy, validity_days, ca_not_after, now, short_lived_ca)
    pem = csr.public_bytes(Encoding.PEM).decode("ascii")
    return PolicyDecision(caller, policy, pem, csr_digest(csr), names, days, key)

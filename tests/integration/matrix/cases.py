"""The bad inputs, as data: one table per boundary (docs/INPUTS.md states
the rules each table probes). Each row is (id, input..., expected outcome).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from certrotor.local.provision import DEFAULT_CONFIG

# --------------------------------------------------------------------------
# CSRs for the issuer's table, built at run time (no key is committed).


def _csr(
    key: Any = None,
    *,
    subject: list[tuple[Any, str]] | None = None,
    dns: tuple[str, ...] = ("orders.internal",),
    ips: tuple[str, ...] = (),
    others: tuple[x509.GeneralName, ...] = (),
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
    san: bool = True,
) -> str:
    import ipaddress

    key = key or ec.generate_private_key(ec.SECP256R1())
    attributes = subject if subject is not None else [(NameOID.COMMON_NAME, (dns or ips)[0])]
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        # _validate=False: a hostile client is not held to the builder's length rules.
        x509.Name([x509.NameAttribute(oid, value, _validate=False) for oid, value in attributes])
    )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    names += list(others)
    if san and names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode("ascii")


def _bad_signature() -> str:
    pem = _csr()
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01
    import base64

    body = base64.encodebytes(bytes(der)).decode("ascii")
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


def _rsa(bits: int, exponent: int = 65537) -> Any:
    return rsa.generate_private_key(public_exponent=exponent, key_size=bits)


# (id, access key, csr factory, validity_days, status, error)
CSR_CASES: list[tuple[str, str, Any, Any, int, str]] = [
    ("csr-not-pem", "AKIAORDERS", lambda: "hello", 7, 400, "not_pem"),
    ("csr-missing", "AKIAORDERS", lambda: None, 7, 400, "not_pem"),
    ("csr-number", "AKIAORDERS", lambda: 42, 7, 400, "not_pem"),
    ("csr-list", "AKIAORDERS", lambda: ["a"], 7, 400, "not_pem"),
    ("csr-armour-only", "AKIAORDERS", lambda: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", 7, 400, "not_pem"),
    ("csr-truncated", "AKIAORDERS", lambda: _csr()[:300], 7, 400, "not_pem"),
    ("csr-bad-signature", "AKIAORDERS", _bad_signature, 7, 422, "bad_signature"),
    ("csr-over-16k", "AKIAORDERS", lambda: "-----BEGIN CERTIFICATE REQUEST-----" + "A" * 17_000, 7, 413, "too_large"),
    ("validity-text", "AKIAORDERS", _csr, "7", 400, "invalid_request"),
    ("validity-float", "AKIAORDERS", _csr, 7.5, 400, "invalid_request"),
    ("validity-bool", "AKIAORDERS", _csr, True, 400, "invalid_request"),
    ("validity-zero", "AKIAORDERS", _csr, 0, 400, "invalid_request"),
    ("validity-negative", "AKIAORDERS", _csr, -1, 400, "invalid_request"),
    ("validity-null", "AKIAORDERS", _csr, None, 400, "invalid_request"),
    ("validity-over-policy", "AKIAORDERS", _csr, 31, 422, "validity_exceeds_policy"),
    ("validity-huge", "AKIAORDERS", _csr, 10**30, 422, "validity_exceeds_policy"),
    (
        "cn-65-chars",
        "AKIAORDERS",
        lambda: _csr(subject=[(NameOID.COMMON_NAME, "a" * 65)]),
        7,
        422,
        "subject_not_allowed",
    ),
    (
        "cn-76-chars",
        "AKIAORDERS",
        lambda: _csr(subject=[(NameOID.COMMON_NAME, "b" * 76)]),
        7,
        422,
        "subject_not_allowed",
    ),
    ("cn-empty", "AKIAORDERS", lambda: _csr(subject=[(NameOID.COMMON_NAME, "")]), 7, 422, "subject_not_allowed"),
    ("cn-blank", "AKIAORDERS", lambda: _csr(subject=[(NameOID.COMMON_NAME, "   ")]), 7, 422, "subject_not_allowed"),
    (
        "cn-twice",
        "AKIAORDERS",
        lambda: _csr(subject=[(NameOID.COMMON_NAME, "orders.internal"), (NameOID.COMMON_NAME, "x.svc.internal")]),
        7,
        422,
        "subject_not_allowed",
    ),
    (
        "subject-organization",
        "AKIAORDERS",
        lambda: _csr(subject=[(NameOID.COMMON_NAME, "orders.internal"), (NameOID.ORGANIZATION_NAME, "Admins")]),
        7,
        422,
        "subject_not_allowed",
    ),
    (
        "cn-not-a-san",
        "AKIAORDERS",
        lambda: _csr(subject=[(NameOID.COMMON_NAME, "a.svc.internal")]),
        7,
        422,
        "cn_not_in_sans",
    ),
    ("no-sans", "AKIAORDERS", lambda: _csr(san=False), 7, 422, "name_not_allowed"),
    ("dns-not-allowed", "AKIAORDERS", lambda: _csr(dns=("evil.example",)), 7, 422, "name_not_allowed"),
    ("dns-two-labels-deep", "AKIAORDERS", lambda: _csr(dns=("a.b.svc.internal",)), 7, 422, "name_not_allowed"),
    ("dns-wildcard-not-listed", "AKIAORDERS", lambda: _csr(dns=("*.internal",)), 7, 422, "name_not_allowed"),
    ("dns-trailing-dot", "AKIAORDERS", lambda: _csr(dns=("orders.internal.",)), 7, 422, "name_not_allowed"),
    ("dns-underscore", "AKIAORDERS", lambda: _csr(dns=("a_b.svc.internal",)), 7, 422, "name_not_allowed"),
    ("dns-empty-label", "AKIAORDERS", lambda: _csr(dns=("a..svc.internal",)), 7, 422, "name_not_allowed"),
    ("dns-the-zone-itself", "AKIAORDERS", lambda: _csr(dns=("svc.internal",)), 7, 422, "name_not_allowed"),
    (
        "san-uri",
        "AKIAORDERS",
        lambda: _csr(others=(x509.UniformResourceIdentifier("spiffe://x/y"),)),
        7,
        422,
        "san_type_not_allowed",
    ),
    (
        "san-email",
        "AKIAORDERS",
        lambda: _csr(others=(x509.RFC822Name("a@b.internal"),)),
        7,
        422,
        "san_type_not_allowed",
    ),
    (
        "ask-to-be-a-ca",
        "AKIAORDERS",
        lambda: _csr(extensions=((x509.BasicConstraints(ca=True, path_length=None), True),)),
        7,
        422,
        "extension_not_allowed",
    ),
    (
        "extension-ocsp-nocheck",
        "AKIAORDERS",
        lambda: _csr(extensions=((x509.OCSPNoCheck(), False),)),
        7,
        422,
        "extension_not_allowed",
    ),
    (
        "ip-without-allowed-ips",
        "AKIAORDERS",
        lambda: _csr(dns=("orders.internal",), ips=("10.0.0.1",)),
        7,
        422,
        "ip_not_allowed",
    ),
    ("ip-public", "AKIABILLING", lambda: _csr(dns=("billing.internal",), ips=("8.8.8.8",)), 7, 422, "ip_not_allowed"),
    (
        "ip-metadata",
        "AKIABILLING",
        lambda: _csr(dns=("billing.internal",), ips=("169.254.169.254",)),
        7,
        422,
        "ip_not_allowed",
    ),
    (
        "ip-ecs-metadata",
        "AKIABILLING",
        lambda: _csr(dns=("billing.internal",), ips=("169.254.170.2",)),
        7,
        422,
        "ip_not_allowed",
    ),
    (
        "ip-link-local",
        "AKIABILLING",
        lambda: _csr(dns=("billing.internal",), ips=("169.254.1.1",)),
        7,
        422,
        "ip_not_allowed",
    ),
    (
        "ip-loopback-v4",
        "AKIABILLING",
        lambda: _csr(dns=("billing.internal",), ips=("127.0.0.1",)),
        7,
        422,
        "ip_not_allowed",
    ),
    ("ip-loopback-v6", "AKIABILLING", lambda: _csr(dns=("billing.internal",), ips=("::1",)), 7, 422, "ip_not_allowed"),
    (
        "ip-unspecified",
        "AKIABILLING",
        lambda: _csr(dns=("billing.internal",), ips=("0.0.0.0",)),
        7,
        422,
        "ip_not_allowed",
    ),
    (
        "ip-multicast",
        "AKIABILLING",
        lambda: _csr(dns=("billing.internal",), ips=("224.0.0.1",)),
        7,
        422,
        "ip_not_allowed",
    ),
    (
        "ip-broadcast",
        "AKIABILLING",
        lambda: _csr(dns=("billing.internal",), ips=("255.255.255.255",)),
        7,
        422,
        "ip_not_allowed",
    ),
    (
        "ip-v4-mapped",
        "AKIABILLING",
        lambda: _csr(dns=("billing.internal",), ips=("::ffff:10.0.0.1",)),
        7,
        422,
        "ip_not_allowed",
    ),
    (
        "ip-v6-outside",
        "AKIABILLING",
        lambda: _csr(dns=("billing.internal",), ips=("2001:db9::1",)),
        7,
        422,
        "ip_not_allowed",
    ),
    (
        "ip-link-local-v6",
        "AKIABILLING",
        lambda: _csr(dns=("billing.internal",), ips=("fe80::1",)),
        7,
        422,
        "ip_not_allowed",
    ),
    ("rsa-1024", "AKIAORDERS", lambda: _csr(_rsa(1024)), 7, 422, "weak_key"),
    ("rsa-e-3", "AKIAORDERS", lambda: _csr(_rsa(2048, exponent=3)), 7, 422, "weak_key"),
    ("rsa-over-4096", "AKIAORDERS", lambda: _csr(_rsa(4160)), 7, 422, "weak_key"),
    ("ec-secp256k1", "AKIAORDERS", lambda: _csr(ec.generate_private_key(ec.SECP256K1())), 7, 422, "weak_key"),
    ("ec-p521-not-allowed", "AKIAORDERS", lambda: _csr(ec.generate_private_key(ec.SECP521R1())), 7, 422, "weak_key"),
    ("ed25519", "AKIAORDERS", lambda: _csr(ed25519.Ed25519PrivateKey.generate()), 7, 422, "weak_key"),
    ("unknown-principal", "AKIASTRANGER", _csr, 7, 403, "unknown_principal"),
]

# Bodies that never reach the policy: (id, raw bytes, content type, status, error)
_NESTED = ("[" * 10_000 + "]" * 10_000).encode()
BODY_CASES: list[tuple[str, bytes, str, int, str]] = [
    ("body-empty", b"", "application/json", 400, "invalid_request"),
    ("body-not-json", b"{csr:", "application/json", 400, "invalid_request"),
    ("body-array", b"[1, 2]", "application/json", 400, "invalid_request"),
    ("body-string", b'"csr"', "application/json", 400, "invalid_request"),
    ("body-number", b"7", "application/json", 400, "invalid_request"),
    ("body-null", b"null", "application/json", 400, "invalid_request"),
    ("body-nested-10k", _NESTED[:16_000], "application/json", 400, "invalid_request"),
    ("body-nested-object", b'{"csr": {"a": {"b": 1}}}', "application/json", 400, "invalid_request"),
    ("body-latin-1", '{"csr": "é"}'.encode("latin-1"), "application/json", 400, "invalid_request"),
    ("body-binary", bytes(range(256)), "application/octet-stream", 400, "invalid_request"),
    ("body-utf-16", '{"csr": "x"}'.encode("utf-16"), "application/json", 400, "invalid_request"),
    ("body-over-16k", b'{"csr": "' + b"A" * 17_000 + b'"}', "application/json", 413, "too_large"),
    ("body-nul-bytes", b'{"csr": "\x00\x00"}', "application/json", 400, "invalid_request"),
]

# Set names in URLs: (id, access key, method, path, status, error)
ROUTE_CASES: list[tuple[str, str, str, str, int, str]] = [
    ("set-unknown", "AKIAORDERS", "GET", "/sets/nobody%2Fweb", 403, "set_not_allowed"),
    ("set-empty-name", "AKIAORDERS", "GET", "/sets/", 404, "no_route"),
    ("set-dot-dot", "AKIAORDERS", "GET", "/sets/..%2F..%2Fetc", 403, "set_not_allowed"),
    ("set-nul", "AKIAORDERS", "GET", "/sets/a%00b", 403, "set_not_allowed"),
    ("set-3000-chars", "AKIAORDERS", "GET", "/sets/" + "a" * 3000, 403, "set_not_allowed"),
    ("set-stranger-status", "AKIASTRANGER", "GET", "/sets/{good}", 403, "unknown_principal"),
    ("set-stranger-issue", "AKIASTRANGER", "POST", "/sets/{good}/issue", 403, "unknown_principal"),
    ("set-not-in-policy", "AKIABILLING", "POST", "/sets/{good}/issue", 403, "set_not_allowed"),
    ("set-not-in-policy-status", "AKIABILLING", "GET", "/sets/{good}", 403, "set_not_allowed"),
    ("route-unknown", "AKIAORDERS", "GET", "/keys", 404, "no_route"),
    ("route-wrong-method", "AKIAORDERS", "DELETE", "/certificates", 404, "no_route"),
]

# Framing the gateway refuses before the function: (id, raw header lines, status, error)
FRAMING_CASES: list[tuple[str, list[str], int, str]] = [
    ("content-length-text", ["Content-Length: abc"], 400, "bad_request"),
    ("content-length-negative", ["Content-Length: -1"], 400, "bad_request"),
    ("content-length-plus", ["Content-Length: +5"], 400, "bad_request"),
    ("content-length-float", ["Content-Length: 1.5"], 400, "bad_request"),
    ("content-length-exponent", ["Content-Length: 1e3"], 400, "bad_request"),
    ("content-length-two-values", ["Content-Length: 5", "Content-Length: 6"], 400, "bad_request"),
    ("content-length-list", ["Content-Length: 5, 5"], 400, "bad_request"),
    ("content-length-huge", ["Content-Length: 99999999999"], 400, "bad_request"),
    ("content-length-over-limit", ["Content-Length: 7000000"], 413, "too_large"),
    ("transfer-encoding-chunked", ["Transfer-Encoding: chunked"], 411, "length_required"),
    ("body-shorter-than-length", ["Content-Length: 50", "", "short"], 400, "bad_request"),
]

# --------------------------------------------------------------------------
# certrotor-fetch: (id, arguments after --set, exit code, message)
# "{dir}" is the case's own directory, "{file}" a regular file, "{good}" the set.
FETCH_ARGUMENT_CASES: list[tuple[str, list[str], int, str]] = [
    ("dir-empty", ["--dir", ""], 64, "--dir is empty"),
    ("dir-blank", ["--dir", "   "], 64, "--dir is empty"),
    ("deadline-text", ["--deadline", "soon"], 64, "--deadline"),
    ("deadline-zero", ["--deadline", "0"], 64, "--deadline"),
    ("deadline-negative", ["--deadline", "-5"], 64, "--deadline"),
    ("deadline-nan", ["--deadline", "nan"], 64, "--deadline"),
    ("deadline-inf", ["--deadline", "inf"], 64, "--deadline"),
    ("deadline-over-an-hour", ["--deadline", "3601"], 64, "--deadline"),
    ("deadline-overflow", ["--deadline", "1e999"], 64, "--deadline"),
    ("min-valid-overflow", ["--min-valid", "999999999999d"], 64, "--min-valid"),
    ("min-valid-digits", ["--min-valid", "9" * 40], 64, "--min-valid"),
    ("min-valid-over-ten-years", ["--min-valid", "3651d"], 64, "--min-valid"),
    ("min-valid-years", ["--min-valid", "1y"], 64, "--min-valid"),
    ("min-valid-negative", ["--min-valid", "-1h"], 64, "--min-valid"),
    ("min-valid-fraction", ["--min-valid", "1.5h"], 64, "--min-valid"),
    ("min-valid-empty", ["--min-valid", ""], 64, "--min-valid"),
    ("min-valid-beyond-expiry", ["--min-valid", "3000d"], 2, "sooner than required"),
    ("password-file-without-pkcs12", ["--pkcs12-password-file", "{file}"], 64, "needs --pkcs12"),
    ("password-file-missing", ["--pkcs12", "--pkcs12-password-file", "{dir}.nope"], 64, "--pkcs12-password-file"),
    ("password-file-empty", ["--pkcs12", "--pkcs12-password-file", "{empty}"], 64, "is empty"),
    ("ca-file-missing", ["--ca-file", "{dir}.nope"], 64, "--ca-file"),
    ("ca-file-not-pem", ["--ca-file", "{file}"], 64, "no PEM certificate"),
    ("ca-file-wrong-ca", ["--ca-file", "{other_ca}"], 2, "chain"),
    ("unknown-option", ["--frobnicate"], 64, "unrecognized"),
    ("dir-is-a-file", ["--dir", "{file}"], 4, "not a directory"),
    ("dir-is-a-symlink", ["--dir", "{symlink}"], 4, "symbolic link"),
    ("dir-group-readable", ["--dir", "{shared}"], 4, "mode 0750"),
    ("key-path-is-a-directory", ["--dir", "{blocked}"], 4, "key.pem exists and is not a regular file"),
    ("key-path-is-a-directory-combined", ["--dir", "{blocked}", "--combined"], 4, "key.pem"),
    ("key-path-is-a-directory-pkcs12", ["--dir", "{blocked}", "--pkcs12"], 4, "key.pem"),
    ("combined-path-is-a-symlink", ["--dir", "{combined_link}", "--combined"], 4, "combined.pem"),
    ("from-env-without-variables", ["--from-env"], 2, ""),
]
FETCH_SET_CASES: list[tuple[str, str, int, str]] = [
    ("set-empty", "", 64, "--set"),
    ("set-unknown", "nobody/here", 3, "not found"),
    ("set-is-a-part", "{good}/key", 2, ""),
]

# Manifest values a writer of the set's secrets could leave (id, value, message)
_PARTS_OK = None  # filled from the real manifest at run time


def manifest_cases(real: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Current values for the spare set's manifest, each broken one way."""

    def changed(**fields: Any) -> str:
        data = copy.deepcopy(real)
        for key, value in fields.items():
            if value is _DROP:
                data.pop(key, None)
            else:
                data[key] = value
        return json.dumps(data)

    other = dict(real["parts"][0], name="other/set/key")
    return [
        ("nested-64000", "[" * 32_000 + "]" * 32_000, "nested more than"),
        ("nested-object", '{"a":' * 40 + "1" + "}" * 40, "nested more than"),
        ("not-json", "{format: 1", "not JSON"),
        ("json-array", "[1, 2, 3]", "not a JSON object"),
        ("json-string", '"manifest"', "not a JSON object"),
        ("over-64k", '{"x": "' + "a" * 70_000 + '"}', "characters, at most"),
        ("format-2", changed(format=2), "format"),
        ("format-missing", changed(format=_DROP), "format"),
        ("parts-not-a-list", changed(parts="key"), "parts"),
        ("parts-too-many", changed(parts=[real["parts"][0]] * 30), "parts"),
        ("parts-empty", changed(parts=[]), "exactly one key part"),
        ("part-another-sets-key", changed(parts=[other, *real["parts"][1:]]), "not its own"),
        ("part-unknown-role", changed(parts=[*real["parts"], dict(real["parts"][0], role="spare")]), "role"),
        ("not-after-not-a-time", changed(not_after="tomorrow"), "not_after"),
        ("not-after-no-zone", changed(not_after="2030-01-01T00:00:00"), "time zone"),
        ("not-before-number", changed(not_before=5), "not_before"),
        ("certificate-number", changed(certificate=5), "certificate"),
        ("set-missing", changed(set=_DROP), "malformed"),
        ("another-set", changed(set="other/set"), "not its own|other/set"),
        ("key-digest-wrong", changed(parts=[dict(real["parts"][0], sha256="0" * 64), *real["parts"][1:]]), "version"),
        ("version-elsewhere", changed(version="00000000-0000-0000-0000-000000000000"), "version|different rotations"),
        ("not-issued-yet", '{"certrotor":"no certificate issued yet"}', "no certificate has been issued"),
    ]


# Well-formed manifests that name the wrong things: GET /sets/{name} reports
# them (status reads only the manifest); readers refuse them.
PARSABLE_MANIFESTS = {"key-digest-wrong", "version-elsewhere"}


class _Drop:
    pass


_DROP = _Drop()

# --------------------------------------------------------------------------
# Rotation events: (id, event or a factory name, message)
ROTATION_EVENT_CASES: list[tuple[str, Any, str]] = [
    ("event-list", [], "not an object"),
    ("event-string", "createSecret", "not an object"),
    ("event-number", 42, "not an object"),
    ("event-null", None, "not an object"),
    ("event-empty", {}, "unknown rotation step"),
    ("event-unknown-step", {"Step": "deleteSecret"}, "unknown rotation step"),
    ("event-step-wrong-case", {"Step": "CreateSecret"}, "unknown rotation step"),
    ("event-no-secret", {"Step": "createSecret", "ClientRequestToken": "a" * 36}, "SecretId"),
    ("event-secret-number", {"Step": "createSecret", "SecretId": 5, "ClientRequestToken": "a" * 36}, "SecretId"),
    ("event-secret-huge", {"Step": "createSecret", "SecretId": "s" * 3000, "ClientRequestToken": "a" * 36}, "SecretId"),
    (
        "event-token-short",
        {"Step": "createSecret", "SecretId": "{good}", "ClientRequestToken": "abc"},
        "ClientRequestToken",
    ),
    (
        "event-token-space",
        {"Step": "createSecret", "SecretId": "{good}", "ClientRequestToken": "a b" + "c" * 33},
        "ClientRequestToken",
    ),
    (
        "event-rotation-token-number",
        {"Step": "createSecret", "SecretId": "{good}", "ClientRequestToken": "a" * 36, "RotationToken": 7},
        "RotationToken",
    ),
    (
        "event-token-not-a-version",
        {"Step": "createSecret", "SecretId": "{good}", "ClientRequestToken": "b" * 36},
        "is not a version",
    ),
    (
        "event-unmanaged-secret",
        {"Step": "createSecret", "SecretId": "{good}/key", "ClientRequestToken": "c" * 36},
        "not a certificate set this function manages|not enabled",
    ),
    (
        "event-finish-unknown-token",
        {"Step": "finishSecret", "SecretId": "{good}", "ClientRequestToken": "d" * 36},
        "is not a version",
    ),
]

# --------------------------------------------------------------------------
# certrotor revoke --serial: (id, serial, extra arguments, exit code, message)
REVOKE_CASES: list[tuple[str, str, list[str], int, str]] = [
    ("serial-nobody-issued", "deadbeef", [], 2, "not in the ledger"),
    ("serial-2000-digits", "1" * 2000, [], 64, "20 octets"),
    ("serial-41-hex-digits", "1" + "0" * 40, [], 64, "20 octets"),
    ("serial-160-bits", "f" * 40, [], 64, "20 octets"),
    ("serial-zero", "0", [], 64, "positive"),
    ("serial-zeros-with-colons", "00:00:00", [], 64, "positive"),
    ("serial-negative", "-1", [], 64, "not a hexadecimal serial"),
    ("serial-not-hex", "xyz", [], 64, "not a hexadecimal serial"),
    ("serial-empty", "", [], 64, "not a hexadecimal serial"),
    ("serial-spaces", "de ad be ef", [], 64, "not a hexadecimal serial"),
    ("serial-0x-prefix", "0xdeadbeef", [], 64, "not a hexadecimal serial"),
    ("serial-unicode-digits", "١٢٣", [], 64, "not a hexadecimal serial"),
    ("revoke-without-table", "deadbeef", ["--table", ""], 64, "--table and --ca-arn are required"),
]

# --------------------------------------------------------------------------
# Configuration: (id, change to a valid config, field the message names)
# A change is (path, value): path into the config ("sets.0.x"); value _DROP removes it.


def _base_config() -> dict[str, Any]:
    data = copy.deepcopy(DEFAULT_CONFIG)
    data["ca"] = {
        "arn": "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "1" * 8 + "-2222-3333-4444-" + "5" * 12
    }
    return data


def config_with(*changes: tuple[str, Any]) -> dict[str, Any]:
    data = _base_config()
    for path, value in changes:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        key: Any = int(last) if isinstance(node, list) else last
        if value is _DROP:
            node.pop(key, None)
        else:
            node[key] = value
    return data


CONFIG_CASES: list[tuple[str, list[tuple[str, Any]], str]] = [
    ("allow-ip-switch", [("issuer_policies.0.allow_ip", True)], "allow_ip: replaced by allowed_ips"),
    ("allow-ip-false-text", [("issuer_policies.0.allow_ip", "false")], "allow_ip"),
    (
        "rotate-immediately-text",
        [("sets.0.schedule.rotate_immediately", "false")],
        "rotate_immediately: expected true or false",
    ),
    ("rotate-immediately-number", [("sets.0.schedule.rotate_immediately", 0)], "rotate_immediately"),
    ("spread-text", [("sets.0.schedule.spread", "false")], "schedule.spread: expected true or false"),
    ("redeploy-strict-text", [("sets.0.redeploy_strict", "false")], "redeploy_strict: expected true or false"),
    ("ca-create-text", [("ca", {"create": "false", "arn": None})], "ca.create: expected true or false"),
    ("service-name-number", [("service_name", 123)], "service_name: expected a string"),
    ("service-name-space", [("service_name", "my service")], "service_name"),
    ("service-name-empty", [("service_name", "")], "service_name"),
    ("log-level-number", [("log_level", 5)], "log_level"),
    ("log-level-unknown", [("log_level", "TRACE")], "log_level"),
    (
        "allowed-dns-bare-tld-wildcard",
        [("issuer_policies.0.allowed_dns", ["*.internal"])],
        "allowed_dns: '\\*.internal'",
    ),
    ("allowed-dns-star", [("issuer_policies.0.allowed_dns", ["*"])], "allowed_dns"),
    ("allowed-dns-inner-star", [("issuer_policies.0.allowed_dns", ["a.*.internal"])], "allowed_dns"),
    ("allowed-dns-space", [("issuer_policies.0.allowed_dns", ["exa mple.internal"])], "allowed_dns"),
    ("allowed-dns-trailing-dot", [("issuer_policies.0.allowed_dns", ["a.internal."])], "allowed_dns"),
    ("allowed-dns-unicode", [("issuer_policies.0.allowed_dns", ["bücher.internal"])], "allowed_dns"),
    ("allowed-dns-not-a-list", [("issuer_policies.0.allowed_dns", "a.internal")], "allowed_dns"),
    (
        "allowed-ips-everything",
        [("issuer_policies.0.allowed_ips", ["0.0.0.0/0"])],
        "allowed_ips: '0.0.0.0/0' allows every",
    ),
    ("allowed-ips-v6-everything", [("issuer_policies.0.allowed_ips", ["::/0"])], "allowed_ips"),
    ("allowed-ips-host-bits", [("issuer_policies.0.allowed_ips", ["10.0.0.1/8"])], "allowed_ips"),
    ("allowed-ips-not-cidr", [("issuer_policies.0.allowed_ips", ["intranet"])], "allowed_ips"),
    ("allowed-ips-multicast", [("issuer_policies.0.allowed_ips", ["224.0.0.0/8"])], "allowed_ips"),
    (
        "value-limit-rsa-4096",
        [("sets.0.key_algorithm", "RSA_4096"), ("sets.0.value_limit", 3000)],
        "value_limit: 3000 cannot hold",
    ),
    ("value-limit-rsa-2048", [("sets.0.key_algorithm", "RSA_2048"), ("sets.0.value_limit", 1024)], "value_limit"),
    ("value-limit-text", [("sets.0.value_limit", "4096")], "value_limit: expected an integer"),
    (
        "cron-longer-than-validity",
        [("sets.0.schedule", {"expression": "cron(0 4 1 * ? *)"}), ("sets.0.validity_days", 30)],
        "validity_days: 30 days does not outlast",
    ),
    (
        "weekly-cron-validity-7",
        [("sets.0.schedule", {"expression": "cron(0 4 ? * MON *)"}), ("sets.0.validity_days", 7)],
        "validity_days",
    ),
    (
        "rate-longer-than-validity",
        [("sets.0.schedule", "rate(40 days)"), ("sets.0.validity_days", 30)],
        "validity_days",
    ),
    ("rate-no-margin", [("sets.0.schedule", "rate(30 days)"), ("sets.0.validity_days", 30)], "validity_days"),
    ("expiry-alarm-equals-validity", [("expiry_alarm_days", 30)], "expiry_alarm_days: 30 days is not less"),
    ("expiry-alarm-text", [("expiry_alarm_days", "7")], "expiry_alarm_days: expected an integer"),
    ("cn-65-chars", [("sets.0.common_name", "a" * 65)], "common_name"),
    ("ca-common-name-empty", [("ca", {"create": True, "common_name": ""})], "ca.common_name"),
    ("ca-common-name-number", [("ca", {"create": True, "common_name": 5})], "ca.common_name"),
    ("issuer-policies-not-a-list", [("issuer_policies", "orders")], "issuer_policies"),
    ("sets-empty", [("sets", [])], "sets"),
    ("unknown-top-field", [("colour", "blue")], "config: unknown field"),
    ("window-number", [("sets.0.schedule", {"expression": "rate(20 days)", "window": 4})], "window"),
    ("expression-number", [("sets.0.schedule", {"expression": 20})], "expression"),
]

# --------------------------------------------------------------------------
# The certrotor command's other arguments: (id, argv, exit code, message)
# "{dir}" is the case's own directory. "no-region" cases run without a region.
CLI_CASES: list[tuple[str, list[str], int, str]] = [
    ("status-rotator-empty", ["status", "--rotator", ""], 2, "is not a rotator id"),
    ("status-rotator-slash", ["status", "--rotator", "a/b"], 2, "is not a rotator id"),
    ("status-alarm-days-negative", ["status", "--alarm-days", "-5"], 2, "must not be negative"),
    ("status-reads-per-second-zero", ["status", "--reads-per-second", "0"], 2, "must be positive"),
    ("rekey-ca-not-an-arn", ["rekey", "--ca", "my-ca"], 2, "is not a Private CA ARN"),
    ("ca-rotate-to-not-an-arn", ["ca", "rotate", "--to", "notanarn"], 2, "is not a Private CA ARN"),
    (
        "ca-rotate-parallel-zero",
        [
            "ca",
            "rotate",
            "--to",
            "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
            "--parallel",
            "0",
        ],
        2,
        "must be at least 1",
    ),
    ("ca-status-rotator-empty", ["ca", "status", "--rotator", ""], 2, "is not a rotator id"),
    ("issue-now-timeout-negative", ["issue-now", "x", "--url", "https://h.example", "--timeout", "-1"], 2, "--timeout"),
    ("issue-now-url-ftp", ["issue-now", "x", "--url", "ftp://h.example"], 64, "--url"),
    ("set-status-url-no-host", ["set-status", "x", "--url", "https://"], 64, "--url"),
    ("set-status-url-plain-http", ["set-status", "x", "--url", "http://issuer.example"], 64, "plain http"),
    ("request-url-not-a-url", ["request", "--url", "notaurl", "--name", "a.internal", "--out", "{dir}"], 64, "--url"),
    ("request-out-empty", ["request", "--url", "https://h.example", "--name", "a.internal", "--out", ""], 64, "--out"),
    (
        "request-validity-zero",
        ["request", "--url", "https://h.example", "--name", "a.internal", "--out", "{dir}", "--validity-days", "0"],
        64,
        "--validity-days",
    ),
    (
        "request-deadline-negative",
        ["request", "--url", "https://h.example", "--name", "a.internal", "--out", "{dir}", "--deadline", "-1"],
        64,
        "--deadline",
    ),
    ("request-no-names", ["request", "--url", "https://h.example", "--out", "{dir}"], 64, "--name or --ip"),
    ("unknown-command", ["frobnicate"], 2, "invalid choice"),
    ("status-without-region", ["no-region", "status"], 3, "AWS: You must specify a region"),
    ("ca-status-without-region", ["no-region", "ca", "status"], 3, "AWS: You must specify a region"),
]

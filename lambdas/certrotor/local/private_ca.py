"""IssueCertificate as AWS Private CA answers it, for the embedded emulator.

moto 5.2's Private CA ignores Validity (every certificate is valid 365 days),
gives the ServerAuth and ClientAuth end-entity templates no key usage at all
(so a certificate is good for any purpose), and ignores IdempotencyToken (a
retry pays for a second certificate). certrotor's safety rests on all three:
the rotation's validity and template choice, testSecret's role checks and
"one certificate per rotation". `install()` replaces moto's IssueCertificate
handler with this one, which honours them:

- Validity: DAYS, HOURS, MONTHS, YEARS, ABSOLUTE (Unix seconds) and END_DATE
  (YYYYMMDDHHMMSS) set notAfter; a validity past the CA certificate's own
  expiry is refused (ValidationException), as Private CA refuses it.
- The end-entity templates set basic constraints, key usage and extended key
  usage as the Private CA template reference defines them.
- The same IdempotencyToken on the same CA within 5 minutes answers with the
  certificate ARN of the first request, issuing nothing new.

Other templates (CA certificates) keep moto's behaviour.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

# Private CA's idempotency window for IssueCertificate.
IDEMPOTENCY_WINDOW_SECONDS = 300.0
TEMPLATE_PREFIX = "template/"


def _key_usage(*, key_encipherment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


# Template name -> (key usage, extended key usages), per the Private CA
# template reference (all three: CA:FALSE, critical key usage).
END_ENTITY_TEMPLATES: dict[str, tuple[x509.KeyUsage, tuple[x509.ObjectIdentifier, ...]]] = {
    "EndEntityCertificate/V1": (
        _key_usage(key_encipherment=True),
        (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    ),
    "EndEntityServerAuthCertificate/V1": (_key_usage(key_encipherment=True), (ExtendedKeyUsageOID.SERVER_AUTH,)),
    "EndEntityClientAuthCertificate/V1": (_key_usage(key_encipherment=False), (ExtendedKeyUsageOID.CLIENT_AUTH,)),
}

_HASHES: dict[str, hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {
    "SHA256": hashes.SHA256(),
    "SHA384": hashes.SHA384(),
    "SHA512": hashes.SHA512(),
}


class ValidationError(Exception):
    """A request Private CA refuses with ValidationException."""


class MalformedCSR(Exception):
    """A request Private CA refuses with MalformedCSRException."""


@dataclass
class _Issued:
    certificate_arn: str
    at: float


class IdempotencyLedger:
    """IssueCertificate's tokens per CA, with the time each was first used.

    `age(seconds)` moves every recorded use into the past, so tests can step
    over the 5-minute window without waiting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issued: dict[tuple[str, str], _Issued] = {}

    def find(self, ca_arn: str, token: str, now: float) -> str | None:
        with self._lock:
            found = self._issued.get((ca_arn, token))
            if found is None or now - found.at >= IDEMPOTENCY_WINDOW_SECONDS:
                return None
            return found.certificate_arn

    def record(self, ca_arn: str, token: str, certificate_arn: str, now: float) -> None:
        with self._lock:
            self._issued[(ca_arn, token)] = _Issued(certificate_arn, now)

    def age(self, seconds: float) -> None:
        with self._lock:
            for issued in self._issued.values():
                issued.at -= seconds


LEDGER = IdempotencyLedger()


def not_after(validity: dict[str, Any], start: dt.datetime) -> dt.datetime:
    """notAfter for IssueCertificate's Validity, as Private CA computes it."""
    kind, value = validity.get("Type"), validity.get("Value")
    if not isinstance(value, int) or value <= 0:
        raise ValidationError("Validity.Value must be a positive integer")
    if kind == "DAYS":
        return start + dt.timedelta(days=value)
    if kind == "HOURS":
        return start + dt.timedelta(hours=value)
    if kind == "MONTHS":
        month = start.month - 1 + value
        year, month = start.year + month // 12, month % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day)
    if kind == "YEARS":
        year = start.year + value
        day = min(start.day, calendar.monthrange(year, start.month)[1])
        return start.replace(year=year, day=day)
    if kind == "ABSOLUTE":
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if kind == "END_DATE":
        return dt.datetime.strptime(str(value), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    raise ValidationError(f"Validity.Type {kind!r} is not one of DAYS, HOURS, MONTHS, YEARS, ABSOLUTE, END_DATE")


def issue(authority: Any, params: dict[str, Any], now: float | None = None) -> str | None:
    """Issue for an end-entity template; None hands the request back to moto
    (CA templates). `authority` is moto's CertificateAuthority."""
    template = str(params.get("TemplateArn") or "arn:aws:acm-pca:::template/EndEntityCertificate/V1")
    name = template.split(TEMPLATE_PREFIX, 1)[-1]
    if name not in END_ENTITY_TEMPLATES:
        return None
    moment = time.time() if now is None else now
    token = params.get("IdempotencyToken")
    if token:
        earlier = LEDGER.find(authority.arn, str(token), moment)
        if earlier is not None:
            return earlier
    try:
        csr = x509.load_pem_x509_csr(base64.b64decode(params["Csr"]))
    except ValueError:
        raise MalformedCSR("The certificate signing request is invalid") from None
    start = dt.datetime.fromtimestamp(moment, dt.UTC).replace(microsecond=0)
    end = not_after(params.get("Validity") or {}, start)
    if end <= start:
        raise ValidationError("The certificate validity ends before it starts")
    ca_certificate = authority.certificate
    if ca_certificate is not None and end > ca_certificate.not_valid_after_utc:
        raise ValidationError(
            f"The certificate validity ({end.isoformat()}) exceeds the CA certificate's "
            f"({ca_certificate.not_valid_after_utc.isoformat()})"
        )
    key_usage, extended = END_ENTITY_TEMPLATES[name]
    public_key = csr.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_certificate.subject if ca_certificate is not None else authority.issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(extended)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False)
    )
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        builder = builder.add_extension(san.value, critical=san.critical)
    except x509.ExtensionNotFound:
        pass
    algorithm = str(params.get("SigningAlgorithm") or "SHA256WITHRSA")
    digest = _HASHES.get(algorithm[:6], hashes.SHA256())
    certificate = builder.sign(authority.key, digest)
    suffix = base64.b16encode(certificate.fingerprint(hashes.SHA256())[:16]).decode("ascii").lower()
    certificate_arn = f"{authority.arn}/certificate/{suffix}"
    authority.issued_certificates[certificate_arn] = certificate.public_bytes(serialization.Encoding.PEM)
    authority.issued_certificates_certificate_chains[certificate_arn] = authority.certificate_bytes
    if token:
        LEDGER.record(authority.arn, str(token), certificate_arn, moment)
    return certificate_arn


def install() -> None:
    """Route moto's IssueCertificate through `issue` (idempotent)."""
    from moto.acmpca.responses import ACMPCAResponse
    from moto.core.exceptions import JsonRESTError

    if getattr(ACMPCAResponse.issue_certificate, "certrotor", False):
        return
    original = ACMPCAResponse.issue_certificate

    def issue_certificate(self: Any) -> str:
        params = json.loads(self.body)
        authority = self.acmpca_backend.describe_certificate_authority(params.get("CertificateAuthorityArn"))
        try:
            arn = issue(authority, params)
        except ValidationError as exc:
            raise JsonRESTError("ValidationException", str(exc)) from None
        except MalformedCSR as exc:
            raise JsonRESTError("MalformedCSRException", str(exc)) from None
        if arn is None:
            return str(original(self))
        return json.dumps({"CertificateArn": arn})

    issue_certificate.certrotor = True  # type: ignore[attr-defined]
    ACMPCAResponse.issue_certificate = issue_certificate  # type: ignore[method-assign]
    _unknown_certificate_not_found()


def _unknown_certificate_not_found() -> None:
    """GetCertificate for an ARN the CA never issued: AWS answers
    ResourceNotFoundException; moto 5.2 fails with an internal error."""
    from moto.acmpca.exceptions import ResourceNotFoundException
    from moto.acmpca.models import CertificateAuthority

    original = CertificateAuthority.get_certificate

    def get_certificate(self: Any, certificate_arn: str) -> tuple[bytes, bytes]:
        if certificate_arn not in self.issued_certificates:
            raise ResourceNotFoundException(certificate_arn)
        return original(self, certificate_arn)  # type: ignore[no-any-return]

    CertificateAuthority.get_certificate = get_certificate  # type: ignore[method-assign]

"""AWS Private CA adapter: issue, wait with bounded backoff, fetch, revoke."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from certrotor.aws.clients import default_client
from certrotor.aws.errors import aws_call, error_code, translate
from certrotor.errors import DeadlineError, NotReadyError, ThrottledError
from certrotor.ports import IDEMPOTENCY_TOKEN_LENGTH, IssuedCertificate, idempotency_token

__all__ = ["Backoff", "IssuedCertificate", "PrivateCA", "idempotency_token"]


@dataclass(frozen=True)
class Backoff:
    """Bounded exponential backoff: first delay, factor, and the cap."""

    first: float = 0.25
    factor: float = 2.0
    cap: float = 4.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * self.factor, self.cap)


class PrivateCA:
    """One Private CA, named by ARN. Clients and clock are injectable."""

    def __init__(
        self,
        ca_arn: str,
        client: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.ca_arn = ca_arn
        self._client = client or default_client("acm-pca")
        self._sleep = sleep
        self._backoff = backoff
        self._description: dict[str, Any] | None = None
        self._chain: str | None = None

    def describe(self, refresh: bool = False) -> dict[str, Any]:
        """DescribeCertificateAuthority, cached for the life of this object unless `refresh`."""
        if self._description is None or refresh:
            with aws_call("DescribeCertificateAuthority"):
                self._description = self._client.describe_certificate_authority(CertificateAuthorityArn=self.ca_arn)[
                    "CertificateAuthority"
                ]
        return self._description

    def publishes_revocation(self) -> bool:
        """Whether the CA publishes a CRL or answers OCSP: without either, a
        revocation changes nothing any relying party can see. Read afresh
        (one DescribeCertificateAuthority): the CA's configuration may change."""
        config = self.describe(refresh=True).get("RevocationConfiguration") or {}
        crl = (config.get("CrlConfiguration") or {}).get("Enabled")
        ocsp = (config.get("OcspConfiguration") or {}).get("Enabled")
        return bool(crl or ocsp)

    def signing_algorithm(self) -> str:
        """The CA's own signing algorithm, as IssueCertificate must use it."""
        return str(self.describe()["CertificateAuthorityConfiguration"]["SigningAlgorithm"])

    def ca_certificate_chain(self, refresh: bool = False) -> str:
        """The CA's certificate and its chain up to the root, PEM; cached for
        the life of this object (a Lambda instance) unless `refresh`."""
        if self._chain is None or refresh:
            with aws_call("GetCertificateAuthorityCertificate"):
                resp = self._client.get_certificate_authority_certificate(CertificateAuthorityArn=self.ca_arn)
            chain = resp.get("CertificateChain") or ""
            self._chain = resp["Certificate"].strip() + "\n" + (chain.strip() + "\n" if chain else "")
        return self._chain

    def issue(self, csr_pem: str, validity_days: int, template_arn: str, token: str) -> str:
        """IssueCertificate; returns the certificate ARN. Throttling is raised as
        ThrottledError: the caller decides whether to wait, and a retry with the
        same token is answered with the same certificate, not a new one."""
        with aws_call("IssueCertificate"):
            resp = self._client.issue_certificate(
                CertificateAuthorityArn=self.ca_arn,
                Csr=csr_pem.encode("ascii"),
                SigningAlgorithm=self.signing_algorithm(),
                TemplateArn=template_arn,
                Validity={"Value": validity_days, "Type": "DAYS"},
                IdempotencyToken=token[:IDEMPOTENCY_TOKEN_LENGTH],
            )
        return str(resp["CertificateArn"])

    def get(self, certificate_arn: str) -> IssuedCertificate:
        """GetCertificate once; NotReadyError while Private CA is still issuing."""
        with aws_call("GetCertificate"):
            resp = self._client.get_certificate(CertificateAuthorityArn=self.ca_arn, CertificateArn=certificate_arn)
        return IssuedCertificate(certificate_arn, resp["Certificate"], resp.get("CertificateChain", ""))

    def wait(self, certificate_arn: str, remaining_seconds: Callable[[], float]) -> IssuedCertificate:
        """Poll GetCertificate with bounded backoff until issued or out of time.

        `remaining_seconds` is the caller's budget (in Lambda, the remaining
        time less a margin); a delay never overruns it.
        """
        delays = self._backoff.delays()
        while True:
            try:
                return self.get(certificate_arn)
            except (NotReadyError, ThrottledError):
                left = remaining_seconds()
                if left <= 0:
                    raise DeadlineError(f"certificate {certificate_arn} not issued within the time left") from None
                self._sleep(min(next(delays), left))

    def revoke(self, certificate_serial: str, reason: str = "UNSPECIFIED") -> bool:
        """RevokeCertificate; False when the CA had already revoked it."""
        try:
            self._client.revoke_certificate(
                CertificateAuthorityArn=self.ca_arn,
                CertificateSerial=certificate_serial,
                RevocationReason=reason,
            )
        except ClientError as exc:
            if error_code(exc) == "RequestAlreadyProcessedException":
                return False
            raise translate(exc, "RevokeCertificate") from exc
        except (BotoConnectionError, ReadTimeoutError) as exc:
            raise translate(exc, "RevokeCertificate") from exc
        return True

"""A Powertools Parameters provider for certificate sets: a Lambda function
gets a verified set, cached for `max_age`, without its own fetching code.

    from certrotor.client.provider import CertificateSetProvider

    certificates = CertificateSetProvider(ca_pem=ROOT_PEM)   # at init, once

    def handler(event, context):
        client_set = certificates.get("mtls/ledger-client", max_age=300)
        tls = client_set.client_context()          # mTLS: our certificate, their CA
        ...

What `get` returns is a CertificateSet: the key, leaf, chain and full chain as
PEM, the manifest's facts (version, serial, not_after), and `client_context()`
/ `server_context()` for `ssl`. Every fresh value passed the same checks as
`certrotor-fetch` at container start: digests and versions bind the parts, the
key matches the leaf, the chain leads to `ca_pem` (else to a CA of the
rotator's trust bundle, else to its own top certificate), the certificate is valid now and for `min_valid` more.

Cost: a value older than `max_age` (default 300 s, or
POWERTOOLS_PARAMETERS_MAX_AGE) is refreshed with one GetSecretValue of the
manifest; only when its version has changed are the parts read (one
BatchGetSecretValue) and the set verified again. A refresh that fails raises
Powertools' GetParameterError (the reason in its message, never key material).
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.shared.constants import PARAMETERS_MAX_AGE_ENV
from aws_lambda_powertools.utilities.parameters.base import BaseProvider

from certrotor.client.fetch import utc_now
from certrotor.client.trust import fetch_trusted
from certrotor.errors import BundleError
from certrotor.pki.handshake import client_context, memory_files
from certrotor.ports import CURRENT
from certrotor.quiet_logs import keep_secrets_out_of_logs
from certrotor.services.verify import VerifiedSet

DEFAULT_MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class CertificateSet:
    """A verified set as a consumer uses it (no file on disk)."""

    name: str
    version: str
    serial: str
    not_after: str
    key_pem: str
    certificate_pem: str
    chain_pem: str
    fullchain_pem: str
    ca_pem: str | None

    def __repr__(self) -> str:
        # The key stays out of logs and tracebacks.
        return f"CertificateSet(name={self.name!r}, version={self.version!r}, serial={self.serial!r})"

    @classmethod
    def of(cls, name: str, verified: VerifiedSet, ca_pem: str | None) -> CertificateSet:
        return cls(
            name=name,
            version=verified.manifest.version,
            serial=verified.manifest.serial,
            not_after=verified.manifest.not_after,
            key_pem=verified.key_pem,
            certificate_pem=verified.bundle.leaf_pem,
            chain_pem=verified.bundle.chain_pem,
            fullchain_pem=verified.bundle.fullchain_pem,
            ca_pem=ca_pem,
        )

    def _load_pair(self, context: ssl.SSLContext) -> ssl.SSLContext:
        with memory_files(self.fullchain_pem, self.key_pem) as (chain_path, key_path):
            try:
                context.load_cert_chain(certfile=chain_path, keyfile=key_path)
            except ssl.SSLError as exc:
                raise BundleError(f"TLS stack refused the certificate or key: {exc.reason or exc}") from None
        return context

    def client_context(self, server_ca_pem: str | None = None) -> ssl.SSLContext:
        """A TLS client presenting this certificate (mTLS) and trusting
        `server_ca_pem` for the server (default: the provider's `ca_pem`, else
        the trust bundle read with the set)."""
        trusted = server_ca_pem or self.ca_pem
        if trusted is None:
            raise ValueError("no CA to trust for the server: pass server_ca_pem or give the provider ca_pem")
        return self._load_pair(client_context(trusted))

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context serving this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return self._load_pair(context)


class CertificateSetProvider(BaseProvider):
    """Powertools Parameters provider: `get(set_name)` -> CertificateSet."""

    def __init__(
        self,
        *,
        ca_pem: str | None = None,
        min_valid: dt.timedelta = dt.timedelta(0),
        boto3_client: Any | None = None,
        boto3_session: Any | None = None,
        boto_config: Any | None = None,
    ) -> None:
        if boto3_client is None:
            import boto3

            keep_secrets_out_of_logs()
            boto3_client = (boto3_session or boto3.session.Session()).client("secretsmanager", config=boto_config)
        from certrotor.aws.secrets import SecretStore
        from certrotor.services.reader import SetReader

        self.client = boto3_client
        self._store = SecretStore(boto3_client)
        self._reader = SetReader(self._store)
        self._ca_pem = ca_pem
        self._min_valid = min_valid
        # The last verified set of each name: a refresh that finds the same
        # version costs one call and no verification but the validity.
        self._verified: dict[str, CertificateSet] = {}
        self.calls = 0
        super().__init__(client=boto3_client)

    def get(  # type: ignore[override]
        self,
        name: str,
        max_age: int | None = None,
        transform: None = None,
        force_fetch: bool = False,
        **sdk_options: Any,
    ) -> CertificateSet:
        """The verified set `name`, from the cache when younger than `max_age`."""
        if transform is not None:
            raise ValueError("a certificate set has no transform")
        if max_age is None and PARAMETERS_MAX_AGE_ENV not in os.environ:
            max_age = DEFAULT_MAX_AGE_SECONDS
        value = super().get(name, max_age=max_age, force_fetch=force_fetch, **sdk_options)
        assert isinstance(value, CertificateSet)
        return value

    def _get(self, name: str, **sdk_options: Any) -> CertificateSet:  # type: ignore[override]
        manifest_value = self._store.get(name, stage=CURRENT)
        self.calls += 1
        known = self._verified.get(name)
        now = utc_now()
        if known is not None and known.version == manifest_value.version and self._still_valid(known, now):
            return known
        checked = fetch_trusted(
            self._reader,
            name,
            anchor_pem=self._ca_pem,
            now=now,
            min_remaining=self._min_valid,
            manifest_value=manifest_value,
        )
        self.calls += self._reader.last.calls
        fresh = CertificateSet.of(name, checked.verified, self._ca_pem or checked.trust_pem)
        self._verified[name] = fresh
        return fresh

    def _still_valid(self, known: CertificateSet, now: dt.datetime) -> bool:
        return dt.datetime.fromisoformat(known.not_after) - self._min_valid > now

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, Any]:
        raise NotImplementedError("certificate sets are read one at a time: get(name)")

"""How long each set's current certificate has left, from its manifest alone
(the monitor never reads a key)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from certrotor.config import CertrotorConfig
from certrotor.errors import CertrotorError, NotIssuedError, RetryableError
from certrotor.layout import Manifest
from certrotor.ports import CURRENT, SecretPort


@dataclass(frozen=True)
class SetExpiry:
    """One set's state: days left (None when nothing was issued yet)."""

    name: str
    days_to_expiry: float | None
    serial: str | None
    problem: str | None = None


def days_to_expiry(manifest: Manifest, now: dt.datetime) -> float:
    """Days from `now` to the certificate's notAfter; negative once expired."""
    not_after = dt.datetime.fromisoformat(manifest.not_after)
    return (not_after - now).total_seconds() / 86400


def check_expiry(config: CertrotorConfig, secrets: SecretPort, now: Callable[[], dt.datetime]) -> list[SetExpiry]:
    """The expiry state of every configured set.

    One set's problem (a malformed manifest, a deleted or unreadable secret)
    is that set's state and never hides the others; only a transient failure
    (throttling), which would hit the next set too, ends the run.
    """
    found = []
    for cert_set in config.sets:
        try:
            manifest = Manifest.from_json(secrets.get(cert_set.name, stage=CURRENT).value)
        except NotIssuedError:
            found.append(SetExpiry(cert_set.name, None, None, "not issued yet"))
            continue
        except RetryableError:
            raise
        except CertrotorError as exc:
            found.append(SetExpiry(cert_set.name, None, None, str(exc)))
            continue
        found.append(SetExpiry(cert_set.name, days_to_expiry(manifest, now()), manifest.serial))
    return found

"""The few configuration values the core and the container client need
(secret names, key and usage kinds, the value limit's ceiling), apart from
the configuration model so that certrotor-fetch does not import it at start.
certrotor.config re-exports them."""

from __future__ import annotations

from enum import StrEnum

MAX_VALUE_LIMIT = 65536


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

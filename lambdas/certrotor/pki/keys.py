"""Private keys: generate, serialize, and the minimum-strength rule."""

from __future__ import annotations

# Not `cryptography.hazmat.primitives.serialization`: importing that package
# also loads its SSH key support and bcrypt, a sixth of certrotor-fetch's
# start in env mode, for nothing a set needs. These are the very objects that
# package exports (tests/unit/client/test_env_mode_imports.py checks it).
from cryptography.hazmat.bindings._rust import openssl as _rust_openssl
from cryptography.hazmat.primitives._serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certrotor.errors import PolicyError
from certrotor.names import KeyAlgorithm

load_pem_private_key = _rust_openssl.keys.load_pem_private_key

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

# NIST SP 800-57 part 1: RSA below 2048 bits gives less than 112 bits of
# security. Curves: P-256 and P-384 (128 and 192 bits) by default, the ones
# Private CA issues for; a policy may allow others explicitly.
MIN_RSA_BITS = 2048
# Private CA signs RSA keys up to 4096 bits; larger ones only cost every
# handshake more. The public exponent is 65537 (RFC 8017 recommends it, and
# e=3 is what Bleichenbacher's signature forgeries need).
MAX_RSA_BITS = 4096
RSA_EXPONENT = 65537
ALLOWED_CURVES = ("secp256r1", "secp384r1")

_RSA_BITS = {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_3072: 3072, KeyAlgorithm.RSA_4096: 4096}
_CURVES = {KeyAlgorithm.EC_P256: ec.SECP256R1, KeyAlgorithm.EC_P384: ec.SECP384R1}


def generate_key(algorithm: KeyAlgorithm) -> PrivateKey:
    """A fresh private key of the given algorithm."""
    if algorithm in _CURVES:
        return ec.generate_private_key(_CURVES[algorithm]())
    if algorithm in _RSA_BITS:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[algorithm])
    raise ValueError(f"unsupported key algorithm {algorithm!r}")


def key_to_pem(key: PrivateKey) -> str:
    """PKCS#8 PEM, unencrypted: Secrets Manager and KMS protect it at rest."""
    return key.private_bytes(
        Encoding.PEM,
        PrivateFormat.PKCS8,
        NoEncryption(),
    ).decode("ascii")


def key_from_pem(pem: str) -> PrivateKey:
    """Load a PEM private key; refuses any type other than RSA or EC."""
    try:
        key = load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        # The parser's message may echo input; never let key text reach a log.
        raise PolicyError("the private key is not a valid unencrypted PEM key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PolicyError(f"unsupported private key type {type(key).__name__}")
    return key


def describe_key(key: PublicKey | PrivateKey) -> str:
    """A short, non-secret description such as 'EC secp256r1' or 'RSA 2048'."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}"
    return f"RSA {key.key_size}"


def check_key_strength(
    key: PublicKey | PrivateKey,
    min_rsa_bits: int = MIN_RSA_BITS,
    allowed_curves: tuple[str, ...] = ALLOWED_CURVES,
) -> None:
    """Refuse keys weaker than the policy: small RSA, unknown curves, other types."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < max(min_rsa_bits, MIN_RSA_BITS):
            raise PolicyError(f"weak key: RSA {key.key_size} bits, at least {max(min_rsa_bits, MIN_RSA_BITS)} required")
        if key.key_size > MAX_RSA_BITS:
            raise PolicyError(f"RSA key of {key.key_size} bits: at most {MAX_RSA_BITS} bits")
        public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
        if public.public_numbers().e != RSA_EXPONENT:
            raise PolicyError(f"RSA public exponent {public.public_numbers().e}: only {RSA_EXPONENT} is accepted")
        return
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if key.curve.name not in allowed_curves:
            raise PolicyError(f"weak key: curve {key.curve.name} is not one of {', '.join(allowed_curves)}")
        return
    raise PolicyError(f"unsupported key type {type(key).__name__}")


def public_key_matches(private_key: PrivateKey, public_key: PublicKey) -> bool:
    """True when the public key is the private key's own."""
    spki = PublicFormat.SubjectPublicKeyInfo
    der = Encoding.DER
    return bool(private_key.public_key().public_bytes(der, spki) == public_key.public_bytes(der, spki))

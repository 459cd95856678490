"""The public half of the key that signs the audit digests, and checking a signature with it
(no secret needed). On AWS the key is a KMS asymmetric key (ECC_NIST_P256, ECDSA_SHA_256) named by
`INKWELL_AUDIT_SIGNING_KEY` (its alias or ARN): only the sealing function may `kms:Sign` with it
(see `sealer`), the REST function may `kms:GetPublicKey`. Without one (local stages: tests,
`make run`) the key is derived from the local secret `AUDIT_SIGNING_KEY` (a development secret),
so a local stage seals and verifies the same way, asymmetrically.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from typing import Any

from chalicelib import aws, config, secret

ALGORITHM = "ECDSA_SHA_256"
LOCAL_SECRET = "AUDIT_SIGNING_KEY"  # the local key's seed (local stages only)
_lock = threading.Lock()
_public: dict[str, dict[str, str]] = {}
_for: list[config.Settings] = []


def kms_key() -> str | None:
    return os.environ.get(config.AUDIT_SIGNING_KEY) or None


def local_private_key() -> Any:
    """The local stage's P-256 private key, derived from its secret."""
    from cryptography.hazmat.primitives.asymmetric import ec

    seed = secret.get(LOCAL_SECRET).encode()
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    scalar = int.from_bytes(hashlib.sha512(b"inkwell-audit-signing:" + seed).digest(), "big") % (order - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _pem(public: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key() -> dict[str, str]:
    """`{"key_id","algorithm","public_key_pem"}` of the digest-signing key (cached)."""
    name = kms_key() or f"local:{config.get().stage}"
    settings = config.get()
    with _lock:
        if not _for or _for[0] is not settings:  # config.reset() starts again, as secret's cache
            _public.clear()
            _for[:] = [settings]
        if name in _public:
            return _public[name]
    if kms_key():
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        answer = aws.client("kms").get_public_key(KeyId=name)
        found = {
            "key_id": answer["KeyId"],
            "algorithm": ALGORITHM,
            "public_key_pem": _pem(load_der_public_key(answer["PublicKey"])),
        }
    else:
        pem = _pem(local_private_key().public_key())
        found = {
            "key_id": "local:" + hashlib.sha256(pem.encode()).hexdigest()[:16],
            "algorithm": ALGORITHM,
            "public_key_pem": pem,
        }
    with _lock:
        _public[name] = found
    return found


def message(kind: str, value: str) -> bytes:
    """What a signature covers: `digest:<hash>` or `head:<seq>|<end>|<hash>|<genesis>` (pure)."""
    return f"{kind}:{value}".encode()


def valid(public_key_pem: str, data: bytes, signature: str) -> bool:
    """Whether `signature` (base64 DER ECDSA) signs `data` under the public key (pure)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(public_key_pem.encode())
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(base64.b64decode(signature, validate=True), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, AssertionError, TypeError):
        return False
    return True

"""Password hashing with scrypt, a per-user salt and constant-time comparison.

A hash records its own parameters (`scrypt$n$r$p$salt$hash`), so the cost can be raised later
without invalidating stored hashes: an older, cheaper hash still verifies, and `needs_rehash`
tells the login to store the password again at the current cost.

Cost: N = 2^17, r = 8, p = 1 (OWASP's Password Storage Cheat Sheet: 128 MiB and about 0.3 s a
hash; `INKWELL_SCRYPT_N`, which a deployed stage may only raise). Length: at least
MIN_LENGTH characters for a new password (NIST SP 800-63B rev. 4 and OWASP's Authentication
Cheat Sheet: 15 where the password is the only factor, as here), at most 256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

R, P, DKLEN = 8, 1, 32
MIN_LENGTH = 15
MAX_LENGTH = 256


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str, n: int) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=R, p=P, dklen=DKLEN, maxmem=256 * 1024 * 1024)
    return f"scrypt${n}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def dummy_hash(n: int) -> str:
    """A hash of nothing anyone knows, verified against for unknown emails so that they take
    as long to refuse as a wrong password."""
    return hash_password(base64.b64encode(os.urandom(18)).decode(), n)


def cost(stored: str) -> int:
    """The N a stored hash was made with (0 when unreadable)."""
    parts = stored.split("$")
    return int(parts[1]) if len(parts) == 6 and parts[1].isdigit() else 0


def needs_rehash(stored: str, n: int) -> bool:
    """Whether a hash that just verified was made cheaper than the current cost `n`."""
    return cost(stored) < n

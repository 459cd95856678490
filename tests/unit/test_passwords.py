"""Password hashing: scrypt with a per-user salt, self-describing hashes, constant-time checks."""

from __future__ import annotations

import pytest

from chalicelib.auth import passwords

N = 1024  # cheap for tests; the stored hash records it


def test_a_hash_verifies_its_password_and_nothing_else():
    stored = passwords.hash_password("s3cret pass", N)
    assert passwords.verify_password("s3cret pass", stored)
    assert not passwords.verify_password("s3cret pasS", stored)
    assert not passwords.verify_password("", stored)


def test_each_hash_has_its_own_salt():
    assert passwords.hash_password("same", N) != passwords.hash_password("same", N)


def test_a_hash_records_its_parameters_so_the_cost_can_change():
    scheme, n, r, p, _salt, _digest = passwords.hash_password("pw", N).split("$")
    assert (scheme, n, r, p) == ("scrypt", str(N), str(passwords.R), str(passwords.P))
    old = passwords.hash_password("pw", 2048)
    assert passwords.verify_password("pw", old)  # verified with its own n, whatever is configured now


def test_unicode_passwords_work():
    stored = passwords.hash_password("pässwörd ✓", N)
    assert passwords.verify_password("pässwörd ✓", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "bcrypt$1024$8$1$c2FsdA==$ZGlnZXN0",
        "scrypt$notanumber$8$1$c2FsdA==$ZGlnZXN0",
        "scrypt$1000$8$1$c2FsdA==$ZGlnZXN0",  # n must be a power of two
        "scrypt$1024$8$1$!!!$ZGlnZXN0",
        "scrypt$1024$8$1$c2FsdA==",
    ],
)
def test_a_malformed_stored_hash_never_verifies_and_never_raises(stored):
    assert passwords.verify_password("anything", stored) is False


def test_the_dummy_hash_is_a_valid_hash_of_an_unknown_password():
    dummy = passwords.dummy_hash(N)
    assert dummy.startswith(f"scrypt${N}$")
    assert not passwords.verify_password("", dummy)


def test_new_hashes_use_owasps_cost_by_default(monkeypatch):
    from chalicelib import config

    monkeypatch.delenv(config.SCRYPT_N, raising=False)
    config.reset()
    assert config.get().scrypt_n == config.MIN_SCRYPT_N >= 2**17
    stored = passwords.hash_password("correct horse battery staple", config.get().scrypt_n)  # ~0.3 s, 128 MiB
    assert stored.startswith("scrypt$131072$8$1$")
    assert passwords.verify_password("correct horse battery staple", stored)
    assert not passwords.needs_rehash(stored, config.get().scrypt_n)
    config.reset()


def test_an_older_cheaper_hash_verifies_and_asks_for_a_rehash():
    old = passwords.hash_password("pw", 512)
    assert passwords.verify_password("pw", old)
    assert passwords.needs_rehash(old, N) and not passwords.needs_rehash(passwords.hash_password("pw", N), N)
    assert passwords.needs_rehash("not a hash", N)

"""JWT issue and verify: HS256 only, every claim required, issuer and audience checked."""

from __future__ import annotations

import jwt
import pytest

from chalicelib.auth import tokens

SECRET = "unit-test-secret-" + "0123456789abcdef" * 4
NOW = 1_800_000_000.0


def _issue(ttl: int = 600) -> tuple[str, tokens.Claims]:
    return tokens.issue("user-1", "editor", SECRET, NOW, ttl)


def _payload() -> dict:
    return jwt.decode(_issue()[0], options={"verify_signature": False})


def _sign(payload: dict, **kw) -> str:
    return jwt.encode(payload, kw.get("key", SECRET), algorithm=kw.get("alg", "HS256"))


def test_an_issued_token_verifies_to_its_claims():
    token, claims = _issue()
    assert tokens.verify(token, SECRET, NOW + 1) == claims
    assert claims.exp == int(NOW) + 600 and claims.iat == int(NOW)
    assert set(_payload()) == set(tokens.REQUIRED) | {"sid"}


def test_each_token_has_a_fresh_jti():
    assert _issue()[1].jti != _issue()[1].jti


def test_a_token_expires_at_exp_by_the_given_clock():
    token, claims = _issue(60)
    assert tokens.verify(token, SECRET, claims.exp - 1)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(token, SECRET, claims.exp)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p: _sign(p, key="another-secret-" + "0" * 40), id="bad-signature"),
        pytest.param(lambda p: _sign(p, alg="HS384"), id="other-algorithm"),
        pytest.param(lambda p: jwt.encode(p, None, algorithm="none"), id="alg-none"),
        pytest.param(lambda p: _sign(dict(p, iss="evil")), id="wrong-issuer"),
        pytest.param(lambda p: _sign(dict(p, aud="other-api")), id="wrong-audience"),
        pytest.param(lambda p: _sign(dict(p, iat=int(NOW) + 3600)), id="issued-in-the-future"),
        pytest.param(lambda p: _sign(dict(p, nbf=int(NOW) + 3600)), id="not-before-in-the-future"),
        pytest.param(lambda p: _sign(dict(p, sub="")), id="empty-sub"),
        pytest.param(lambda p: _sign(dict(p, role=7)), id="role-not-a-string"),
        pytest.param(lambda p: _sign(dict(p, jti=["x"])), id="jti-not-a-string"),
        pytest.param(lambda p: _sign(dict(p, exp=True)), id="exp-a-boolean"),
        pytest.param(lambda p: "not.a.jwt", id="garbage"),
        pytest.param(lambda p: "", id="empty"),
        pytest.param(lambda p: "\ud800", id="lone-surrogate"),  # raised UnicodeEncodeError
        pytest.param(lambda p: _sign(p) + "\udfff", id="signed-then-a-lone-surrogate"),
    ]
    + [
        pytest.param(lambda p, c=claim: _sign({k: v for k, v in p.items() if k != c}), id=f"missing-{claim}")
        for claim in tokens.REQUIRED
    ],
)
def test_forged_or_malformed_tokens_are_invalid(change):
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(change(_payload()), SECRET, NOW + 1)

"""Token checks: revocation is always checked, and each firebase-admin failure maps to its HTTP status."""

from __future__ import annotations

from typing import Any

import pytest
from firebase_admin import auth
from firebase_admin import exceptions as fbexc

from voicecloning.auth import AuthError, AuthUnavailable, Forbidden, TokenVerifier


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """verify_id_token replaced by a recorder; the verifier's Firebase app is never initialised."""
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(TokenVerifier, "_firebase_app", lambda self: None)
    monkeypatch.setattr(auth, "verify_id_token", lambda token, **kw: seen.append(kw) or {"uid": "u_1"})
    return seen


def raising(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    def verify(token: str, **kw: Any) -> dict[str, Any]:
        raise exc

    monkeypatch.setattr(TokenVerifier, "_firebase_app", lambda self: None)
    monkeypatch.setattr(auth, "verify_id_token", verify)


def test_every_token_is_checked_for_revocation(calls: list[dict[str, Any]]) -> None:
    assert TokenVerifier("p").uid("Bearer t") == "u_1"
    assert calls == [{"app": None, "check_revoked": True}]


@pytest.mark.parametrize(("exc", "kind", "words"), [
    (auth.RevokedIdTokenError("revoked"), AuthError, "revoked"),
    (auth.UserDisabledError("disabled"), Forbidden, "disabled"),
    (auth.ExpiredIdTokenError("expired", None), AuthError, "invalid or expired"),
    (auth.UserNotFoundError("gone"), AuthError, "invalid or expired"),
    (fbexc.UnavailableError("down"), AuthUnavailable, "try again"),
    (fbexc.DeadlineExceededError("slow"), AuthUnavailable, "try again"),
])
def test_each_failure_has_its_status(monkeypatch: pytest.MonkeyPatch, exc: Exception, kind: type, words: str) -> None:
    """Revoked: 401; disabled: 403; expired or deleted user: 401; the check unavailable: 503."""
    raising(monkeypatch, exc)
    with pytest.raises(kind, match=words) as caught:
        TokenVerifier("p").uid("Bearer t")
    assert type(caught.value) is kind
    assert caught.value.status == {AuthError: 401, Forbidden: 403, AuthUnavailable: 503}[kind]

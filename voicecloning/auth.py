"""Who is calling: a verified Firebase ID token becomes a user id (firebase-admin).

The app is initialised lazily, once per process, never at import. Every
token is also checked against the user record (``check_revoked=True``): a
token whose sessions were revoked, or whose account was disabled or deleted,
is refused although its signature is still valid. With
FIREBASE_AUTH_EMULATOR_HOST set, firebase-admin accepts the Auth emulator's
unsigned tokens instead of checking Google's signatures (development only;
``Settings.from_env`` refuses it next to real Google services).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from voicecloning.routes import valid_id

log = logging.getLogger(__name__)
APP_NAME = "voicecloning-web"


class AuthError(Exception):
    """The caller is not signed in, or its token is not acceptable (HTTP 401)."""

    status = 401


class Forbidden(AuthError):
    """A valid token whose user may not use this API (HTTP 403)."""

    status = 403


class AuthUnavailable(AuthError):
    """Google's token-signing certificates could not be fetched; the caller may retry (HTTP 503)."""

    status = 503


class TokenVerifier:
    """Verify ``Authorization: Bearer <Firebase ID token>`` headers for one Firebase project."""

    def __init__(self, project: str | None) -> None:
        self.project = project
        self._app: Any = None
        self._lock = threading.Lock()

    def _firebase_app(self) -> Any:
        import firebase_admin

        with self._lock:
            if self._app is None:
                try:
                    self._app = firebase_admin.get_app(APP_NAME)
                except ValueError:
                    options = {"projectId": self.project} if self.project else {}
                    self._app = firebase_admin.initialize_app(options=options, name=APP_NAME)
            return self._app

    def uid(self, authorization: str | None) -> str:
        """The signed-in user's id; ``AuthError`` when the header is missing or the token invalid.

        ``Forbidden`` for a disabled account; ``AuthUnavailable`` when the check itself could not be made.
        """
        from firebase_admin import auth
        from firebase_admin import exceptions as fbexc

        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("sign in first: send 'Authorization: Bearer <Firebase ID token>'.")
        try:
            claims = auth.verify_id_token(token.strip(), app=self._firebase_app(), check_revoked=True)
        except auth.UserDisabledError:
            log.info("rejected an ID token", extra={"json_fields": {"reason": "UserDisabledError"}})
            raise Forbidden("this account is disabled; ask the service's operator to enable it.") from None
        except auth.RevokedIdTokenError:
            log.info("rejected an ID token", extra={"json_fields": {"reason": "RevokedIdTokenError"}})
            raise AuthError("this sign-in was revoked (signed out everywhere, or the password changed); "
                            "sign in again.") from None
        except (ValueError, auth.InvalidIdTokenError, auth.UserNotFoundError) as exc:
            log.info("rejected an ID token", extra={"json_fields": {"reason": type(exc).__name__}})
            raise AuthError("the sign-in token is invalid or expired; sign in again.") from None
        except (auth.CertificateFetchError, fbexc.UnavailableError, fbexc.DeadlineExceededError,
                fbexc.InternalError, fbexc.UnknownError) as exc:
            log.warning("sign-in check unavailable", extra={"json_fields": {"reason": type(exc).__name__}})
            raise AuthUnavailable("sign-in could not be checked just now; try again in a moment.") from None
        uid = str(claims.get("uid") or claims.get("sub") or "")
        if not valid_id(uid):
            raise Forbidden("this account's user id cannot own voices (use 1-64 letters, digits, '-' or '_').")
        return uid

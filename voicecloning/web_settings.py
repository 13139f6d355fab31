"""Settings of the web page's helpers in the HTTP function, read once from the environment.

Part of ``Settings`` (``settings.web``): ``Settings.from_env`` passes its
environment in; nothing here reads ``os.environ``.

    VOICECLONING_CORS_ORIGINS       comma-separated origins the page is served from
                                    (e.g. https://voices.example.com); empty: no CORS headers
    VOICECLONING_FIREBASE_PROJECT   the Firebase project whose ID tokens are accepted
                                    (default: GOOGLE_CLOUD_PROJECT)
    VOICECLONING_MAX_UPLOAD_BYTES   largest body the function accepts (default 32 MiB, Cloud Run's
                                    HTTP/1 request limit); the clip and request limits still apply
    FIREBASE_AUTH_EMULATOR_HOST     read by firebase-admin itself: accept the Auth emulator's
                                    unsigned tokens (local development and tests only)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from voicecloning.errors import ConfigurationError

CLOUD_RUN_REQUEST_LIMIT = 32 * 1024 * 1024


@dataclass(frozen=True)
class WebSettings:
    cors_origins: tuple[str, ...] = ()
    firebase_project: str | None = None
    max_upload_bytes: int = CLOUD_RUN_REQUEST_LIMIT
    auth_emulator_host: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebSettings:
        origins = tuple(o.strip().rstrip("/") for o in env.get("VOICECLONING_CORS_ORIGINS", "").split(",") if o.strip())
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"VOICECLONING_CORS_ORIGINS entry {origin!r} is not an origin; write it as https://host[:port]."
                )
        raw = env.get("VOICECLONING_MAX_UPLOAD_BYTES", "").strip()
        try:
            max_upload = int(raw) if raw else CLOUD_RUN_REQUEST_LIMIT
        except ValueError:
            raise ConfigurationError(f"VOICECLONING_MAX_UPLOAD_BYTES={raw!r} is not a whole number.") from None
        if max_upload <= 0:
            raise ConfigurationError(f"VOICECLONING_MAX_UPLOAD_BYTES={raw!r} must be positive.")
        project = (env.get("VOICECLONING_FIREBASE_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT")
                   or env.get("GCLOUD_PROJECT") or None)
        return cls(
            cors_origins=origins,
            firebase_project=project,
            max_upload_bytes=max_upload,
            auth_emulator_host=env.get("FIREBASE_AUTH_EMULATOR_HOST") or None,
        )

    def allowed_origin(self, origin: str | None) -> str | None:
        """The value for Access-Control-Allow-Origin, or None when ``origin`` may not call the API."""
        if not origin:
            return None
        if origin.rstrip("/") in self.cors_origins:
            return origin
        return "*" if "*" in self.cors_origins else None

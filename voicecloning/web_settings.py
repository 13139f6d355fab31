"""Settings of the web page's helpers in the HTTP function, read once from the environment.

Part of ``Settings`` (``settings.web``): ``Settings.from_env`` passes its
environment in; nothing here reads ``os.environ``.

    VOICECLONING_CORS_ORIGINS       comma-separated origins the page is served from
                                    (e.g. https://voices.example.com); empty: no CORS headers
    VOICECLONING_FIREBASE_PROJECT   the Firebase project whose ID tokens are accepted
                                    (default: GOOGLE_CLOUD_PROJECT)
    VOICECLONING_MAX_UPLOAD_BYTES   largest body the function accepts (default 32 MiB, Cloud Run's
                                    HTTP/1 request limit); the clip and request limits still apply
    VOICECLONING_UPLOAD_BUFFER_BYTES  upload bytes one API process holds at once, all requests
                                    together (default 192 MiB); past it, uploads get 503 + Retry-After
    FIREBASE_AUTH_EMULATOR_HOST     read by firebase-admin itself: accept the Auth emulator's
                                    unsigned tokens. Refused with the gcp backend unless Firestore
                                    and Cloud Storage are emulators too (and never on Cloud Run)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from voicecloning.errors import ConfigurationError

CLOUD_RUN_REQUEST_LIMIT = 32 * 1024 * 1024
# Six full-size bodies: with their copies, well inside the API's 1 GiB next to Python and its libraries.
DEFAULT_UPLOAD_BUFFER = 6 * CLOUD_RUN_REQUEST_LIMIT


@dataclass(frozen=True)
class WebSettings:
    cors_origins: tuple[str, ...] = ()
    firebase_project: str | None = None
    max_upload_bytes: int = CLOUD_RUN_REQUEST_LIMIT
    upload_buffer_bytes: int = DEFAULT_UPLOAD_BUFFER
    auth_emulator_host: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], backend: str = "local") -> WebSettings:
        origins = tuple(o.strip().rstrip("/") for o in env.get("VOICECLONING_CORS_ORIGINS", "").split(",") if o.strip())
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"VOICECLONING_CORS_ORIGINS entry {origin!r} is not an origin; write it as https://host[:port]."
                )
        project = (env.get("VOICECLONING_FIREBASE_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT")
                   or env.get("GCLOUD_PROJECT") or None)
        web = cls(
            cors_origins=origins,
            firebase_project=project,
            max_upload_bytes=_positive(env, "VOICECLONING_MAX_UPLOAD_BYTES", CLOUD_RUN_REQUEST_LIMIT),
            upload_buffer_bytes=_positive(env, "VOICECLONING_UPLOAD_BUFFER_BYTES", DEFAULT_UPLOAD_BUFFER),
            auth_emulator_host=env.get("FIREBASE_AUTH_EMULATOR_HOST") or None,
        )
        if web.auth_emulator_host and backend == "gcp":
            _refuse_auth_emulator_beside_google(env)
        return web

    def allowed_origin(self, origin: str | None) -> str | None:
        """The value for Access-Control-Allow-Origin, or None when ``origin`` may not call the API."""
        if not origin:
            return None
        if origin.rstrip("/") in self.cors_origins:
            return origin
        return "*" if "*" in self.cors_origins else None


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number.") from None
    if value <= 0:
        raise ConfigurationError(f"{name}={raw!r} must be positive.")
    return value


def _refuse_auth_emulator_beside_google(env: Mapping[str, str]) -> None:
    """firebase-admin accepts unsigned tokens when FIREBASE_AUTH_EMULATOR_HOST is set: anyone could
    then sign in as anyone. That is only harmless when every Google service is an emulator too."""
    real = [name for name, emulator in (("Firestore", "FIRESTORE_EMULATOR_HOST"),
                                        ("Cloud Storage", "STORAGE_EMULATOR_HOST")) if not env.get(emulator)]
    if env.get("K_SERVICE"):
        real.append("Cloud Run")
    if real:
        raise ConfigurationError(
            "FIREBASE_AUTH_EMULATOR_HOST is set with VOICECLONING_BACKEND=gcp and real "
            f"{' and '.join(real)}: firebase-admin would accept unsigned ID tokens, so anyone could act as "
            "any user. Unset FIREBASE_AUTH_EMULATOR_HOST (it is for local emulators only)."
        )

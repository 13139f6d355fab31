"""The small HTTP API: health (never loads the model), model info, and the page's upload/download helpers.

    GET  /health, GET /model/info          public
    PUT  /voices/<voice_id>.<ext>          signed in: store a reference clip under the caller's prefix
                                           (optional X-Voice-Consent: the speaker's statement, URL-encoded)
    POST /jobs                             signed in: store a synthesis request under the caller's prefix
    GET  /outputs/<job_id>.<ext>           signed in: the caller's finished audio
    GET  /outputs/<job_id>/parts/<n>.wav   signed in: one rendered part of the caller's job (while it renders)
    OPTIONS <any>                          CORS preflight for the configured page origins
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from handlers import uploads
from voicecloning import __version__
from voicecloning.auth import AuthError, TokenVerifier
from voicecloning.errors import ConfigurationError, TransientError
from voicecloning.services import Services
from voicecloning.web_settings import WebSettings

log = logging.getLogger(__name__)
Response = tuple[dict[str, Any], int]
CORS_METHODS = "GET, HEAD, POST, PUT, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, X-Voice-Consent"


@dataclass(frozen=True)
class ApiRequest:
    """What the API needs of an HTTP request (built from Flask's request in main.py)."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content_length: int | None = None
    read_body: Callable[[], bytes] = bytes


@dataclass
class Reply:
    """A JSON body (dict) or raw bytes, with a status and extra headers."""

    body: dict[str, Any] | bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class WebContext:
    """The web helpers' collaborators; ``services`` is called only by routes that touch the buckets."""

    settings: WebSettings
    verifier: TokenVerifier
    services: Callable[[], Services]


def health() -> Response:
    return {"status": "healthy", "timestamp": datetime.now(UTC).isoformat(), "version": __version__}, 200


def model_info(engine: Any) -> Response:
    """What the model can do, read from its config; says whether this instance has loaded it."""
    try:
        info = engine.describe()
    except ConfigurationError as exc:
        log.error("model not available", extra={"json_fields": {"reason": str(exc)}})
        return {"success": False, "error": str(exc), "loaded": False, "version": __version__}, 503
    return {"success": True, **info, "version": __version__}, 200


def handle(method: str, path: str, engine: Any) -> Response:
    """The public, read-only routes."""
    route = path.rstrip("/") or "/"
    if method not in ("GET", "HEAD"):
        return {"success": False, "error": f"{method} is not allowed; use GET."}, 405
    if route in ("/", "/health"):
        return health()
    if route == "/model/info":
        return model_info(engine)
    return _not_found(route)


def handle_request(request: ApiRequest, engine: Callable[[], Any], web: WebContext) -> Reply:
    """Every route, with CORS headers for an allowed page origin."""
    origin = request.headers.get("Origin") or request.headers.get("origin")
    allowed = web.settings.allowed_origin(origin)
    if request.method == "OPTIONS":
        reply = Reply({}, 204) if allowed else Reply({"success": False, "error": "this origin may not call the API."}, 403)
    else:
        reply = _route(request, engine, web)
    if allowed:
        reply.headers.update({
            "Access-Control-Allow-Origin": allowed,
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Expose-Headers": "Content-Disposition",
            "Access-Control-Max-Age": "3600",
            "Vary": "Origin",
        })
    return reply


def _route(request: ApiRequest, engine: Callable[[], Any], web: WebContext) -> Reply:
    route = request.path.rstrip("/") or "/"
    helper = _helper(request.method, route)
    if helper is None:
        if route.startswith(("/voices/", "/outputs/")) or route == "/jobs":
            return Reply({"success": False, "error": f"{request.method} is not allowed on {route}."}, 405)
        body, status = handle(request.method, route, engine() if route == "/model/info" else None)
        return Reply(body, status)
    try:
        uid = web.verifier.uid(request.headers.get("Authorization") or request.headers.get("authorization"))
        return helper(request, route, uid, web)
    except AuthError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return Reply({"success": False, "error": str(exc)}, exc.status, headers)
    except uploads.UploadRejected as exc:
        return Reply({"success": False, "error": str(exc)}, exc.status)
    except TransientError as exc:
        log.warning("storage unavailable", extra={"json_fields": {"reason": str(exc)}})
        return Reply({"success": False, "error": "storage is unavailable just now; try again."}, 503,
                     {"Retry-After": "5"})


def _helper(method: str, route: str) -> Callable[[ApiRequest, str, str, WebContext], Reply] | None:
    if method == "PUT" and route.startswith("/voices/"):
        return _put_voice
    if method == "POST" and route == "/jobs":
        return _post_job
    if method in ("GET", "HEAD") and route.startswith("/outputs/"):
        return _get_output
    return None


def _body(request: ApiRequest, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise uploads.UploadRejected(f"the upload is {request.content_length:,} bytes; the limit is {limit:,}.", 413)
    data = request.read_body()
    if len(data) > limit:
        raise uploads.UploadRejected(f"the upload is {len(data):,} bytes; the limit is {limit:,}.", 413)
    return data


def _put_voice(request: ApiRequest, route: str, uid: str, web: WebContext) -> Reply:
    services = web.services()
    limit = min(services.settings.limits.max_clip_bytes, web.settings.max_upload_bytes)
    stored = uploads.upload_voice(uid, route[len("/voices/"):], _body(request, limit),
                                  request.headers.get("Content-Type"), inputs=services.inputs,
                                  limits=services.settings.limits, max_bytes=web.settings.max_upload_bytes,
                                  consent=unquote(request.headers.get("X-Voice-Consent") or "") or None)
    log.info("voice clip uploaded", extra={"json_fields": {"owner": uid, "object": stored.object}})
    return Reply({"success": True, "voice_id": stored.id, "object": stored.object}, 201)


def _post_job(request: ApiRequest, route: str, uid: str, web: WebContext) -> Reply:
    services = web.services()
    limit = min(services.settings.limits.max_request_bytes, web.settings.max_upload_bytes)
    stored = uploads.submit_job(uid, _body(request, limit), inputs=services.inputs, limits=services.settings.limits)
    log.info("job submitted", extra={"json_fields": {"owner": uid, "object": stored.object}})
    return Reply({"success": True, "job_id": stored.id, "object": stored.object}, 201)


def _get_output(request: ApiRequest, route: str, uid: str, web: WebContext) -> Reply:
    found = uploads.read_output(uid, route[len("/outputs/"):], outputs=web.services().outputs)
    return Reply(found.data, 200, {
        "Content-Disposition": f'inline; filename="{found.filename}"',
        "Cache-Control": "private, no-store",
    }, found.content_type)


def _not_found(route: str) -> Response:
    return {"success": False, "error": f"no such endpoint: {route}; try /health or /model/info."}, 404

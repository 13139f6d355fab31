"""The small HTTP API: health, model info, and the page's upload/download helpers.

    GET  /health                           public; touches nothing
    GET  /model/info                       public: the model's facts from its config, and the worker's
                                           own report (``worker``; see voicecloning/selfreport.py)
    PUT  /voices/<voice_id>.<ext>          signed in: store a reference clip under the caller's prefix
                                           (optional X-Voice-Consent: the speaker's statement, URL-encoded)
    POST /jobs                             signed in: store a synthesis request under the caller's prefix
    GET  /outputs/<job_id>.<ext>           signed in: the caller's finished audio
    GET  /outputs/<job_id>/parts/<n>.wav   signed in: one rendered part of the caller's job (while it renders)
    OPTIONS <any>                          CORS preflight for the configured page origins

This process never loads the model, nor imports torch or the engine module.
Every answer is JSON (or the audio asked for) and carries the CORS headers of
an allowed origin, errors included: a refused upload, a storage outage, and
anything unexpected (500, logged with its traceback and an incident id).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from handlers import uploads
from handlers.bodies import BodyBuffer, RequestBody
from voicecloning import __version__
from voicecloning.auth import AuthError, TokenVerifier
from voicecloning.errors import ConfigurationError, TransientError
from voicecloning.selfreport import read_worker_report
from voicecloning.services import Services
from voicecloning.web_settings import WebSettings

log = logging.getLogger(__name__)
Response = tuple[dict[str, Any], int]
CORS_METHODS = "GET, HEAD, POST, PUT, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, X-Voice-Consent"
DESCRIBES = {
    "model": "the model this service is configured with, read from its config files (same image as the worker)",
    "worker": "the worker's own report, written when its engine finished loading; null until a worker has",
}


@dataclass(frozen=True)
class ApiRequest:
    """What the API needs of an HTTP request (built from Flask's request in main.py)."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: RequestBody = field(default_factory=lambda: RequestBody(None, None))


@dataclass
class Reply:
    """A JSON body (dict) or raw bytes, with a status and extra headers."""

    body: dict[str, Any] | bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class WebContext:
    """The API's collaborators; ``stores`` and ``model`` are called only by the routes that need them."""

    settings: WebSettings
    verifier: TokenVerifier
    stores: Callable[[], Services]  # the stores without an engine
    model: Callable[[], dict[str, Any]]  # the model's facts (voicecloning.modelinfo)
    buffer: BodyBuffer


def health() -> Response:
    return {"status": "healthy", "timestamp": datetime.now(UTC).isoformat(), "version": __version__}, 200


def model_info(web: WebContext) -> Response:
    """The model's facts from its config, and the worker's report on itself (or null)."""
    try:
        facts = web.model()
    except ConfigurationError as exc:
        log.error("model not available", extra={"json_fields": {"reason": str(exc)}})
        return {"success": False, "error": str(exc), "worker": None, "version": __version__}, 503
    body: dict[str, Any] = {"success": True, **facts, "describes": DESCRIBES, "version": __version__}
    try:
        body["worker"] = read_worker_report(web.stores().docs)
    except TransientError as exc:
        log.warning("worker report unavailable", extra={"json_fields": {"reason": str(exc)}})
        body["worker"] = None
        body["worker_error"] = "the worker's report could not be read just now; try again."
    return body, 200


def handle_request(request: ApiRequest, context: Callable[[], WebContext]) -> Reply:
    """Every route, with CORS headers for an allowed page origin, errors included."""
    try:
        web = context()
    except ConfigurationError as exc:  # the origins are part of what is broken: no CORS headers to give
        log.error("configuration error", extra={"json_fields": {"reason": str(exc)}})
        return Reply({"success": False, "error": "the service is misconfigured; its operator has been told."}, 503)
    origin = request.headers.get("Origin") or request.headers.get("origin")
    allowed = web.settings.allowed_origin(origin)
    if request.method == "OPTIONS":
        reply = Reply({}, 204) if allowed else Reply({"success": False, "error": "this origin may not call the API."}, 403)
    else:
        reply = _guarded(request, web)
    if allowed:
        reply.headers.update({
            "Access-Control-Allow-Origin": allowed,
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Expose-Headers": "Content-Disposition, Retry-After",
            "Access-Control-Max-Age": "3600",
            "Vary": "Origin",
        })
    return reply


def _guarded(request: ApiRequest, web: WebContext) -> Reply:
    """``_route``, with every failure turned into a JSON answer."""
    try:
        return _route(request, web)
    except AuthError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return Reply({"success": False, "error": str(exc)}, exc.status, headers)
    except uploads.UploadRejected as exc:
        headers = {"Retry-After": "5"} if exc.status == 503 else {}
        return Reply({"success": False, "error": str(exc)}, exc.status, headers)
    except TransientError as exc:
        log.warning("storage unavailable", extra={"json_fields": {"reason": str(exc)}})
        return Reply({"success": False, "error": "storage is unavailable just now; try again."}, 503,
                     {"Retry-After": "5"})
    except ConfigurationError as exc:
        log.error("configuration error", extra={"json_fields": {"reason": str(exc)}})
        return Reply({"success": False, "error": "the service is misconfigured; its operator has been told."}, 503)
    except Exception:  # noqa: BLE001 -- the HTTP edge: an answer nobody retries for us; logged with its traceback
        incident = secrets.token_hex(6)
        log.exception("unexpected error", extra={"json_fields": {"incident": incident, "path": request.path}})
        return Reply({"success": False, "error": f"something went wrong on our side (incident {incident}); "
                      "try again later.", "incident": incident}, 500)


def _route(request: ApiRequest, web: WebContext) -> Reply:
    route = request.path.rstrip("/") or "/"
    helper = _helper(request.method, route)
    if helper is not None:
        uid = web.verifier.uid(request.headers.get("Authorization") or request.headers.get("authorization"))
        return helper(request, route, uid, web)
    if route.startswith(("/voices/", "/outputs/")) or route == "/jobs":
        return Reply({"success": False, "error": f"{request.method} is not allowed on {route}."}, 405)
    if request.method not in ("GET", "HEAD"):
        return Reply({"success": False, "error": f"{request.method} is not allowed; use GET."}, 405)
    if route in ("/", "/health"):
        return Reply(*health())
    if route == "/model/info":
        return Reply(*model_info(web))
    return Reply({"success": False, "error": f"no such endpoint: {route}; try /health or /model/info."}, 404)


def _helper(method: str, route: str) -> Callable[[ApiRequest, str, str, WebContext], Reply] | None:
    if method == "PUT" and route.startswith("/voices/"):
        return _put_voice
    if method == "POST" and route == "/jobs":
        return _post_job
    if method in ("GET", "HEAD") and route.startswith("/outputs/"):
        return _get_output
    return None


def _put_voice(request: ApiRequest, route: str, uid: str, web: WebContext) -> Reply:
    services = web.stores()
    limit = min(services.settings.limits.max_clip_bytes, web.settings.max_upload_bytes)
    consent = unquote(request.headers.get("X-Voice-Consent") or "") or None
    with web.buffer.hold(_reservation(request.body, limit)):
        stored = uploads.upload_voice(uid, route[len("/voices/"):], request.body.read(limit),
                                      request.headers.get("Content-Type"), inputs=services.inputs,
                                      limits=services.settings.limits, max_bytes=web.settings.max_upload_bytes,
                                      consent=consent)
    log.info("voice clip uploaded", extra={"json_fields": {"owner": uid, "object": stored.object}})
    return Reply({"success": True, "voice_id": stored.id, "object": stored.object}, 201)


def _post_job(request: ApiRequest, route: str, uid: str, web: WebContext) -> Reply:
    services = web.stores()
    limit = min(services.settings.limits.max_request_bytes, web.settings.max_upload_bytes)
    with web.buffer.hold(_reservation(request.body, limit)):
        stored = uploads.submit_job(uid, request.body.read(limit), inputs=services.inputs,
                                    limits=services.settings.limits)
    log.info("job submitted", extra={"json_fields": {"owner": uid, "object": stored.object}})
    return Reply({"success": True, "job_id": stored.id, "object": stored.object}, 201)


def _get_output(request: ApiRequest, route: str, uid: str, web: WebContext) -> Reply:
    found = uploads.read_output(uid, route[len("/outputs/"):], outputs=web.stores().outputs)
    return Reply(found.data, 200, {
        "Content-Disposition": f'inline; filename="{found.filename}"',
        "Cache-Control": "private, no-store",
    }, found.content_type)


def _reservation(body: RequestBody, limit: int) -> int:
    """Bytes to reserve for ``body``: its declared length (refused later if over ``limit``), else ``limit``."""
    return limit if body.declared is None else min(body.declared, limit)

"""Entry points for functions-framework: thin edges over the handlers.

    functions-framework --target=on_push               # HTTP: Pub/Sub push: POST /storage (notifications), /tasks (parts)
    functions-framework --target=on_object_finalized   # CloudEvent: Cloud Storage object finalized (Eventarc)
    functions-framework --target=http_api              # HTTP: /health, /model/info, the page's /voices /jobs /outputs

The API process must never import torch or the engine: worker code is imported inside worker entry points.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import functions_framework
from flask import Request
from flask import Response as FlaskResponse

from handlers import api
from handlers.bodies import BodyBuffer, RequestBody
from voicecloning import push, runtime
from voicecloning.auth import TokenVerifier
from voicecloning.events import StorageEvent
from voicecloning.modelinfo import model_facts


@functions_framework.cloud_event
def on_object_finalized(cloud_event: Any) -> None:
    """Return (acknowledge) or raise (HTTP 500: the platform redelivers), as the handler decides."""
    from handlers.dispatch import handle_storage_event  # the worker's code (torch): never loaded by http_api

    data = cloud_event.get_data()
    event = StorageEvent.from_cloudevent(cloud_event.get_attributes(), data if isinstance(data, dict) else {})
    handle_storage_event(event, runtime.services())


@functions_framework.http
def on_push(request: Request) -> FlaskResponse:
    """Pub/Sub push: 204 acknowledges; a raise (HTTP 500) is redelivered; 400 for a body we cannot read."""
    from handlers.dispatch import handle_storage_event  # the worker's code (torch): never loaded by http_api
    from handlers.tasks import handle_task

    try:
        message = push.parse_push(request.get_json(silent=True))
        if request.path.rstrip("/") == "/storage":
            handle_storage_event(push.storage_event(message), runtime.services())
        elif request.path.rstrip("/") == "/tasks":
            handle_task(push.task(message), runtime.services())
        else:
            return FlaskResponse(json.dumps({"error": f"no route {request.path}; use /storage or /tasks"}), 404,
                                 content_type="application/json")
    except push.MalformedPush as exc:
        return FlaskResponse(json.dumps({"error": str(exc)}), 400, content_type="application/json")
    return FlaskResponse(b"", 204)


@functions_framework.http
def http_api(request: Request) -> FlaskResponse:
    """Health, model info, and the page's authenticated upload/download helpers (handlers/api.py)."""
    body = RequestBody(request.stream, request.content_length,
                       chunked="chunked" in (request.headers.get("Transfer-Encoding") or "").lower())
    reply = api.handle_request(
        api.ApiRequest(method=request.method, path=request.path, headers=request.headers, body=body),
        context=_web_context,
    )
    payload = b"" if reply.status == 204 else reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
    if body.unread:
        # functions-framework reads any unread body after the response (into memory); a streamed
        # response skips that, and the server discards the rest in small blocks instead.
        return FlaskResponse(iter([payload]), reply.status, reply.headers, content_type=reply.content_type)
    return FlaskResponse(payload, reply.status, reply.headers, content_type=reply.content_type)


@functools.cache
def _web_context() -> api.WebContext:
    """Built on the first request, once per process (never at import); no engine, no torch."""
    current = runtime.settings()
    web = current.web
    return api.WebContext(settings=web, verifier=TokenVerifier(web.firebase_project), stores=runtime.stores,
                          model=functools.cache(lambda: model_facts(current.model_dir)),
                          buffer=BodyBuffer(web.upload_buffer_bytes))

"""Entry points for functions-framework: thin edges over the handlers.

    functions-framework --target=on_object_finalized   # CloudEvent: Cloud Storage object finalized
    functions-framework --target=http_api              # HTTP: /health, /model/info, the page's /voices /jobs /outputs
"""

from __future__ import annotations

import functools
import json
from typing import Any

import functions_framework
from flask import Request
from flask import Response as FlaskResponse

from handlers import api
from handlers.dispatch import handle_storage_event
from voicecloning import runtime
from voicecloning.auth import TokenVerifier
from voicecloning.events import StorageEvent


@functions_framework.cloud_event
def on_object_finalized(cloud_event: Any) -> None:
    """Return (acknowledge) or raise (HTTP 500: the platform redelivers), as the handler decides."""
    data = cloud_event.get_data()
    event = StorageEvent.from_cloudevent(cloud_event.get_attributes(), data if isinstance(data, dict) else {})
    handle_storage_event(event, runtime.services())


@functions_framework.http
def http_api(request: Request) -> FlaskResponse:
    """Health, model info, and the page's authenticated upload/download helpers (handlers/api.py)."""
    reply = api.handle_request(
        api.ApiRequest(method=request.method, path=request.path, headers=request.headers,
                       content_length=request.content_length, read_body=request.get_data),
        engine=runtime.engine,
        web=_web_context(),
    )
    body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
    if reply.status == 204:
        body = b""
    return FlaskResponse(body, reply.status, reply.headers, content_type=reply.content_type)


@functools.cache
def _web_context() -> api.WebContext:
    """Built on the first request, once per process (never at import)."""
    web = runtime.settings().web
    return api.WebContext(settings=web, verifier=TokenVerifier(web.firebase_project), services=runtime.services)

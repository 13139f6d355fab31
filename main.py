"""Entry points for functions-framework: thin edges over the handlers.

    functions-framework --target=on_object_finalized   # CloudEvent: Cloud Storage object finalized
    functions-framework --target=http_api              # HTTP: GET /health, GET /model/info
"""

from __future__ import annotations

from typing import Any

import functions_framework
from flask import Request

from handlers import api
from handlers.dispatch import handle_storage_event
from voicecloning import runtime
from voicecloning.events import StorageEvent


@functions_framework.cloud_event
def on_object_finalized(cloud_event: Any) -> None:
    """Return (acknowledge) or raise (HTTP 500: the platform redelivers), as the handler decides."""
    data = cloud_event.get_data()
    event = StorageEvent.from_cloudevent(cloud_event.get_attributes(), data if isinstance(data, dict) else {})
    handle_storage_event(event, runtime.services())


@functions_framework.http
def http_api(request: Request) -> tuple[dict[str, Any], int]:
    return api.handle(request.method, request.path, runtime.engine())

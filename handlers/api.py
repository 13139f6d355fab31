"""The small HTTP API: health (never loads the model) and model info."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from voicecloning import __version__
from voicecloning.errors import ConfigurationError

log = logging.getLogger(__name__)
Response = tuple[dict[str, Any], int]


def health() -> Response:
    return {"status": "healthy", "timestamp": datetime.now(timezone.utc).isoformat(), "version": __version__}, 200


def model_info(engine: Any) -> Response:
    """What the model can do, read from its config; says whether this instance has loaded it."""
    try:
        info = engine.describe()
    except ConfigurationError as exc:
        log.error("model not available", extra={"json_fields": {"reason": str(exc)}})
        return {"success": False, "error": str(exc), "loaded": False, "version": __version__}, 503
    return {"success": True, **info, "version": __version__}, 200


def handle(method: str, path: str, engine: Any) -> Response:
    route = path.rstrip("/") or "/"
    if method not in ("GET", "HEAD"):
        return {"success": False, "error": f"{method} is not allowed; use GET."}, 405
    if route in ("/", "/health"):
        return health()
    if route == "/model/info":
        return model_info(engine)
    return {"success": False, "error": f"no such endpoint: {route}; try /health or /model/info."}, 404

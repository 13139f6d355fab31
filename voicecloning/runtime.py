"""The process's settings, stores and engine: built once, lazily, on first use (never at import).

``stores()`` is what the HTTP API uses: the same stores without an engine, so
that process never imports torch or the engine module.
"""

from __future__ import annotations

import threading
from typing import Any

from voicecloning import logs
from voicecloning.services import Services, build_engine, build_services, build_stores
from voicecloning.settings import Settings

_lock = threading.Lock()
_state: dict[str, Any] = {}


def settings() -> Settings:
    with _lock:
        if "settings" not in _state:
            _state["settings"] = Settings.from_env()
            logs.configure(_state["settings"].log_level)
        return _state["settings"]  # type: ignore[no-any-return]


def engine() -> Any:
    current = settings()
    with _lock:
        if "engine" not in _state:
            _state["engine"] = build_engine(current)
        return _state["engine"]


def services() -> Services:
    current, eng = settings(), engine()
    with _lock:
        if "services" not in _state:
            _state["services"] = build_services(current, engine=eng)
        return _state["services"]  # type: ignore[no-any-return]


def stores() -> Services:
    """The stores alone (``engine`` is None): for the HTTP API."""
    current = settings()
    with _lock:
        if "stores" not in _state:
            _state["stores"] = build_stores(current)
        return _state["stores"]  # type: ignore[no-any-return]


def reset() -> None:
    """Forget everything (tests that change the environment)."""
    with _lock:
        _state.clear()

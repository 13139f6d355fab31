"""The real handler path in-process, on the embedded backends (a folder and SQLite).

``put`` stores an object the way an upload does and delivers its storage event to
``handle_storage_event`` exactly as the platform would (redelivering while it raises).
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import soundfile as sf

from handlers.dispatch import handle_storage_event
from handlers.outcome import Outcome
from voicecloning.events import FINALIZED, StorageEvent
from voicecloning.notify import EmbeddedNotifier
from voicecloning.services import Services
from voicecloning.settings import Settings
from voicecloning.stores.documents import SqliteDocumentStore
from voicecloning.stores.folder import LocalBlobStore


class Harness:
    def __init__(self, root: Path, engine: Any, env: dict[str, str] | None = None) -> None:
        settings = Settings.from_env({"VOICECLONING_BACKEND": "local", "VOICECLONING_DATA_DIR": str(root),
                                      "VOICECLONING_VOICE_POLL_SECONDS": "1", **(env or {})})
        self.services = Services(
            settings=settings,
            inputs=LocalBlobStore(root / "input", "input"),
            outputs=LocalBlobStore(root / "output", "output"),
            docs=SqliteDocumentStore(root / "documents.sqlite3"),
            engine=engine,
            notifier=EmbeddedNotifier(root / "documents.sqlite3"),  # as build_services does locally
        )

    def with_settings(self, **changes: Any) -> Harness:
        self.services = replace(self.services, settings=replace(self.services.settings, **changes))
        return self

    def put(self, name: str, data: bytes, metadata: dict[str, str] | None = None, deliver: bool = True) -> Outcome | None:
        info = self.services.inputs.write(name, data, "application/octet-stream", metadata)
        if not deliver:
            return None
        return self.deliver(name, info.generation)

    def deliver(self, name: str, generation: int | None = None, attempts: int = 5) -> Outcome:
        info = self.services.inputs.stat(name)
        assert info is not None
        event = StorageEvent(id=f"test-{name}-{info.generation}", type=FINALIZED, time=datetime.now(UTC),
                             bucket="input", name=name, generation=generation or info.generation, size=info.size,
                             content_type=info.content_type, metadata=info.metadata)
        for attempt in range(attempts):
            try:
                return handle_storage_event(event, self.services)
            except Exception:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def request(self, job_id: str, prefix: str = "", **body: Any) -> dict[str, Any]:
        self.put(f"{prefix}requests/{job_id}.json", json.dumps(body).encode())
        return self.doc(f"{prefix}jobs/{job_id}")

    def doc(self, path: str) -> dict[str, Any]:
        doc = self.services.docs.get(path)
        assert doc is not None, f"no document at {path}"
        return doc

    def output(self, doc: dict[str, Any]) -> bytes:
        data = self.services.outputs.read(doc["output_object"])
        assert data is not None
        return data

    def output_info(self, doc: dict[str, Any]):  # type: ignore[no-untyped-def]
        return self.services.outputs.stat(doc["output_object"])


def audio_of(data: bytes) -> tuple[Any, int]:
    return sf.read(io.BytesIO(data), dtype="float32")

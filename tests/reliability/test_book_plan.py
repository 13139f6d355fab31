"""A book in one request: 500,000 characters are planned into parts within one delivery, nothing
dropped, the first part small, every part a queued task (rendering is tested elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handlers.dispatch import handle_storage_event
from handlers.outcome import Outcome
from tests.reliability.conftest import local_services, put, request_bytes
from voicecloning.parts import estimate_seconds
from voicecloning.stores.queue import EmbeddedTaskQueue


def test_a_500000_character_book_is_planned_into_parts_with_nothing_dropped(
    tmp_path: Path, quick_engine: Any, clip_bytes: bytes
) -> None:
    svc = local_services(tmp_path, quick_engine)
    assert handle_storage_event(put(svc, "voices/v.wav", clip_bytes, "audio/wav"), svc) is Outcome.DONE
    tasks = EmbeddedTaskQueue(tmp_path / "tasks.sqlite3")
    svc.tasks = tasks
    sentences = [f"Chapter {i // 40}, sentence {i}: the story goes on{', and on' * (i % 7)}." for i in range(9000)]
    text = " ".join(sentences)[:500_000].rsplit(" ", 1)[0]
    assert handle_storage_event(put(svc, "requests/book.json", request_bytes(text=text, voice_id="v")), svc) \
        is Outcome.PLANNED
    job = svc.docs.get("jobs/book")
    assert job is not None and job["status"] == "processing" and job["planned"] and job["characters"] == len(text)
    parts = sorted(svc.docs.children("jobs/book/parts"), key=lambda kv: int(kv[0]))
    assert len(parts) == job["parts_total"] == tasks.pending() > 500
    spoken = " ".join(s["text"] for _k, p in parts for s in p["segments"])
    assert spoken.split() == text.split(), "every word is in exactly one part, in order"
    first = parts[0][1]
    assert sum(estimate_seconds(s["text"], "en") for s in first["segments"]) <= 8 + 20  # a sentence or two
    assert first["pause_before_s"] == 0.0 and all(p["pause_before_s"] == 0.2 for _k, p in parts[1:])

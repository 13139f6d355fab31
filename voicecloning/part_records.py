"""Part documents (``<job path>/parts/<n>``) and the job's aggregate of them.

A part document carries its job's generation (``source.generation``), so the claim,
lease and finish of ``records`` apply to it unchanged: a task for an older upload finds
a newer generation and changes nothing. Per-part writes go to the part documents; the
job document's aggregate (``parts_done``, ``progress``, ``first_audio_at``) is written at
most once per ``aggregate_interval_seconds`` -- Firestore sustains about one write per
second per document -- except when part 0 is done (first audio) or every part is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voicecloning import records
from voicecloning.parts import Part
from voicecloning.stores.documents import DocumentStore


def part_path(job_path: str, index: int) -> str:
    return f"{job_path}/parts/{index}"


def open_part(docs: DocumentStore, job_path: str, generation: int, part: Part, job: dict[str, Any],
              now: datetime) -> str:
    """Create (or reset, for a newer upload) the document of ``part``; "new" | "current" | "stale"."""
    initial = {
        "index": part.index,
        "job_id": job.get("job_id"),
        "owner": job.get("owner"),
        "source": {"generation": str(generation)},
        "status": "queued",
        "chars": part.chars,
        "segments": [s.to_dict() for s in part.segments],
        "pause_before_s": part.pause_before_s,
        "progress": 0.0,
        "worker": None,
        "output_uri": None,
        "output_object": None,
        "duration_s": None,
    }
    opened, _doc = records.open_record(docs, part_path(job_path, part.index), generation=generation,
                                       initial=initial, now=now)
    return opened


@dataclass(frozen=True)
class Tally:
    total: int
    done: int
    progress: float
    parts: dict[int, dict[str, Any]]

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.done == self.total


def tally(docs: DocumentStore, job_path: str, generation: int, total: int) -> Tally:
    """The parts of this generation (index < total), how many are done, and the progress by characters."""
    parts: dict[int, dict[str, Any]] = {}
    for key, doc in docs.children(f"{job_path}/parts"):
        if key.isdigit() and int(key) < total and records.generation_of(doc) == generation:
            parts[int(key)] = doc
    done = sum(1 for doc in parts.values() if doc.get("status") == "done")
    chars = sum(int(doc.get("chars") or 0) for doc in parts.values()) or 1
    spoken = sum(int(doc.get("chars") or 0) * (1.0 if doc.get("status") == "done" else float(doc.get("progress") or 0))
                 for doc in parts.values())
    return Tally(total, done, min(1.0, spoken / chars), parts)


def aggregate(docs: DocumentStore, job_path: str, generation: int, now: datetime, *, interval_s: float,
              force: bool = False) -> Tally | None:
    """Recount the parts and write the job's aggregate (rate-limited unless ``force``, first audio or
    completion). Returns the tally, or None when the job is not this generation's or is finished."""
    job = docs.get(job_path)
    if job is None or records.generation_of(job) != generation or job.get("status") in records.TERMINAL:
        return None
    counted = tally(docs, job_path, generation, int(job.get("parts_total") or 0))
    first = counted.parts.get(0, {})
    first_audio = first.get("finished_at") if first.get("status") == "done" else None

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
        if doc is None or records.generation_of(doc) != generation or doc.get("status") in records.TERMINAL:
            return None, False
        last = doc.get("aggregated_at")
        due = force or counted.complete or last is None or (now - last).total_seconds() >= interval_s
        new_first = first_audio is not None and doc.get("first_audio_at") is None
        if not (due or new_first) or int(doc.get("parts_done") or 0) > counted.done:
            return None, False
        fields = {"parts_done": counted.done, "progress": round(min(counted.progress, 0.999), 4),
                  "aggregated_at": now, "updated_at": now}
        if new_first:
            fields["first_audio_at"] = first_audio
        return {**doc, **fields}, True

    docs.transact(job_path, fn)
    return counted

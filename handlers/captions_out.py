"""A finished job's timings and captions, from its parts' rendered sample counts.

Called by ``handlers/assemble.py`` after the final audio is written and before ``done``
is recorded. Always writes ``outputs/<job_id>.timings.json``; writes ``.vtt`` / ``.srt``
when the request asked (``captions``). Every object is written generation-fenced, so an
older upload never overwrites a newer one's captions. Returns the job document's fields:
``timings_object``, ``captions`` ({format: object name}) and ``quality`` (the parts'
summaries merged).

The timeline is exact to the sample at 24 kHz: each part's ``segment_samples`` in order,
with each segment's ``pause_before_s`` of silence before it, the same rounding the part
renderer (within a part) and the assembler (at a part boundary, the part's
``pause_before_s``) use. Words that the quality gate heard are moved from the segment's
start to the job's timeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from voicecloning import captions
from voicecloning.errors import Overtaken
from voicecloning.quality import merge_summaries
from voicecloning.routes import output_name
from voicecloning.stores.blobs import BlobStore
from voicecloning.stores.fenced import write_owned

RATE = captions.SAMPLE_RATE
TIMINGS_EXTENSION = "timings.json"
NOT_RECORDED = {"checked": 0, "flagged": 0, "rerendered": 0, "cer_mean": None, "cer_max": None,
                "not_checked_reason": "the part's quality was not recorded"}


def write_captions(
    outputs: BlobStore, job: dict[str, Any], parts: list[dict[str, Any]], generation: int, *,
    renew: Callable[..., None],
) -> dict[str, Any]:
    """Write the job's timings (and captions) and return the job document's fields for them."""
    segments, scores = job_timeline(parts)
    quality = merge_summaries(p.get("quality") or NOT_RECORDED for p in parts)
    duration_s = segments[-1].end_s if segments else 0.0
    document = captions.timings_document(segments, duration_s, {"job_id": job.get("job_id"), "quality": quality})
    for entry, segment, score in zip(document["segments"], segments, scores, strict=True):
        entry.update(_scored(score, segment.start_s))
    owner, job_id = job.get("owner"), str(job.get("job_id"))
    timings = output_name(owner, job_id, TIMINGS_EXTENSION)
    _write(outputs, timings, generation, captions.CONTENT_TYPES["json"], json.dumps(document, ensure_ascii=False),
           job_id, renew)
    label = len({s.voice_id for s in segments}) > 1  # a dialogue: name the speaker of each cue
    written = {}
    for fmt in _requested(job):
        name = output_name(owner, job_id, fmt)
        _write(outputs, name, generation, captions.CONTENT_TYPES[fmt], captions.render(fmt, segments, label),
               job_id, renew)
        written[fmt] = name
    return {"timings_object": timings, "captions": written, "quality": quality}


def job_timeline(parts: list[dict[str, Any]]) -> tuple[list[captions.TimedSegment], list[dict[str, Any] | None]]:
    """Every segment of the job in playing order, and its gate scores (None where not recorded)."""
    flat: list[tuple[str, str, int, int]] = []  # text, voice, samples, silence before
    scores: list[dict[str, Any] | None] = []
    for n, part in enumerate(parts):
        segments, samples = part.get("segments") or [], part.get("segment_samples") or []
        if len(samples) != len(segments):
            raise ValueError(f"part {n} records {len(samples)} segment lengths for {len(segments)} segments")
        part_scores = part.get("segment_scores") or [None] * len(segments)
        for i, (segment, count) in enumerate(zip(segments, samples, strict=True)):
            pause = float(part.get("pause_before_s") or 0.0) if i == 0 else float(segment["pause_before_s"])
            before = round(max(pause, 0.0) * RATE) if flat else 0
            flat.append((str(segment["text"]), str(segment["voice_id"]), int(count), before))
        scores += list(part_scores)
    pieces = [(text, voice, count, flat[k + 1][3] if k + 1 < len(flat) else 0)
              for k, (text, voice, count, _before) in enumerate(flat)]
    return captions.timeline(pieces, RATE), scores


def _scored(score: dict[str, Any] | None, offset_s: float) -> dict[str, Any]:
    if score is None:
        return {"quality": None, "words": []}
    words = [{**w, "start_s": round(offset_s + w["start_s"], 3), "end_s": round(offset_s + w["end_s"], 3)}
             for w in score.get("words") or []]
    return {"quality": {k: score.get(k) for k in ("cer", "flags", "rerenders", "speech_s")}, "words": words}


def _requested(job: dict[str, Any]) -> list[str]:
    """The caption formats the request asked for (the job records a list until it is done)."""
    return [str(f) for f in job.get("captions") or () if str(f) in captions.FORMATS]


def _write(outputs: BlobStore, name: str, generation: int, content_type: str, text: str, job_id: str,
           renew: Callable[..., None]) -> None:
    written = write_owned(outputs, name, generation, content_type, {"job_id": job_id}, data=text.encode("utf-8"),
                          before_write=lambda: renew(strict=True))
    if written is None:
        raise Overtaken(f"a newer upload owns {name}")

"""Render one part of a job: claim it, speak its segments, write its audio, count it.

Exactly-once effect per part: the claim is a transaction on the part document keyed on
the job's generation and the part index, with a lease and attempts. The audio object is
written only while the lease holds and only if no newer upload owns the name; a delivery
that finds this generation's audio already written finishes the part without rendering.
The worker that counts the last part queues the assembly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from handlers.outcome import Outcome, claim_or_outcome, internal_error, record_failure, release_and_raise
from handlers.part_quality import PartReview, recorded_facts
from voicecloning import records
from voicecloning.assembly import PART_FORMAT, PART_RATE, encode_part
from voicecloning.audio.level import level_to_target
from voicecloning.engine.latents import VoiceLatents
from voicecloning.errors import InputError, Overtaken, TransientError, VoiceUnavailable
from voicecloning.generation import GenerationOptions
from voicecloning.logs import fields
from voicecloning.part_records import aggregate, part_path
from voicecloning.parts import Segment, part_seed
from voicecloning.routes import part_name
from voicecloning.settings import Settings
from voicecloning.stores.blobs import BlobStore
from voicecloning.stores.documents import DocumentStore
from voicecloning.stores.fenced import delete_owned, owned, write_owned
from voicecloning.stores.queue import Task, TaskQueue

log = logging.getLogger(__name__)


def render_part(
    task: Task, *, outputs: BlobStore, docs: DocumentStore, tasks: TaskQueue, engine: Any, settings: Settings,
    clock: Callable[[], datetime], worker: str,
) -> Outcome:
    job_path, generation, index = task.body["job"], int(task.body["generation"]), int(task.body["part"])
    path = part_path(job_path, index)
    job = docs.get(job_path)
    if job is None or records.generation_of(job) != generation:
        return Outcome.STALE  # a newer upload replaced the job
    if job.get("status") in records.TERMINAL:
        return Outcome.DUPLICATE
    _load(engine)  # a cold instance loads its model before it holds a lease, not while the lease runs out
    claimed = claim_or_outcome(docs, path, generation, "processing", settings, clock(), extra={"worker": worker})
    if claimed == Outcome.DUPLICATE:
        count_part(docs, tasks, job_path, generation, settings, clock, force=False)  # a lost count or assembly
        return Outcome.DUPLICATE
    if claimed == Outcome.EXHAUSTED:
        reason = (docs.get(path) or {}).get("error") or "it kept failing"
        fail_job(docs, outputs, job_path, generation, f"part {index} could not be rendered: {reason}", clock(),
                 level=logging.ERROR)
        return Outcome.EXHAUSTED
    if isinstance(claimed, Outcome):
        return claimed
    token = claimed.token
    assert token is not None and claimed.doc is not None
    name = part_name(job.get("owner"), str(job.get("job_id")), index, PART_FORMAT)
    try:
        facts = _existing(outputs, name, generation) or _render(
            claimed.doc, job, path, name, generation, index, token, outputs=outputs, docs=docs, engine=engine,
            settings=settings, clock=clock)
        if facts is None:
            return Outcome.STALE  # a newer upload owns the part's name
        done = records.finish(docs, path, generation=generation, token=token, now=clock(), fields={
            "status": "done", "error": None, "lease": None, "progress": 1.0, "finished_at": clock(),
            "output_uri": outputs.uri(name), "output_object": name, **facts,
        })
    except Overtaken:
        log.info("part overtaken: stopped rendering", extra=fields(path=path, status="superseded"))
        return Outcome.STALE
    except InputError as exc:
        record_failure(docs, path, generation, token, str(exc), clock())
        fail_job(docs, outputs, job_path, generation, f"part {index}: {exc}", clock())
        return Outcome.FAILED
    except TransientError as exc:
        release_and_raise(docs, path, generation, token, exc, "queued", clock())
    except Exception as exc:  # noqa: BLE001 -- a bug: fail fast with the reason, never retry it blindly
        log.exception("internal error while rendering a part", extra=fields(path=path))
        record_failure(docs, path, generation, token, internal_error(exc), clock())
        fail_job(docs, outputs, job_path, generation, internal_error(exc), clock(), level=logging.ERROR)
        return Outcome.FAILED
    if not done:
        return Outcome.STALE
    log.info("part done", extra=fields(path=path, duration_s=facts["duration_s"], worker=worker))
    count_part(docs, tasks, job_path, generation, settings, clock, force=index == 0)
    return Outcome.DONE


def _load(engine: Any) -> None:
    load = getattr(engine, "model", None)
    if callable(load):
        load()


def count_part(
    docs: DocumentStore, tasks: TaskQueue, job_path: str, generation: int, settings: Settings,
    clock: Callable[[], datetime], *, force: bool,
) -> None:
    """Recount the job's parts; the worker that sees them all done queues the assembly."""
    counted = aggregate(docs, job_path, generation, clock(), interval_s=settings.parts.aggregate_interval_seconds,
                        force=force)
    if counted is not None and counted.complete:
        tasks.publish([Task("assemble", {"job": job_path, "generation": str(generation)})])


def fail_job(docs: DocumentStore, outputs: BlobStore, job_path: str, generation: int, reason: str,
             now: datetime, *, level: int = logging.WARNING) -> None:
    """A part failed for good: the job fails with its reason, and the parts it wrote go."""
    record_failure(docs, job_path, generation, None, reason, now, level=level)
    for _key, doc in docs.children(f"{job_path}/parts"):
        if records.generation_of(doc) == generation and doc.get("output_object"):
            delete_owned(outputs, str(doc["output_object"]), generation)


def _existing(outputs: BlobStore, name: str, generation: int) -> dict[str, Any] | None:
    """This generation's audio of the part, already written by an earlier delivery."""
    info = outputs.stat(name)
    if info is None or not owned(info, generation) or "samples" not in info.metadata:
        return None
    samples = int(info.metadata["samples"])
    segment_samples = [int(n) for n in info.metadata.get("segment_samples", "").split(",") if n]
    return {"samples": samples, "duration_s": round(samples / PART_RATE, 3), "segment_samples": segment_samples,
            **recorded_facts(info.metadata)}


def _render(
    part: dict[str, Any], job: dict[str, Any], path: str, name: str, generation: int, index: int, token: str, *,
    outputs: BlobStore, docs: DocumentStore, engine: Any, settings: Settings, clock: Callable[[], datetime],
) -> dict[str, Any] | None:
    segments = [Segment.from_dict(s) for s in part["segments"]]
    latents = {vid: _latents(job, vid, outputs, docs) for vid in dict.fromkeys(s.voice_id for s in segments)}
    options = GenerationOptions(**(job.get("settings") or {}))
    seed = part_seed(int(job.get("seed") or 0), index)
    keep = _Keeper(docs, path, generation, token, settings, clock, len(segments))
    review = PartReview(settings.quality)
    audio: list[np.ndarray] = []
    for run, (voice_id, language, texts) in enumerate(_runs(segments)):
        run_options = replace(options, seed=seed if run == 0 else part_seed(seed, run))
        rendered = engine.render(latents[voice_id], texts, language, run_options, keep.segment)
        audio += review.run(rendered, texts, language, engine=engine, latents=latents[voice_id],
                            options=run_options, heartbeat=keep.take)
    audio = level_to_target(audio)
    pieces: list[np.ndarray] = []
    for n, (segment, wav) in enumerate(zip(segments, audio, strict=True)):
        if n:
            pieces.append(np.zeros(round(segment.pause_before_s * PART_RATE), dtype=np.float32))
        pieces.append(wav)
    joined = np.concatenate(pieces)
    segment_samples = [len(w) for w in audio]
    metadata = {"job_id": str(job.get("job_id")), "part": str(index), "samples": str(len(joined)),
                "segment_samples": ",".join(map(str, segment_samples)),
                "model_name": engine.manifest.model_name, "license": engine.manifest.license, **review.metadata()}
    written = write_owned(outputs, name, generation, "audio/wav", metadata, data=encode_part(joined),
                          before_write=keep.check)
    if written is None:
        return None
    return {"samples": len(joined), "duration_s": round(len(joined) / PART_RATE, 3), "segment_samples": segment_samples,
            **review.facts()}


def _runs(segments: list[Segment]) -> list[tuple[str, str, list[str]]]:
    """Consecutive segments in one voice and language: one engine call each."""
    runs: list[tuple[str, str, list[str]]] = []
    for s in segments:
        if runs and runs[-1][0] == s.voice_id and runs[-1][1] == s.language:
            runs[-1][2].append(s.text)
        else:
            runs.append((s.voice_id, s.language, [s.text]))
    return runs


def _latents(job: dict[str, Any], voice_id: str, outputs: BlobStore, docs: DocumentStore) -> VoiceLatents:
    """The latents pinned when the job was planned; if a re-enrollment removed them since, the voice's current ones."""
    pinned = (job.get("voices") or {}).get(voice_id)
    data = outputs.read(pinned) if pinned else None
    if data is None:
        _path, doc = records.find_voice(docs, job.get("owner"), voice_id)
        current = (doc or {}).get("latents_object") if (doc or {}).get("status") == "ready" else None
        data = outputs.read(current) if current else None
    if data is None:
        raise VoiceUnavailable(f"the stored data of voice '{voice_id}' is missing; upload its reference clip again.")
    return VoiceLatents.from_bytes(data)


class _Keeper:
    """After each segment: renew the lease and report progress in one guarded write, at most once per
    interval (and well before the lease runs out). If the run is no longer ours, stop (``Overtaken``).
    A failed write is best-effort: rendering goes on, and the finish decides."""

    def __init__(self, docs: DocumentStore, path: str, generation: int, token: str, settings: Settings,
                 clock: Callable[[], datetime], total: int) -> None:
        self.docs, self.path, self.generation, self.token = docs, path, generation, token
        self.clock, self.total, self.done = clock, max(1, total), 0
        self.lease = settings.reliability.lease_seconds
        self.interval = min(settings.reliability.progress_interval_seconds, self.lease / 3)
        self.last = time.monotonic()

    def segment(self, _finished: int, _count: int) -> None:
        self.done += 1
        if time.monotonic() - self.last >= self.interval and self.done < self.total:
            self._renew({"progress": round(self.done / self.total, 4)})

    def take(self) -> None:
        """After a quality re-render: renew the lease if it is due (no progress to report)."""
        if time.monotonic() - self.last >= self.interval:
            self._renew({})

    def check(self) -> None:
        """Right before the audio is written: still ours?"""
        self._renew({}, strict=True)

    def _renew(self, report: dict[str, Any], strict: bool = False) -> None:
        self.last = time.monotonic()
        try:
            ours = records.renew(self.docs, self.path, generation=self.generation, token=self.token,
                                 now=self.clock(), lease_seconds=self.lease, fields=report)
            # A newer upload opens the job before it plans new parts: it supersedes this run already.
            job = self.docs.get(self.path.rsplit("/parts/", 1)[0]) if ours else None
            ours = ours and job is not None and records.generation_of(job) == self.generation
        except TransientError:
            if strict:
                raise
            log.warning("progress not recorded (best effort)", extra=fields(path=self.path))
            return
        if not ours:
            raise Overtaken(f"{self.path} is no longer ours")

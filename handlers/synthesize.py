"""Start a synthesis job: parse the request, wait for its voices, plan its parts, hand them off.

The parts are rendered by ``handlers/render_part.py`` and joined by ``handlers/assemble.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from handlers.outcome import Outcome, claim_or_outcome, internal_error, record_failure, release_and_raise
from voicecloning import records
from voicecloning.errors import (
    ConfigurationError,
    InputError,
    InvalidRequest,
    TransientError,
    VoiceNotReady,
    VoiceUnavailable,
)
from voicecloning.events import StorageEvent
from voicecloning.logs import fields
from voicecloning.part_records import open_part, tally
from voicecloning.parts import PAUSE_BETWEEN_ITEMS_S, Piece, job_seed, plan_parts, segments_of
from voicecloning.request import SynthesisRequest, parse_request
from voicecloning.routes import Route
from voicecloning.settings import Settings
from voicecloning.stores.blobs import BlobStore
from voicecloning.stores.documents import DocumentStore
from voicecloning.stores.queue import Task, TaskQueue

log = logging.getLogger(__name__)


def synthesize_job(
    event: StorageEvent,
    route: Route,
    *,
    inputs: BlobStore,
    docs: DocumentStore,
    tasks: TaskQueue,
    engine: Any,
    settings: Settings,
    clock: Callable[[], datetime],
) -> Outcome:
    """Open the job, check the request, plan its parts and hand each to the task queue."""
    now = clock()
    path = route.doc_path
    source = {"bucket": event.bucket, "name": event.name, "generation": str(event.generation)}
    initial = {"status": "queued", "job_id": route.id, "owner": route.owner, "source": source, "progress": 0.0,
               "output_uri": None, "model_name": None, "model_version": None, "parts_total": None,
               "parts_done": 0, "first_audio_at": None}
    opened, current = records.open_record(docs, path, generation=event.generation, initial=initial, now=now)
    if opened == "stale":
        return Outcome.STALE
    if route.problem:
        return record_failure(docs, path, event.generation, None, route.problem, now)
    if current.get("status") in records.TERMINAL:
        return Outcome.DUPLICATE
    if current.get("planned"):
        return _resume(docs, tasks, path, event.generation, current, settings, clock)
    try:
        request, voices = _prepare(event, route, opened, current, inputs=inputs, docs=docs, engine=engine,
                                   settings=settings, clock=clock)
    except InputError as exc:
        return record_failure(docs, path, event.generation, None, str(exc), clock())
    except VoiceNotReady:
        raise  # bounded by voice_wait_seconds, not by attempts
    except (TransientError, ConfigurationError) as exc:
        return _count_or_raise(docs, path, event.generation, exc, settings, clock)
    except Exception as exc:  # noqa: BLE001 -- a bug: fail fast with the reason, never retry it blindly
        log.exception("internal error before the claim", extra=fields(path=path))
        return record_failure(docs, path, event.generation, None, internal_error(exc), clock())
    claimed = claim_or_outcome(docs, path, event.generation, "processing", settings, clock())
    if isinstance(claimed, Outcome):
        return claimed
    token = claimed.token
    assert token is not None
    try:
        parts = plan_parts(segments_of(pieces(request), engine.char_limit),
                           part_seconds=settings.parts.part_audio_seconds,
                           first_part_seconds=settings.parts.first_part_audio_seconds)
        pinned = {vid: doc.get("latents_object") for vid, doc in voices.items()}
        seed = job_seed(request.options.seed, path, event.generation)
        if not records.renew(docs, path, generation=event.generation, token=token, now=clock(),
                             lease_seconds=settings.reliability.lease_seconds,
                             fields={"parts_total": len(parts), "parts_done": 0, "voices": pinned, "seed": seed}):
            return Outcome.STALE
        job = {"job_id": route.id, "owner": route.owner}
        for part in parts:  # each part is queued as soon as its document exists: part 0 starts at once
            if open_part(docs, path, event.generation, part, job, clock()) == "stale":
                return Outcome.STALE
            tasks.publish([render_task(path, event.generation, part.index)])
        planned = records.finish(docs, path, generation=event.generation, token=token, now=clock(),
                                 fields={"planned": True, "lease": None, "status": "processing"})
    except InputError as exc:
        return record_failure(docs, path, event.generation, token, str(exc), clock())
    except TransientError as exc:
        release_and_raise(docs, path, event.generation, token, exc, "queued", clock())
    except Exception as exc:  # noqa: BLE001 -- a bug: fail fast with the reason, never retry it blindly
        log.exception("internal error while planning", extra=fields(path=path))
        return record_failure(docs, path, event.generation, token, internal_error(exc), clock())
    log.info("job planned", extra=fields(parts=len(parts), characters=request.characters))
    return Outcome.PLANNED if planned else Outcome.STALE


def pieces(request: SynthesisRequest) -> list[Piece]:
    """The request's text as pieces in one voice each, with the designed pause before each."""
    return [Piece(item.text, item.voice_id, item.language, PAUSE_BETWEEN_ITEMS_S if n else 0.0)
            for n, item in enumerate(request.items)]


def render_task(job_path: str, generation: int, index: int) -> Task:
    return Task("render", {"job": job_path, "generation": str(generation), "part": index})


def _resume(
    docs: DocumentStore, tasks: TaskQueue, path: str, generation: int, job: dict[str, Any], settings: Settings,
    clock: Callable[[], datetime],
) -> Outcome:
    """A redelivery of a planned job: queue again the parts nobody holds (a lost task), then acknowledge."""
    counted = tally(docs, path, generation, int(job.get("parts_total") or 0))
    now = clock()
    if counted.complete:
        tasks.publish([Task("assemble", {"job": path, "generation": str(generation)})])
        return Outcome.DUPLICATE
    idle = [i for i in range(counted.total) if _idle(counted.parts.get(i), now)]
    if idle:
        tasks.publish([render_task(path, generation, i) for i in idle])
    return Outcome.DUPLICATE


def _idle(part: dict[str, Any] | None, now: datetime) -> bool:
    if part is None or part.get("status") == "done":
        return False
    expires = (part.get("lease") or {}).get("expires_at")
    return expires is None or expires <= now


def _prepare(
    event: StorageEvent, route: Route, opened: str, current: dict[str, Any], *, inputs: BlobStore,
    docs: DocumentStore, engine: Any, settings: Settings, clock: Callable[[], datetime],
) -> tuple[SynthesisRequest, dict[str, dict[str, Any]]]:
    """Read and validate the request, record what it asks for, and wait for its voices."""
    request = _read_request(event, inputs, settings)
    for language in request.languages:
        engine.check_language(language)
    if opened == "new":
        summary = {**request.summary(), "model_name": engine.manifest.model_name,
                   "model_version": engine.manifest.model_version}
        records.annotate(docs, route.doc_path, generation=event.generation, fields=summary, now=clock())
    created = current.get("created_at") or clock()
    return request, _wait_for_voices(request, route, docs, inputs, settings, created=created, clock=clock)


def _count_or_raise(
    docs: DocumentStore, path: str, generation: int, exc: Exception, settings: Settings,
    clock: Callable[[], datetime],
) -> Outcome:
    """A transient failure before the claim still counts towards the attempts (poison protection)."""
    try:
        exhausted = records.count_failure(docs, path, generation=generation, error=str(exc)[:500],
                                          max_attempts=settings.reliability.max_attempts, now=clock())
    except TransientError:
        exhausted = False
    if exhausted:
        log.error("job failed", extra=fields(status="failed", path=path, reason=str(exc)[:500]))
        return Outcome.EXHAUSTED
    log.error("will retry", exc_info=exc, extra=fields(path=path, reason=str(exc)[:500]))
    raise exc


def _read_request(event: StorageEvent, inputs: BlobStore, settings: Settings) -> SynthesisRequest:
    limit = settings.limits.max_request_bytes
    if event.size > limit:
        raise InvalidRequest(f"the request file is {event.size:,} bytes; the limit is {limit:,} bytes.")
    data = inputs.read(event.name, event.generation)
    if data is None:
        raise InvalidRequest("the request file was replaced or deleted before it was read; upload it again.")
    return parse_request(data, settings.limits)


def _wait_for_voices(
    request: SynthesisRequest, route: Route, docs: DocumentStore, inputs: BlobStore, settings: Settings,
    *, created: datetime, clock: Callable[[], datetime],
) -> dict[str, dict[str, Any]]:
    """Each voice's ready document; waits a bounded time for voices still enrolling."""
    rel = settings.reliability
    poll_until = time.monotonic() + rel.voice_poll_seconds
    while True:
        pending: list[str] = []
        ready: dict[str, dict[str, Any]] = {}
        for voice_id in request.voice_ids:
            _path, doc = records.find_voice(docs, route.owner, voice_id)
            if doc is None:
                if not _clip_uploaded(route, voice_id, inputs):
                    where = f"{route.prefix}voices/{voice_id}.wav"
                    raise VoiceUnavailable(f"voice '{voice_id}' does not exist; upload a reference clip to {where} first.")
                pending.append(voice_id)
            elif doc.get("status") == "failed":
                raise VoiceUnavailable(f"voice '{voice_id}' could not be enrolled: {doc.get('error')}")
            elif doc.get("status") != "ready":
                pending.append(voice_id)
            else:
                ready[voice_id] = doc
        if not pending:
            return ready
        waited = (clock() - created).total_seconds()
        if waited > rel.voice_wait_seconds:
            raise VoiceUnavailable(
                f"voice '{pending[0]}' was still being enrolled after {waited:.0f} s; try the request again later."
            )
        if time.monotonic() >= poll_until:
            raise VoiceNotReady(f"voice '{pending[0]}' is still being enrolled")
        time.sleep(min(1.0, max(0.05, poll_until - time.monotonic())))


def _clip_uploaded(route: Route, voice_id: str, inputs: BlobStore) -> bool:
    """A clip for the voice is in the bucket (its enrollment event may not have arrived yet)."""
    prefix = f"{route.prefix}voices/{voice_id}"
    return any(
        info.name.startswith(prefix + ".") and not info.name.endswith(".consent.json")
        or info.name.startswith(prefix + "/")
        for info in inputs.list(prefix)
    )

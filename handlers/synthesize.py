"""Start a synthesis job: parse the request, wait for its voices, plan its parts, hand them off.

``plan_job`` is the one path from request bytes to a planned job: ``synthesize_job``
(an uploaded ``requests/<job_id>.json``) and ``handlers/batch.py`` (one line of a
batch manifest) both call it. The parts are rendered by ``handlers/render_part.py``
and joined by ``handlers/assemble.py``; ``handlers/terminal.py`` runs once it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.outcome import Outcome, claim_or_outcome, internal_error, record_failure, release_and_raise
from handlers.prepare import Prepared, prepare
from voicecloning import records
from voicecloning.errors import ConfigurationError, InputError, InvalidRequest, JobBusy, TransientError, VoiceNotReady
from voicecloning.events import StorageEvent
from voicecloning.logs import fields
from voicecloning.part_records import open_part, tally
from voicecloning.parts import job_seed, plan_parts
from voicecloning.routes import Route
from voicecloning.settings import Settings
from voicecloning.stores.blobs import BlobStore
from voicecloning.stores.documents import DocumentStore
from voicecloning.stores.queue import Task, TaskQueue

log = logging.getLogger(__name__)
PUBLISH_BATCH = 50  # part tasks per publish call while a book is planned


@dataclass(frozen=True)
class JobSpec:
    """Which job a request makes: its route (owner, id), the generation that orders it, its source."""

    route: Route
    generation: int
    source: dict[str, Any]  # recorded on the job: bucket, name, generation (and a batch line's number)
    extra: dict[str, Any] = field(default_factory=dict)  # more initial fields (a batch job's batch_id)


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
    """An uploaded request: plan the job from the object's bytes (read only if there is work to do)."""
    source = {"bucket": event.bucket, "name": event.name, "generation": str(event.generation)}
    return plan_job(JobSpec(route, event.generation, source), lambda: _read_request(event, inputs, settings),
                    inputs=inputs, docs=docs, tasks=tasks, engine=engine, settings=settings, clock=clock)


def plan_job(
    spec: JobSpec,
    read: Callable[[], bytes],
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
    route, generation = spec.route, spec.generation
    path = route.doc_path
    initial = {"status": "queued", "job_id": route.id, "owner": route.owner, "source": spec.source, "progress": 0.0,
               "output_uri": None, "model_name": None, "model_version": None, "parts_total": None,
               "parts_done": 0, "first_audio_at": None, **spec.extra}
    opened, current = records.open_record(docs, path, generation=generation, initial=initial, now=now)
    if opened == "stale":
        return Outcome.STALE
    if route.problem:
        return record_failure(docs, path, generation, None, route.problem, now)
    if current.get("status") in records.TERMINAL:
        return Outcome.DUPLICATE
    if current.get("planned"):
        return _resume(docs, tasks, path, generation, current, settings, clock)
    try:
        prepared = prepare(read(), route, generation, opened, current, inputs=inputs, docs=docs, engine=engine,
                           settings=settings, clock=clock)
    except InputError as exc:
        return record_failure(docs, path, generation, None, str(exc), clock())
    except VoiceNotReady:
        raise  # bounded by voice_wait_seconds, not by attempts
    except (TransientError, ConfigurationError) as exc:
        return _count_or_raise(docs, path, generation, exc, settings, clock)
    except Exception as exc:  # noqa: BLE001 -- a bug: fail fast with the reason, never retry it blindly
        log.exception("internal error before the claim", extra=fields(path=path))
        return record_failure(docs, path, generation, None, internal_error(exc), clock())
    claimed = claim_or_outcome(docs, path, generation, "processing", settings, clock(), done_if="planned")
    if claimed == Outcome.DUPLICATE:  # planned by a concurrent delivery since this one read the job
        job = docs.get(path) or {}
        return _resume(docs, tasks, path, generation, job, settings, clock) if job.get("planned") else claimed
    if isinstance(claimed, Outcome):
        return claimed
    token = claimed.token
    assert token is not None
    try:
        planned = _plan(prepared, spec, token, docs=docs, tasks=tasks, settings=settings, clock=clock)
    except InputError as exc:
        return record_failure(docs, path, generation, token, str(exc), clock())
    except TransientError as exc:
        release_and_raise(docs, path, generation, token, exc, "queued", clock())
    except Exception as exc:  # noqa: BLE001 -- a bug: fail fast with the reason, never retry it blindly
        log.exception("internal error while planning", extra=fields(path=path))
        return record_failure(docs, path, generation, token, internal_error(exc), clock())
    if planned is None:
        return Outcome.STALE
    log.info("job planned", extra=fields(parts=planned, characters=prepared.chars))
    return Outcome.PLANNED


def _plan(prepared: Prepared, spec: JobSpec, token: str, *, docs: DocumentStore, tasks: TaskQueue,
          settings: Settings, clock: Callable[[], datetime]) -> int | None:
    """Cut the claimed job into parts, open and queue each; the number of parts, or None if overtaken."""
    path, generation = spec.route.doc_path, spec.generation
    parts = plan_parts(prepared.segments, part_seconds=settings.parts.part_audio_seconds,
                       first_part_seconds=settings.parts.first_part_audio_seconds)
    pinned = {vid: doc.get("latents_object") for vid, doc in prepared.voices.items()}
    seed = job_seed(prepared.request.options.seed, path, generation)
    if not records.renew(docs, path, generation=generation, token=token, now=clock(),
                         lease_seconds=settings.reliability.lease_seconds,
                         fields={"parts_total": len(parts), "parts_done": 0, "voices": pinned, "seed": seed,
                                 "lexicons_used": prepared.lexicons_used}):
        return None
    job = {"job_id": spec.route.id, "owner": spec.route.owner}
    batch: list[Task] = []
    for part in parts:  # queued as soon as its document exists: part 0 at once, then in batches
        if open_part(docs, path, generation, part, job, clock()) == "stale":
            return None
        batch.append(render_task(path, generation, part.index))
        if part.index == 0 or len(batch) >= PUBLISH_BATCH:
            tasks.publish(batch)
            batch = []
    if batch:
        tasks.publish(batch)
    planned = records.finish(docs, path, generation=generation, token=token, now=clock(),
                             fields={"planned": True, "lease": None, "status": "processing"})
    return len(parts) if planned else None


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
    durable = getattr(tasks, "durable", True)
    lost_after = settings.reliability.lease_seconds
    idle = [i for i in range(counted.total) if _idle(counted.parts.get(i), now, durable, lost_after)]
    if idle:
        tasks.publish([render_task(path, generation, i) for i in idle])
    elif not durable:
        # Parts run in this very delivery (no task topic): a part held by a worker that may have died
        # is only ever retried through this event, so ask for a redelivery after its lease.
        raise JobBusy(f"{path}: a part is held by another worker; retry after its lease")
    return Outcome.DUPLICATE


def _idle(part: dict[str, Any] | None, now: datetime, durable: bool, lost_after_s: float) -> bool:
    """Not done and nobody holds it. With a durable queue its task is only taken for lost once the part
    has waited a lease's length (a duplicate delivery must not double the queue); inline, nothing else
    carries it."""
    if part is None or part.get("status") in ("done", "failed"):
        return False
    expires = (part.get("lease") or {}).get("expires_at")
    if expires is not None and expires > now:
        return False
    updated = part.get("updated_at")
    return not durable or updated is None or (now - updated).total_seconds() >= lost_after_s


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


def _read_request(event: StorageEvent, inputs: BlobStore, settings: Settings) -> bytes:
    limit = settings.limits.max_request_bytes
    if event.size > limit:
        raise InvalidRequest(f"the request file is {event.size:,} bytes; the limit is {limit:,} bytes.")
    data = inputs.read(event.name, event.generation)
    if data is None:
        raise InvalidRequest("the request file was replaced or deleted before it was read; upload it again.")
    return data

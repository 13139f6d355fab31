"""Batch manifests: ``batches/<batch_id>.jsonl`` becomes one job per line, through the same job path.

``handle_batch`` (the manifest's storage event) checks the manifest as a whole, opens
the batch document (``voicecloning/batch.py``) and queues one ``plan`` task per line.
``plan_line`` (that task) reads the manifest again, by the same generation, and hands
its line to ``handlers.synthesize.plan_job`` -- exactly what an uploaded request goes
through. A bad line fails its own job with its reason (the same ``plan_job`` path,
with the reason as the route's problem). The jobs carry the manifest's generation, so
a re-uploaded manifest supersedes the old batch and its jobs like any other object;
its tasks find a newer batch and change nothing. The batch's end is followed up (its
event) by ``handlers/terminal.py``.

A manifest that cannot be used as a whole (too big, not UTF-8, empty, too many lines,
a bad name) fails the batch: ``status: "failed"`` with the reason, and no jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from handlers.outcome import Outcome
from handlers.synthesize import JobSpec, plan_job
from voicecloning import batch, records
from voicecloning.errors import InvalidRequest
from voicecloning.events import StorageEvent
from voicecloning.logs import fields
from voicecloning.routes import Route, route
from voicecloning.settings import Settings
from voicecloning.stores.blobs import BlobStore
from voicecloning.stores.documents import DocumentStore
from voicecloning.stores.queue import Task, TaskQueue

log = logging.getLogger(__name__)


def handle_batch(
    event: StorageEvent, target: Route, *, inputs: BlobStore, docs: DocumentStore, tasks: TaskQueue,
    settings: Settings, clock: Callable[[], datetime],
) -> Outcome:
    """Open the batch of this manifest and queue a ``plan`` task for each line not yet ended."""
    path, generation = target.doc_path, event.generation
    limits = batch.ManifestLimits.from_settings(settings)
    try:
        if target.problem:
            raise InvalidRequest(target.problem)
        if event.size > limits.max_bytes:
            raise InvalidRequest(f"the manifest is {event.size:,} bytes; the limit is {limits.max_bytes:,} bytes. "
                                 "Split it into several batches.")
        data = inputs.read(event.name, generation)
        if data is None:
            return Outcome.STALE  # replaced before it was read: the newer upload's event handles it
        lines = batch.parse_manifest(data, target.id, limits)
    except InvalidRequest as exc:
        return _fail_batch(docs, target, generation, str(exc), clock())
    opened, doc = batch.open_batch(docs, path, generation, lines, clock(), owner=target.owner, batch_id=target.id)
    if opened == "stale":
        return Outcome.STALE
    jobs = doc.get("jobs") or {}
    todo = [line for line in lines if opened == "new" or line.error or jobs.get(line.job_id) == "pending"]
    body = {"batch": path, "manifest": event.name, "bucket": event.bucket, "generation": str(generation)}
    tasks.publish([Task("plan", {**body, "line": line.n, "job": _job_route(target, line.job_id).doc_path})
                   for line in todo])
    log.info("batch opened", extra=fields(path=path, lines=len(lines), queued=len(todo), opened=opened))
    return Outcome.PLANNED


def plan_line(
    task: Task, *, inputs: BlobStore, docs: DocumentStore, tasks: TaskQueue, engine: Any, settings: Settings,
    clock: Callable[[], datetime],
) -> Outcome:
    """Plan the job of one manifest line (or fail it with the line's reason)."""
    name, generation, n = str(task.body["manifest"]), int(task.body["generation"]), int(task.body["line"])
    target = route(name)
    current = docs.get(str(task.body["batch"]))
    if target is None or current is None or records.generation_of(current) != generation:
        return Outcome.STALE  # a newer manifest replaced this batch
    data = inputs.read(name, generation)
    if data is None:
        return Outcome.STALE
    try:
        lines = batch.parse_manifest(data, target.id, batch.ManifestLimits.from_settings(settings))
    except InvalidRequest:
        return Outcome.IGNORED  # the batch itself failed; it has no jobs
    line = next((line for line in lines if line.n == n), None)
    if line is None:
        return Outcome.IGNORED
    job_route = _job_route(target, line.job_id, problem=line.error)
    source = {"bucket": task.body.get("bucket"), "name": name, "generation": str(generation), "line": n}
    spec = JobSpec(job_route, generation, source, extra={"batch_id": target.id})
    outcome = plan_job(spec, lambda: line.body or b"", inputs=inputs, docs=docs, tasks=tasks, engine=engine,
                       settings=settings, clock=clock)
    if outcome == Outcome.STALE and records.generation_of(docs.get(job_route.doc_path)) > generation:
        # The job id belongs to a newer upload: this line's job will never end in this batch.
        batch.job_finished(docs, target.doc_path, generation, line.job_id, "failed", clock())
    return outcome


def _job_route(target: Route, job_id: str, problem: str | None = None) -> Route:
    return Route("request", target.owner, job_id, "json", problem=problem)


def _fail_batch(docs: DocumentStore, target: Route, generation: int, reason: str, now: datetime) -> Outcome:
    """The manifest as a whole is unusable: the batch is ``failed`` with the reason, with no jobs."""

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
        if doc is not None and records.generation_of(doc) >= generation:
            return None, False
        return {"batch_id": target.id, "owner": target.owner, "source": {"generation": str(generation)},
                "status": "failed", "error": reason[:1].upper() + reason[1:], "total": 0, "done": 0, "failed": 0, "jobs": {},
                "created_at": now, "updated_at": now, "finished_at": now}, True

    recorded = docs.transact(target.doc_path, fn)
    log.warning("batch failed", extra=fields(status="failed", path=target.doc_path, reason=reason, recorded=recorded))
    return Outcome.FAILED if recorded else Outcome.DUPLICATE

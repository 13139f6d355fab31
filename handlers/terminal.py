"""What follows the end of a job, voice or batch: usage, retention, its batch, its event, its callback.

``after_delivery`` runs at the end of every delivery that concerns a job, voice or
batch (``handlers/dispatch.py``, ``handlers/tasks.py``), and acts when it finds the
document terminal at the delivery's generation -- whichever step made it so: the
assembly (``done``), a failed part, a bad request, attempts used up, a too-old event.
A later delivery that finds it so (a redelivery, a late task) runs it again.

``job_terminal`` does, in this order, each step idempotent:

1. ``done`` only: ``usage: {chars, audio_s, compute_s}`` on the job (chars spoken and
   compute seconds summed over its parts) and the owner's daily counters
   (``usage.record`` keyed ``<path>@<generation>``, so a repeat counts once); when the
   readable total was not refreshed, a ``usage`` task refreshes it once it is due;
2. ``expire_at`` (``VOICECLONING_RETENTION_DAYS``) on the job and its part documents,
   and, for ``"retain_text": false``, their text removed (``retention.scrub_text``);
3. its batch (``batch_id``): the job counted (``batch.job_finished``); a batch that is
   ``done`` publishes its own event;
4. the job's event (``notify.terminal_event``);
5. a ``callback`` task when the job has a ``callback_url`` not yet settled.

Failures never change the job's own outcome, which is recorded before any of this.
A ``TransientError`` (the document store or Pub/Sub unavailable) is raised: the
delivery is redelivered and, finding the job terminal, runs every step again, which
is safe -- counters are keyed, event ids are stable (the embedded notifier drops
repeats; subscribers drop them by ``event_id``), a settled callback is not queued
again. A bug in one step is logged and the other steps still run; it is not retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from voicecloning import batch, notify, records, retention, usage
from voicecloning.errors import TransientError
from voicecloning.logs import fields
from voicecloning.notify import Notifier
from voicecloning.part_records import tally
from voicecloning.services import Services
from voicecloning.settings import Settings
from voicecloning.stores.documents import DocumentStore
from voicecloning.stores.queue import Task, TaskQueue

log = logging.getLogger(__name__)
JOB_ENDS = ("done", "failed")
SETTLED_CALLBACKS = ("delivered", "failed")


def after_delivery(services: Services, kind: str, path: str, generation: int) -> None:
    """If the ``kind`` ("job" | "voice" | "batch") document at ``path`` has ended at ``generation``, follow up."""
    doc = services.docs.get(path)
    if doc is None or records.generation_of(doc) != generation:
        return
    status = doc.get("status")
    if kind == "job" and status in JOB_ENDS:
        job_terminal(services.docs, services.tasks, services.notifier, services.settings, path, generation, doc,
                     services.clock())
    elif kind == "voice" and status in ("ready", "failed") or kind == "batch" and status in JOB_ENDS:
        publish(services.notifier, kind, path, doc)


def job_terminal(
    docs: DocumentStore, tasks: TaskQueue, notifier: Notifier, settings: Settings, path: str, generation: int,
    doc: dict[str, Any], now: datetime,
) -> None:
    """Every follow-up of a job that ended (module docstring); ``doc`` is the job as it ended."""
    if doc.get("status") == "done" and doc.get("usage") is None:
        doc = _step("usage", path, doc, lambda: _usage(docs, tasks, path, generation, doc, now))
    doc = _step("retention", path, doc, lambda: _retention(docs, path, generation, doc, settings, now))
    if doc.get("batch_id"):
        _step("batch", path, doc, lambda: _batch(docs, notifier, generation, doc, now))
    _step("event", path, doc, lambda: publish(notifier, "job", path, doc))
    if doc.get("callback_url") and (doc.get("callback") or {}).get("status") not in SETTLED_CALLBACKS:
        _step("callback", path, doc,
              lambda: tasks.publish([Task("callback", {"job": path, "generation": str(generation)})]))


def publish(notifier: Notifier, kind: str, path: str, doc: dict[str, Any]) -> dict[str, Any]:
    data, attributes = notify.terminal_event(kind, path, doc)
    notifier.publish(data, attributes)
    log.info("event published", extra=fields(path=path, kind=kind, status=attributes["status"],
                                             event_id=attributes["event_id"]))
    return doc


def refresh_usage(docs: DocumentStore, owner: str | None, day: str, clock: Callable[[], datetime]) -> bool:
    """The ``usage`` task: once the owner's readable total may be written again (at most one write per
    ``usage.ROLLUP_INTERVAL_S``), rewrite it from the shards. Waits at most that long."""
    current = docs.get(usage.total_path(owner, day)) or {}
    updated = current.get("updated_at")
    if isinstance(updated, datetime):
        time.sleep(min(usage.ROLLUP_INTERVAL_S, max(0.0, usage.ROLLUP_INTERVAL_S - (clock() - updated).total_seconds())))
    return usage.refresh(docs, owner, day, clock(), min_age_s=usage.ROLLUP_INTERVAL_S)


def _step(name: str, path: str, doc: dict[str, Any], fn: Callable[[], Any]) -> dict[str, Any]:
    """Run one follow-up; a bug is logged and skipped (TransientError propagates: redelivery retries all)."""
    try:
        result = fn()
    except TransientError:
        raise
    except Exception:  # noqa: BLE001 -- a bug in one follow-up must not stop the others
        log.exception("follow-up of a finished job failed", extra=fields(path=path, step=name))
        return doc
    return result if isinstance(result, dict) else doc


def _update(docs: DocumentStore, path: str, generation: int, change: Callable[[dict[str, Any]], dict[str, Any]],
            now: datetime) -> dict[str, Any] | None:
    """Apply ``change`` to the ended document of this generation; the new document (None if not ours)."""

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if doc is None or records.generation_of(doc) != generation or doc.get("status") not in JOB_ENDS:
            return None, None
        changed = change(doc)
        if changed == doc:
            return None, doc
        updated = {**changed, "updated_at": now}
        return updated, updated

    return docs.transact(path, fn)


def _usage(docs: DocumentStore, tasks: TaskQueue, path: str, generation: int, doc: dict[str, Any],
           now: datetime) -> dict[str, Any] | None:
    parts = tally(docs, path, generation, int(doc.get("parts_total") or 0)).parts.values()
    chars = sum(int(p.get("chars") or 0) for p in parts)
    compute = sum((p["finished_at"] - p["started_at"]).total_seconds() for p in parts
                  if isinstance(p.get("finished_at"), datetime) and isinstance(p.get("started_at"), datetime))
    audio = float(doc.get("duration_s") or 0.0)
    finished = doc.get("finished_at") if isinstance(doc.get("finished_at"), datetime) else now
    day = usage.day_of(finished)
    owner = doc.get("owner")
    if not usage.record(docs, owner, day, chars, audio, compute, key=f"{path}@{generation}", now=now):
        tasks.publish([Task("usage", {"owner": owner, "day": day})])
    job_usage = usage.job_usage(chars, audio, compute)
    return _update(docs, path, generation, lambda d: {**d, "usage": d.get("usage") or job_usage}, now)


def _retention(docs: DocumentStore, path: str, generation: int, doc: dict[str, Any], settings: Settings,
               now: datetime) -> dict[str, Any] | None:
    finished = doc.get("finished_at") if isinstance(doc.get("finished_at"), datetime) else now
    expire = retention.expire_at(finished, settings.product.retention_days)
    scrub = doc.get("retain_text") is False
    if expire is None and not scrub:
        return doc

    def change(d: dict[str, Any]) -> dict[str, Any]:
        changed = {**d, retention.TTL_FIELD: d.get(retention.TTL_FIELD) or expire} if expire else d
        return retention.scrub_text(changed) if scrub and not d.get("text_removed") else changed

    for key, _part in docs.children(f"{path}/parts"):
        _update_part(docs, f"{path}/parts/{key}", generation, change, now)
    return _update(docs, path, generation, change, now)


def _update_part(docs: DocumentStore, path: str, generation: int, change: Callable[[dict[str, Any]], dict[str, Any]],
                 now: datetime) -> None:
    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, None]:
        if doc is None or records.generation_of(doc) != generation:
            return None, None
        changed = change(doc)
        return (None, None) if changed == doc else ({**changed, "updated_at": now}, None)

    docs.transact(path, fn)


def _batch(docs: DocumentStore, notifier: Notifier, generation: int, doc: dict[str, Any], now: datetime) -> None:
    owner = doc.get("owner")
    batch_path = f"users/{owner}/batches/{doc['batch_id']}" if owner else f"batches/{doc['batch_id']}"
    batch.job_finished(docs, batch_path, generation, str(doc.get("job_id")), str(doc.get("status")), now)
    current = docs.get(batch_path)
    if current is not None and records.generation_of(current) == generation and current.get("status") in JOB_ENDS:
        publish(notifier, "batch", batch_path, current)

"""What happened to an event, and the shared steps that decide it (claim, fail, release)."""

from __future__ import annotations

import enum
import logging
from datetime import datetime
from typing import NoReturn

from voicecloning import records
from voicecloning.errors import JobBusy, TransientError
from voicecloning.events import StorageEvent
from voicecloning.logs import bind, fields
from voicecloning.routes import Route
from voicecloning.settings import Settings
from voicecloning.stores.documents import DocumentStore

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """Every outcome acknowledges the event; retries happen only by raising."""

    DONE = "done"  # the work is finished (voice ready / job done / part rendered)
    PLANNED = "planned"  # the job's parts are queued; they finish it
    FAILED = "failed"  # bad input, recorded on the document with its reason
    DUPLICATE = "duplicate"  # this generation was already finished
    STALE = "stale"  # a newer upload of the object supersedes this event
    EXHAUSTED = "exhausted"  # gave up after the configured attempts; recorded as failed
    IGNORED = "ignored"  # not an object this service handles
    TOO_OLD = "too_old"  # the event is older than the configured maximum age


def claim_or_outcome(
    docs: DocumentStore, path: str, generation: int, working_status: str, settings: Settings, now: datetime,
    extra: dict[str, object] | None = None, done_if: str | None = None,
) -> records.Claim | Outcome:
    """Claim the work, or say why not (raising ``JobBusy`` when another worker holds it)."""
    rel = settings.reliability
    claim = records.claim(docs, path, generation=generation, now=now, lease_seconds=rel.lease_seconds,
                          max_attempts=rel.max_attempts, working_status=working_status, extra=extra,
                          done_if=done_if)
    if claim.outcome == "claimed":
        bind(attempt=claim.attempt)  # every later line of this delivery says which attempt it is
        log.info("claimed", extra=fields(path=path))
        return claim
    if claim.outcome == "busy":
        raise JobBusy(f"{path} is being processed by another worker; retry after its lease")
    if claim.outcome == "exhausted":
        log.error(_what(path) + " failed", extra=fields(**_status(path), path=path, attempts=claim.attempt,
                                             reason=(claim.doc or {}).get("error")))
        return Outcome.EXHAUSTED
    log.info("nothing to do", extra=fields(outcome=claim.outcome, path=path))
    return Outcome.DUPLICATE if claim.outcome == "duplicate" else Outcome.STALE


def record_failure(
    docs: DocumentStore, path: str, generation: int, token: str | None, reason: str, now: datetime,
    *, level: int = logging.WARNING,
) -> Outcome:
    """Bad input: record ``failed`` with a reason the user can act on; acknowledge.

    Log lines of jobs and voices carry ``status: failed`` (the failed-jobs metric counts them);
    those of a job's parts and assembly carry ``part_status`` instead, so a job is counted once.
    """
    applied = records.finish(docs, path, generation=generation, token=token, now=now, fields={
        "status": "failed", "error": _sentence(reason), "lease": None, "finished_at": now, "progress": None,
    })
    log.log(level, _what(path) + " failed", extra=fields(**_status(path), path=path, reason=reason, recorded=applied))
    return Outcome.FAILED


def _status(path: str) -> dict[str, str]:
    return {"part_status" if "/parts/" in path or "/assembly/" in path else "status": "failed"}


def release_and_raise(
    docs: DocumentStore, path: str, generation: int, token: str | None, exc: BaseException, status: str,
    now: datetime,
) -> NoReturn:
    """Transient trouble: give the claim back with the error noted, then raise so the event is retried."""
    reason = str(exc) if isinstance(exc, TransientError) else f"internal error ({type(exc).__name__}: {exc})"
    if token is not None:
        try:
            records.release(docs, path, generation=generation, token=token, error=reason[:500], status=status, now=now)
        except TransientError:
            log.warning("could not release the claim; it expires with its lease", extra=fields(path=path))
    log.error("will retry", exc_info=exc, extra=fields(path=path, reason=reason[:500]))
    raise exc


def record_too_old(docs: DocumentStore, route: Route, event: StorageEvent, age_s: float, now: datetime) -> None:
    """An event past the maximum age is not processed, but its document says why."""
    source = {"bucket": event.bucket, "name": event.name, "generation": str(event.generation)}
    kind = {"request": "job_id", "batch": "batch_id"}.get(route.kind, "voice_id")
    opened, _doc = records.open_record(docs, route.doc_path, generation=event.generation, now=now, initial={
        "status": "queued" if route.kind == "request" else "processing", kind: route.id, "owner": route.owner,
        "source": source})
    if opened != "stale":
        record_failure(docs, route.doc_path, event.generation, None,
                       f"the upload's event arrived {age_s / 3600:.1f} h late and was not processed; upload it again",
                       now)


def _what(path: str) -> str:
    """What a document path is, for log lines: one "job failed" line per failed job."""
    if "/parts/" in path or "/assembly/" in path:
        return "part" if "/parts/" in path else "assembly"
    return "job" if "jobs/" in path else "voice"


def internal_error(exc: BaseException) -> str:
    """The reason recorded for a bug: not the user's fault, not retried (it would fail again)."""
    return f"internal error ({type(exc).__name__}: {str(exc)[:300]}); the operators have the details in the logs"


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return "The input could not be processed."
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."

"""Job and voice documents: their transitions, each one a guarded transaction.

Every document carries the source object's generation. A transition for an
older generation does nothing; a newer generation resets the document. Work
is claimed with a lease (a token and an expiry), so two deliveries of one
event never both work, and a worker that died does not block the job forever.

    job:   queued -> processing -> done | failed      (processing -> queued on a transient error)
    voice: processing -> ready | failed
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from voicecloning.routes import voice_doc_path
from voicecloning.stores.documents import DocumentStore

TERMINAL = {"done", "failed", "ready"}


@dataclass(frozen=True)
class Claim:
    outcome: str  # "claimed" | "duplicate" | "stale" | "busy" | "exhausted"
    token: str | None = None
    attempt: int = 0
    doc: dict[str, Any] | None = None


def _generation(doc: dict[str, Any] | None) -> int:
    if not doc:
        return -1
    return int((doc.get("source") or {}).get("generation", -1))


generation_of = _generation  # the source generation a document belongs to (-1 for none)


def open_record(
    docs: DocumentStore, path: str, *, generation: int, initial: dict[str, Any], now: datetime
) -> tuple[str, dict[str, Any]]:
    """Create the document for this generation unless it exists.

    Returns ("new" | "current" | "stale", the document as it now stands).
    """

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, tuple[str, dict[str, Any]]]:
        current = _generation(doc)
        if doc is not None and current > generation:
            return None, ("stale", doc)
        if doc is not None and current == generation:
            return None, ("current", doc)
        fresh = {
            **initial,
            "error": None,
            "attempts": 0,
            "lease": None,
            "last_error": None,
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "finished_at": None,
        }
        return fresh, ("new", fresh)

    return docs.transact(path, fn)


def claim(
    docs: DocumentStore,
    path: str,
    *,
    generation: int,
    now: datetime,
    lease_seconds: float,
    max_attempts: int,
    working_status: str,
    extra: dict[str, Any] | None = None,
    done_if: str | None = None,
) -> Claim:
    """Take the work for this generation, if nobody else holds it and attempts remain.

    ``extra`` fields (who works on it) are written with the claim."""
    token = uuid.uuid4().hex

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, Claim]:
        current = _generation(doc)
        if doc is None or current < generation:
            return None, Claim("stale")
        if current > generation:
            return None, Claim("stale", doc=doc)
        if doc.get("status") in TERMINAL or (done_if is not None and doc.get(done_if)):
            return None, Claim("duplicate", doc=doc)
        lease = doc.get("lease") or {}
        expires = lease.get("expires_at")
        if expires is not None and expires > now:
            return None, Claim("busy", doc=doc)
        attempts = int(doc.get("attempts") or 0)
        if attempts >= max_attempts:
            reason = doc.get("last_error") or "it kept failing"
            failed = {
                **doc,
                "status": "failed",
                "error": f"gave up after {attempts} attempts: {reason}",
                "lease": None,
                "updated_at": now,
                "finished_at": now,
            }
            return failed, Claim("exhausted", attempt=attempts, doc=failed)
        claimed = {
            **doc,
            "status": working_status,
            "attempts": attempts + 1,
            "lease": {"token": token, "expires_at": now + timedelta(seconds=lease_seconds)},
            "started_at": doc.get("started_at") or now,
            "updated_at": now,
            **(extra or {}),
        }
        return claimed, Claim("claimed", token=token, attempt=attempts + 1, doc=claimed)

    return docs.transact(path, fn)


def finish(
    docs: DocumentStore, path: str, *, generation: int, token: str | None, fields: dict[str, Any], now: datetime
) -> bool:
    """Apply a terminal (or release) change if this generation is current and, given a token, still ours.

    Without a token (a failure found before any claim) it applies to any non-terminal document.
    """

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
        if doc is None or _generation(doc) != generation:
            return None, False
        if token is None:
            if doc.get("status") in TERMINAL:
                return None, False
        elif (doc.get("lease") or {}).get("token") != token:
            return None, False
        return {**doc, **fields, "updated_at": now}, True

    return docs.transact(path, fn)


def release(
    docs: DocumentStore, path: str, *, generation: int, token: str, error: str, status: str, now: datetime
) -> bool:
    """Give the claim back after a transient failure so a redelivery can take it at once."""
    return finish(docs, path, generation=generation, token=token, now=now,
                  fields={"lease": None, "last_error": error, "status": status})


def annotate(docs: DocumentStore, path: str, *, generation: int, fields: dict[str, Any], now: datetime) -> bool:
    """Merge descriptive fields into the document of this generation, unless it is finished."""
    return finish(docs, path, generation=generation, token=None, fields=fields, now=now)


def holds(docs: DocumentStore, path: str, *, generation: int, token: str) -> bool:
    """True while this generation is current and ``token`` still holds its lease."""

    def fn(doc: dict[str, Any] | None) -> tuple[None, bool]:
        ours = doc is not None and _generation(doc) == generation and (doc.get("lease") or {}).get("token") == token
        return None, ours

    return docs.transact(path, fn)


def renew(
    docs: DocumentStore, path: str, *, generation: int, token: str, now: datetime, lease_seconds: float,
    fields: dict[str, Any] | None = None,
) -> bool:
    """Extend our lease and write ``fields`` (progress) in one step, if we still hold it.

    False means the run is no longer ours (taken over after its lease, or superseded by a
    newer upload): nothing was written, and the caller must stop.
    """

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
        if doc is None or _generation(doc) != generation or (doc.get("lease") or {}).get("token") != token:
            return None, False
        lease = {"token": token, "expires_at": now + timedelta(seconds=lease_seconds)}
        return {**doc, **(fields or {}), "lease": lease, "updated_at": now}, True

    return docs.transact(path, fn)


def count_failure(
    docs: DocumentStore, path: str, *, generation: int, error: str, max_attempts: int, now: datetime
) -> bool:
    """Count a transient failure that happened before any claim; True once attempts are used up
    (the document is then ``failed`` with the error)."""

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
        if doc is None or _generation(doc) != generation or doc.get("status") in TERMINAL:
            return None, False
        attempts = int(doc.get("attempts") or 0) + 1
        updated = {**doc, "attempts": attempts, "last_error": error, "updated_at": now}
        if attempts >= max_attempts:
            updated.update(status="failed", error=f"gave up after {attempts} attempts: {error}",
                           lease=None, finished_at=now)
            return updated, True
        return updated, False

    return docs.transact(path, fn)


def find_voice(docs: DocumentStore, owner: str | None, voice_id: str) -> tuple[str, dict[str, Any] | None]:
    """A user's request sees that user's voices, then unowned ones; never another user's."""
    if owner:
        own = voice_doc_path(owner, voice_id)
        doc = docs.get(own)
        if doc is not None:
            return own, doc
    shared = voice_doc_path(None, voice_id)
    return shared, docs.get(shared)

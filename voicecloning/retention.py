"""Retention: when job documents and outputs expire, and removing a request's text once done.

* ``VOICECLONING_RETENTION_DAYS`` = N > 0: a finished job's document carries
  ``expire_at`` = finish time + N days (``expire_at``). In the cloud a Firestore
  TTL policy on the ``expire_at`` field deletes it and a Storage lifecycle rule
  deletes output objects N days after creation; locally ``sweep_local`` (``python
  -m voicecloning sweep``) does both.
* Only *outputs* expire: ``outputs/...`` and ``users/<uid>/outputs/...``. Voice
  latents (``voices/*.latents.safetensors``) live in the same bucket and are kept,
  or every voice would have to be enrolled again.
* ``"retain_text": false`` in a request: once the job is done or failed, every
  stored document of it goes through ``scrub_text``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from voicecloning.stores.documents import SqliteDocumentStore
from voicecloning.stores.folder import LocalBlobStore

TTL_FIELD = "expire_at"
TEXT_KEYS = frozenset({"text", "texts", "text_preview", "alias"})
OUTPUT_NAME = re.compile(r"^(users/[^/]+/)?outputs/")


def expire_at(now: datetime, days: int | None) -> datetime | None:
    """When a document finished at ``now`` expires, or None if retention is off (0 / None)."""
    return now + timedelta(days=days) if days else None


def scrub_text(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` without any text of the request, at any depth (segments, items...).

    Adds ``text_removed: true`` so readers can tell a scrubbed document from one that never had text.
    """
    scrubbed = _scrub(doc)
    assert isinstance(scrubbed, dict)
    return {**scrubbed, "text_removed": True}


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in TEXT_KEYS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def is_output(name: str) -> bool:
    return OUTPUT_NAME.match(name) is not None


def sweep_local(outputs: LocalBlobStore, docs: SqliteDocumentStore, now: datetime, days: int) -> dict[str, int]:
    """Delete outputs older than ``days`` (none if 0) and every document whose ``expire_at`` has passed.

    Returns ``{"objects": deleted outputs, "documents": deleted documents}``.
    """
    objects = 0
    if days:
        cutoff = now - timedelta(days=days)
        for info in outputs.list(""):
            if not is_output(info.name):
                continue
            try:  # the file's time: generations are a counter, not a clock
                created = datetime.fromtimestamp((outputs.root / info.name).stat().st_mtime, UTC)
            except FileNotFoundError:
                continue
            if created <= cutoff:
                outputs.delete(info.name)
                objects += 1
    return {"objects": objects, "documents": _expire_documents(docs, now)}


def _expire_documents(docs: SqliteDocumentStore, now: datetime) -> int:
    """The embedded equivalent of a Firestore TTL policy on ``expire_at``.

    Each candidate is checked again inside the deleting transaction, so a document
    re-opened meanwhile (a new upload clears or moves ``expire_at``) is left alone.
    """
    candidates = [path for path, doc in docs.list("") if _expired(doc.get(TTL_FIELD), now)]
    if not candidates:
        return 0
    db = sqlite3.connect(docs.path, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        deleted = 0
        for path in candidates:
            row = db.execute("SELECT data FROM documents WHERE path = ?", (path,)).fetchone()
            stamp = (json.loads(row[0]).get(TTL_FIELD) or {}) if row else {}
            when = datetime.fromisoformat(stamp["__datetime__"]) if isinstance(stamp, dict) and stamp else None
            if _expired(when, now):
                deleted += db.execute("DELETE FROM documents WHERE path = ?", (path,)).rowcount
        db.execute("COMMIT")
        return deleted
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()


def _expired(value: Any, now: datetime) -> bool:
    return isinstance(value, datetime) and value <= now

"""Document storage behind one small interface: embedded SQLite, or Cloud Firestore.

Paths are Firestore paths (``jobs/j1``, ``users/u1/voices/alice``).
``transact`` is the one primitive for claims and guarded status changes: an
atomic read-modify-write of one document.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from voicecloning.errors import TransientError
from voicecloning.stores.transient import transient

T = TypeVar("T")
# fn(current document or None) -> (new document or None to leave it, result)
Mutation = Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, T]]


class DocumentStore(Protocol):
    def get(self, path: str) -> dict[str, Any] | None:
        """The document, or None."""

    def update(self, path: str, fields: dict[str, Any]) -> None:
        """Merge top-level ``fields`` into the document (creating it if needed)."""

    def transact(self, path: str, fn: Mutation[T]) -> T:
        """Run ``fn`` on the current document atomically and store what it returns."""

    def children(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        """(id, document) of every document directly in ``collection`` (e.g. ``jobs/j1/parts``), by id."""


class SqliteDocumentStore:
    """The embedded default: one SQLite file, real transactions (``BEGIN IMMEDIATE``).

    Safe across threads and processes sharing the file.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS documents (path TEXT PRIMARY KEY, data TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def get(self, path: str) -> dict[str, Any] | None:
        row = self._connect().execute("SELECT data FROM documents WHERE path = ?", (path,)).fetchone()
        return None if row is None else _loads(row[0])

    def update(self, path: str, fields: dict[str, Any]) -> None:
        def merge(doc: dict[str, Any] | None) -> tuple[dict[str, Any], None]:
            return {**(doc or {}), **fields}, None

        self.transact(path, merge)

    def transact(self, path: str, fn: Mutation[T]) -> T:
        db = self._connect()
        for attempt in range(20):
            try:
                db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:  # database is locked beyond busy_timeout
                if attempt == 19:
                    raise TransientError(f"document store busy: {exc}") from exc
                time.sleep(0.05 * (attempt + 1))
        try:
            row = db.execute("SELECT data FROM documents WHERE path = ?", (path,)).fetchone()
            new, result = fn(None if row is None else _loads(row[0]))
            if new is not None:
                db.execute(
                    "INSERT INTO documents (path, data) VALUES (?, ?) "
                    "ON CONFLICT(path) DO UPDATE SET data = excluded.data",
                    (path, _dumps(new)),
                )
            db.execute("COMMIT")
            return result
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def children(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        prefix = collection.rstrip("/") + "/"
        return [(p[len(prefix):], d) for p, d in self.list(prefix) if "/" not in p[len(prefix):]]

    def list(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """(path, document) pairs whose path starts with ``prefix`` (local tools and tests)."""
        rows = self._connect().execute(
            "SELECT path, data FROM documents WHERE path >= ? AND path < ? ORDER BY path", (prefix, prefix + "\uffff")
        )
        return [(p, _loads(d)) for p, d in rows]


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    raise TypeError(f"cannot store {type(value).__name__}")


def _hook(obj: dict[str, Any]) -> Any:
    if set(obj) == {"__datetime__"}:
        return datetime.fromisoformat(obj["__datetime__"])
    return obj


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, default=_default, ensure_ascii=False)


def _loads(data: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(data, object_hook=_hook)
    return loaded


# An unreachable Firestore must become a retried event (HTTP 500) within seconds: the client's
# own defaults retry UNAVAILABLE for 60-300 s per call, longer than an event may take.
CALL_TIMEOUT_S = 10.0  # one RPC
RETRY_DEADLINE_S = 5.0  # all retries of one call (transient gRPC errors only)


def _bounded_retry() -> Any:
    from google.api_core import retry

    return retry.Retry(predicate=retry.if_transient_error, initial=0.1, maximum=1.0, multiplier=2.0,
                       timeout=RETRY_DEADLINE_S)


class FirestoreDocumentStore:
    """Cloud Firestore (or its emulator) through google-cloud-firestore.

    Every call is bounded (``CALL_TIMEOUT_S``, ``RETRY_DEADLINE_S``), including the
    transaction's begin, commit and rollback, which the client library calls with its
    GAPIC defaults: those are rebound on this client's API object.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._retry = _bounded_retry()
        api = client._firestore_api  # the GAPIC client the library's Transaction calls
        for name in ("begin_transaction", "commit", "rollback"):
            setattr(api, name, functools.partial(getattr(api, name), retry=self._retry, timeout=CALL_TIMEOUT_S))

    def get(self, path: str) -> dict[str, Any] | None:
        with transient("Firestore", "read"):
            snap = self.client.document(path).get(retry=self._retry, timeout=CALL_TIMEOUT_S)
        return snap.to_dict() if snap.exists else None

    def update(self, path: str, fields: dict[str, Any]) -> None:
        with transient("Firestore", "write"):
            self.client.document(path).set(fields, merge=True, retry=self._retry, timeout=CALL_TIMEOUT_S)

    def children(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        with transient("Firestore", "list"):
            snaps = list(self.client.collection(collection).stream(retry=self._retry, timeout=CALL_TIMEOUT_S))
        return sorted(((snap.id, snap.to_dict() or {}) for snap in snaps), key=lambda pair: pair[0])

    def transact(self, path: str, fn: Mutation[T]) -> T:
        from google.cloud import firestore

        ref = self.client.document(path)
        box: dict[str, T] = {}

        @firestore.transactional
        def run(tx: Any) -> None:
            snap = ref.get(transaction=tx, retry=self._retry, timeout=CALL_TIMEOUT_S)
            new, result = fn(snap.to_dict() if snap.exists else None)
            if new is not None:
                tx.set(ref, new)
            box["result"] = result

        with transient("Firestore", "transaction"):
            run(self.client.transaction(max_attempts=10))
        return box["result"]

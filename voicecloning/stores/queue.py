"""Work handed from one delivery to many workers: a task queue behind one small interface.

A task is small JSON (``kind`` and a body naming a document and a generation); the
documents hold the state, so a task delivered twice, late or to two workers at once
changes nothing the second time. Delivery is at least once in every implementation:

* ``PubSubTaskQueue`` -- a Pub/Sub topic, pushed to the worker service (Terraform).
* ``EmbeddedTaskQueue`` -- a SQLite table shared by ``serve --workers N``: a leased task is
  invisible for a visibility timeout and delivered again if its worker dies or fails.
* ``InlineTaskQueue`` -- one process, no fan-out: tasks run in the same delivery, after the
  handler that published them (a single instance without a tasks topic, and in-process tests).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from voicecloning.errors import TransientError
from voicecloning.stores.transient import transient

PUBLISH_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Task:
    kind: str  # "render" | "assemble" | "storage" (embedded default) | ...
    body: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return json.dumps({"kind": self.kind, **self.body}, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Task:
        body = json.loads(data)
        if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
            raise ValueError("a task is a JSON object with a 'kind'")
        kind = body.pop("kind")
        return cls(kind, body)


class TaskQueue(Protocol):
    durable: bool  # published tasks outlive this delivery (Pub/Sub, the embedded table); not inline ones

    def publish(self, tasks: Sequence[Task]) -> None:
        """Hand ``tasks`` on; returns once they are durably queued (or raises ``TransientError``)."""

    def flush(self, run: Callable[[Task], object]) -> None:
        """Run tasks this process must run itself before its delivery ends (only ``InlineTaskQueue``)."""


class InlineTaskQueue:
    """Tasks run in this process, in order, once the publishing handler has returned.
    Each thread (one delivery) has its own pending tasks."""

    durable = False

    def __init__(self) -> None:
        self._local = threading.local()

    def _pending(self) -> deque[Task]:
        if not hasattr(self._local, "pending"):
            self._local.pending = deque()
        pending: deque[Task] = self._local.pending
        return pending

    def publish(self, tasks: Sequence[Task]) -> None:
        self._pending().extend(tasks)

    def flush(self, run: Callable[[Task], object]) -> None:
        if getattr(self._local, "running", False):
            return  # a task published more tasks: the outer flush runs them
        self._local.running = True
        pending = self._pending()
        try:
            while pending:
                run(pending.popleft())  # raising: the delivery fails and is redelivered
        finally:
            self._local.running = False
            pending.clear()


class PubSubTaskQueue:
    """A Pub/Sub topic (``projects/P/topics/T``); publishing waits for the server's ids."""

    durable = True

    def __init__(self, publisher: Any, topic: str) -> None:
        self.publisher = publisher
        self.topic = topic

    def publish(self, tasks: Sequence[Task]) -> None:
        with transient("Pub/Sub", "publish tasks"):
            futures = [self.publisher.publish(self.topic, task.to_bytes(), kind=task.kind) for task in tasks]
            for future in futures:
                future.result(timeout=PUBLISH_TIMEOUT_S)

    def flush(self, run: Callable[[Task], object]) -> None:
        return None


@dataclass(frozen=True)
class Delivery:
    id: str
    task: Task
    attempt: int  # 1 for the first delivery


class EmbeddedTaskQueue:
    """A SQLite table of tasks: ``lease`` hides a task for ``visibility_s``; ``ack`` removes it;
    ``retry`` makes it visible again after a delay. A worker that dies holding a task just lets
    its visibility run out, and another worker gets it."""

    durable = True

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._local = threading.local()
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, body BLOB NOT NULL, "
                       "visible_at REAL NOT NULL, deliveries INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL)")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._db().execute(sql, params)
        except sqlite3.OperationalError as exc:
            raise TransientError(f"task queue busy: {exc}") from exc

    def publish(self, tasks: Sequence[Task]) -> None:
        now = time.time()
        db = self._db()
        self._write("BEGIN IMMEDIATE")
        try:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM tasks").fetchone()[0]
            db.executemany("INSERT INTO tasks (id, body, visible_at, seq) VALUES (?, ?, ?, ?)",
                           [(uuid.uuid4().hex, t.to_bytes(), now, seq + i + 1) for i, t in enumerate(tasks)])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def flush(self, run: Callable[[Task], object]) -> None:
        return None

    def lease(self, visibility_s: float) -> Delivery | None:
        """The oldest visible task, hidden from others for ``visibility_s``; None if there is none."""
        db = self._db()
        self._write("BEGIN IMMEDIATE")
        try:
            now = time.time()
            row = db.execute("SELECT id, body, deliveries FROM tasks WHERE visible_at <= ? ORDER BY visible_at, seq "
                             "LIMIT 1", (now,)).fetchone()
            if row is not None:
                db.execute("UPDATE tasks SET visible_at = ?, deliveries = deliveries + 1 WHERE id = ?",
                           (now + visibility_s, row[0]))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return None if row is None else Delivery(row[0], Task.from_bytes(row[1]), row[2] + 1)

    def ack(self, delivery_id: str) -> None:
        self._write("DELETE FROM tasks WHERE id = ?", (delivery_id,))

    def retry(self, delivery_id: str, delay_s: float) -> None:
        self._write("UPDATE tasks SET visible_at = ? WHERE id = ?", (time.time() + delay_s, delivery_id))

    def pending(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM tasks").fetchone()[0])

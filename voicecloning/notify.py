"""Terminal events of jobs, voices and batches: one message each, to Pub/Sub or an embedded table.

``terminal_event(kind, path, doc)`` builds the message: data is the document's
public ``summary``; attributes are ``kind``, ``id``, ``owner`` (empty when
unowned), ``status`` and ``event_id``, a hash of kind, path, source generation
and status, so a redelivery of the same outcome carries the same id and
subscribers can drop duplicates. The embedded notifier drops them itself.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from voicecloning.errors import TransientError

KINDS = ("job", "voice", "batch")
PUBLISH_TIMEOUT_S = 10.0  # one publish, retries included

_COMMON = ("owner", "status", "error", "created_at", "finished_at")
PUBLIC_FIELDS = {
    "job": ("job_id", *_COMMON, "output_uri", "output_object", "content_type", "duration_s", "sample_rate",
            "format", "voice_id", "voice_ids", "language", "characters", "items", "usage", "captions",
            "caption_objects", "timings_object", "lexicons", "batch_id", "model_name", "model_version"),
    "voice": ("voice_id", *_COMMON, "model_name", "model_version", "warnings"),
    "batch": ("batch_id", *_COMMON, "total", "done", "failed"),
}


class Notifier(Protocol):
    def publish(self, data: dict[str, Any], attributes: dict[str, str]) -> None:
        """Send one event; ``TransientError`` if it may not have been sent (the caller retries)."""


class NoNotifier:
    """Events go nowhere (the cloud without ``VOICECLONING_EVENTS_TOPIC``, and bare test services)."""

    def publish(self, data: dict[str, Any], attributes: dict[str, str]) -> None:
        return None


def summary(doc: dict[str, Any], kind: str = "job") -> dict[str, Any]:
    """The public fields of a document (what events and callbacks carry), as JSON-ready values.

    Never the text, the lease, the attempts or internal object names of voices.
    """
    out: dict[str, Any] = {key: _plain(doc[key]) for key in PUBLIC_FIELDS[kind] if key in doc}
    generation = (doc.get("source") or {}).get("generation")
    if generation is not None:
        out["generation"] = str(generation)
    return out


def event_id(kind: str, path: str, generation: Any, status: str) -> str:
    """Stable across redeliveries of the same outcome; differs for a re-upload or another status."""
    return hashlib.sha256(f"{kind}\n{path}\n{generation}\n{status}".encode()).hexdigest()[:32]


def terminal_event(kind: str, path: str, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(data, attributes) of the event for ``doc`` at ``path`` (a Firestore path)."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    status = str(doc.get("status") or "")
    generation = (doc.get("source") or {}).get("generation", "")
    ident = str(doc.get(f"{kind}_id") or path.rsplit("/", 1)[-1])
    attributes = {
        "kind": kind,
        "id": ident,
        "owner": str(doc.get("owner") or ""),
        "status": status,
        "event_id": event_id(kind, path, generation, status),
    }
    return {**summary(doc, kind), "path": path}, attributes


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class PubSubNotifier:
    """Publishes to a Pub/Sub topic with google-cloud-pubsub, each publish bounded in time."""

    def __init__(self, publisher: Any, topic: str) -> None:
        self.publisher = publisher
        self.topic = topic  # projects/<project>/topics/<id>

    @classmethod
    def create(cls, project: str, topic: str) -> PubSubNotifier:
        """A notifier for ``topic`` (an id, or a full ``projects/P/topics/T`` path)."""
        from google.cloud import pubsub_v1

        publisher = pubsub_v1.PublisherClient()
        path = topic if topic.startswith("projects/") else publisher.topic_path(project, topic)
        return cls(publisher, path)

    def publish(self, data: dict[str, Any], attributes: dict[str, str]) -> None:
        from concurrent.futures import TimeoutError as FutureTimeout

        from google.api_core import exceptions, retry

        bounded = retry.Retry(predicate=retry.if_transient_error, initial=0.1, maximum=1.0, multiplier=2.0,
                              timeout=PUBLISH_TIMEOUT_S / 2)
        try:
            future = self.publisher.publish(self.topic, encode(data), retry=bounded, timeout=PUBLISH_TIMEOUT_S / 2,
                                            **attributes)
            future.result(timeout=PUBLISH_TIMEOUT_S)
        except (exceptions.GoogleAPICallError, exceptions.RetryError, FutureTimeout) as exc:
            raise TransientError(f"Pub/Sub publish to {self.topic} failed: {type(exc).__name__}: {exc}") from exc


class EmbeddedNotifier:
    """The local default: an ``events`` table in a SQLite file; a repeated ``event_id`` adds nothing."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().execute(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL, "
            "kind TEXT, id TEXT, owner TEXT, status TEXT, published_at TEXT, data TEXT NOT NULL)"
        )

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def publish(self, data: dict[str, Any], attributes: dict[str, str]) -> None:
        try:
            self._db().execute(
                "INSERT OR IGNORE INTO events (event_id, kind, id, owner, status, published_at, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (attributes["event_id"], attributes.get("kind"), attributes.get("id"), attributes.get("owner"),
                 attributes.get("status"), datetime.now(UTC).isoformat(), encode(data).decode()),
            )
        except sqlite3.OperationalError as exc:  # locked beyond busy_timeout
            raise TransientError(f"events table busy: {exc}") from exc

    def list(self) -> list[dict[str, Any]]:
        """Every event in the order published: attributes, ``published_at`` and ``data``."""
        rows = self._db().execute(
            "SELECT event_id, kind, id, owner, status, published_at, data FROM events ORDER BY seq"
        ).fetchall()
        keys = ("event_id", "kind", "id", "owner", "status", "published_at")
        return [{**dict(zip(keys, row[:6], strict=True)), "data": json.loads(row[6])} for row in rows]

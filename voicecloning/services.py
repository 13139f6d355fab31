"""The stores and engine a handler works with, chosen once from the settings.

Handlers receive these as parameters; they never know which backend they have.
The engine module (and torch) is imported only when an engine is built: the
HTTP API uses ``build_stores`` and never imports it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from voicecloning.errors import ConfigurationError
from voicecloning.notify import EmbeddedNotifier, NoNotifier, Notifier, PubSubNotifier
from voicecloning.settings import Settings
from voicecloning.stores.blobs import BlobStore
from voicecloning.stores.documents import DocumentStore, FirestoreDocumentStore, SqliteDocumentStore
from voicecloning.stores.folder import LocalBlobStore
from voicecloning.stores.gcs import GcsBlobStore
from voicecloning.stores.queue import EmbeddedTaskQueue, InlineTaskQueue, PubSubTaskQueue, TaskQueue

if TYPE_CHECKING:
    from voicecloning.engine.xtts import XttsEngine


def utcnow() -> datetime:
    return datetime.now(UTC)


def worker_name() -> str:
    """Which instance or local worker process did something (recorded on part documents)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Services:
    settings: Settings
    inputs: BlobStore
    outputs: BlobStore
    docs: DocumentStore
    engine: Any  # XttsEngine or a test double with the same methods; None from build_stores
    clock: Callable[[], datetime] = field(default=utcnow)
    tasks: TaskQueue = field(default_factory=InlineTaskQueue)
    worker: str = field(default_factory=worker_name)
    notifier: Notifier = field(default_factory=NoNotifier)  # terminal events (docs/PRODUCT.md "Notifications")


def build_engine(settings: Settings) -> XttsEngine:
    from voicecloning.engine.xtts import EngineConfig, XttsEngine

    return XttsEngine(EngineConfig.from_settings(settings))


def build_services(settings: Settings, engine: Any | None = None, tasks: TaskQueue | None = None) -> Services:
    """Stores for ``settings.backend`` ("local": folders + SQLite; "gcp": Cloud Storage + Firestore).

    Terminal events: the ``events`` table of ``documents.sqlite3`` locally; the Pub/Sub topic
    ``product.events_topic`` in the cloud, or nowhere without one.
    Part tasks: the embedded queue locally (``serve --workers N``), the Pub/Sub topic
    ``tasks_topic`` in the cloud, or, given neither, in the delivery that made them.
    """
    engine = engine if engine is not None else build_engine(settings)
    return replace(build_stores(settings, tasks), engine=engine)


def build_stores(settings: Settings, tasks: TaskQueue | None = None) -> Services:
    """The stores, queue and notifier for ``settings.backend``, without an engine (the HTTP API)."""
    if settings.backend == "local":
        root = settings.data_dir
        return Services(
            settings=settings,
            inputs=LocalBlobStore(root / "input", settings.input_bucket),
            outputs=LocalBlobStore(root / "output", settings.output_bucket),
            docs=SqliteDocumentStore(root / "documents.sqlite3"),
            engine=None,
            tasks=tasks if tasks is not None else EmbeddedTaskQueue(root / "tasks.sqlite3"),
            notifier=EmbeddedNotifier(root / "documents.sqlite3"),
        )
    from google.cloud import firestore, storage

    gcs = storage.Client(project=settings.project)
    db = firestore.Client(project=settings.project, database=settings.firestore_database)
    return Services(
        settings=settings,
        inputs=GcsBlobStore(gcs, settings.input_bucket),
        outputs=GcsBlobStore(gcs, settings.output_bucket),
        docs=FirestoreDocumentStore(db),
        engine=None,
        tasks=tasks if tasks is not None else _cloud_tasks(settings),
        notifier=_cloud_notifier(settings),
    )


def _cloud_tasks(settings: Settings) -> TaskQueue:
    if not settings.tasks_topic:
        return InlineTaskQueue()
    from google.cloud import pubsub_v1

    return PubSubTaskQueue(pubsub_v1.PublisherClient(), settings.tasks_topic)


def _cloud_notifier(settings: Settings) -> Notifier:
    topic = settings.product.events_topic
    if not topic:
        return NoNotifier()
    if not topic.startswith("projects/") and not settings.project:
        raise ConfigurationError("VOICECLONING_EVENTS_TOPIC needs GOOGLE_CLOUD_PROJECT, or a full projects/P/topics/T path.")
    return PubSubNotifier.create(settings.project or "", topic)

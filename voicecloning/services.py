"""The stores and engine a handler works with, chosen once from the settings.

Handlers receive these as parameters; they never know which backend they have.
The engine module (and torch) is imported only when an engine is built: the
HTTP API uses ``build_stores`` and never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from voicecloning.settings import Settings
from voicecloning.stores.blobs import BlobStore, GcsBlobStore, LocalBlobStore
from voicecloning.stores.documents import DocumentStore, FirestoreDocumentStore, SqliteDocumentStore

if TYPE_CHECKING:
    from voicecloning.engine.xtts import XttsEngine


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    inputs: BlobStore
    outputs: BlobStore
    docs: DocumentStore
    engine: Any  # XttsEngine or a test double with the same methods; None from build_stores
    clock: Callable[[], datetime] = field(default=utcnow)


def build_engine(settings: Settings) -> XttsEngine:
    from voicecloning.engine.xtts import EngineConfig, XttsEngine

    return XttsEngine(EngineConfig.from_settings(settings))


def build_services(settings: Settings, engine: Any | None = None) -> Services:
    """Stores for ``settings.backend`` and the engine (``engine``, or a new one)."""
    engine = engine if engine is not None else build_engine(settings)
    return replace(build_stores(settings), engine=engine)


def build_stores(settings: Settings) -> Services:
    """Stores for ``settings.backend`` ("local": folders + SQLite; "gcp": Cloud Storage + Firestore), no engine."""
    if settings.backend == "local":
        root = settings.data_dir
        return Services(
            settings=settings,
            inputs=LocalBlobStore(root / "input", settings.input_bucket),
            outputs=LocalBlobStore(root / "output", settings.output_bucket),
            docs=SqliteDocumentStore(root / "documents.sqlite3"),
            engine=None,
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
    )

"""Talking to the emulators and the functions the way Cloud Storage, Eventarc and frontends do."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from typing import Any

import requests
import soundfile as sf
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from voicecloning.devbridge import finalized_event
from voicecloning.events import FINALIZED  # noqa: E402,F401 -- re-exported for tests


def storage_client(storage_url: str, project: str):  # type: ignore[no-untyped-def]
    """A google-cloud-storage client against the emulator (STORAGE_EMULATOR_HOST must be set)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": storage_url})


def firestore_client(project: str):  # type: ignore[no-untyped-def]
    """A google-cloud-firestore client against the emulator (FIRESTORE_EMULATOR_HOST must be set)."""
    from google.cloud import firestore

    return firestore.Client(project=project)


def emulator_clients(env: dict[str, str], project: str, buckets: tuple[str, ...]) -> tuple[Any, Any]:
    """(storage client, firestore client) for the emulators named in ``env``; the buckets exist.

    The process environment is left as it was (the Firestore client reads its
    emulator host when it is built).
    """
    import os

    gcs = storage_client(env["STORAGE_EMULATOR_HOST"], project)
    for name in buckets:
        ensure_bucket(gcs, name)
    saved = dict(os.environ)
    os.environ["FIRESTORE_EMULATOR_HOST"] = env["FIRESTORE_EMULATOR_HOST"]
    try:
        db = firestore_client(project)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return gcs, db


def ensure_bucket(client: Any, name: str) -> Any:
    bucket = client.bucket(name)
    if not bucket.exists():
        bucket = client.create_bucket(name)
    return bucket


def upload(bucket: Any, name: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None) -> Any:
    blob = bucket.blob(name)
    blob.metadata = metadata
    blob.upload_from_string(data, content_type=content_type)
    blob.reload()
    return blob


def storage_cloudevent(blob: Any, *, event_id: str | None = None, when: datetime | None = None) -> CloudEvent:
    """The CloudEvent Eventarc sends for a finalized object, built from the uploaded object."""
    return finalized_event(blob, event_id=event_id or f"{blob.name}-{blob.generation}",
                           when=when or datetime.now(UTC))


def post_event(url: str, event: CloudEvent, mode: str = "binary", timeout: float = 300) -> requests.Response:
    headers, body = (to_binary if mode == "binary" else to_structured)(event)
    return requests.post(url, headers=headers, data=body, timeout=timeout)


def deliver(url: str, event: CloudEvent, mode: str = "binary", attempts: int = 20, backoff: float = 0.5) -> list[int]:
    """Deliver like Eventarc: redeliver while the function answers 5xx. The status codes seen."""
    codes = []
    for _ in range(attempts):
        code = post_event(url, event, mode).status_code
        codes.append(code)
        if code < 500:
            return codes
        time.sleep(backoff)
    return codes


def wav_facts(data: bytes) -> tuple[int, float, float]:
    """(sample rate, duration seconds, peak amplitude) of WAV bytes."""
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    return rate, len(audio) / rate, float(abs(audio).max()) if len(audio) else 0.0


def request_json(**fields: Any) -> bytes:
    return json.dumps(fields).encode()

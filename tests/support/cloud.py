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

FINALIZED = "google.cloud.storage.object.v1.finalized"


def storage_client(storage_url: str, project: str):  # type: ignore[no-untyped-def]
    """A google-cloud-storage client against the emulator (STORAGE_EMULATOR_HOST must be set)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": storage_url})


def firestore_client(project: str):  # type: ignore[no-untyped-def]
    """A google-cloud-firestore client against the emulator (FIRESTORE_EMULATOR_HOST must be set)."""
    from google.cloud import firestore

    return firestore.Client(project=project)


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
    when = when or datetime.now(UTC)
    attributes = {
        "id": event_id or f"{blob.name}-{blob.generation}",
        "type": FINALIZED,
        "source": f"//storage.googleapis.com/projects/_/buckets/{blob.bucket.name}",
        "subject": f"objects/{blob.name}",
        "time": when.isoformat().replace("+00:00", "Z"),
        "specversion": "1.0",
        "datacontenttype": "application/json",
    }
    data = {
        "kind": "storage#object",
        "bucket": blob.bucket.name,
        "name": blob.name,
        "generation": str(blob.generation),
        "metageneration": "1",
        "contentType": blob.content_type,
        "size": str(blob.size),
        "metadata": blob.metadata or {},
        "timeCreated": when.isoformat(),
        "updated": when.isoformat(),
    }
    return CloudEvent(attributes, data)


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

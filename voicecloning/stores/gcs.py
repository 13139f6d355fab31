"""A Cloud Storage bucket through google-cloud-storage, behind the ``BlobStore`` interface."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voicecloning.errors import PreconditionFailed
from voicecloning.stores.blobs import BlobInfo
from voicecloning.stores.transient import transient

# An unreachable Cloud Storage must become a retried event (HTTP 500) within seconds: the
# client's default retry keeps trying for 120 s per call, longer than an event may take.
CALL_TIMEOUT_S = (5.0, 60.0)  # (connect, read) of one HTTP request
RETRY_DEADLINE_S = 5.0  # all retries of one call


class GcsBlobStore:
    """A Cloud Storage bucket through google-cloud-storage.

    Transport failures surface as ``TransientError`` so the event is retried.
    Every call is bounded by ``CALL_TIMEOUT_S`` and ``RETRY_DEADLINE_S``.
    """

    def __init__(self, client: Any, bucket: str) -> None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        self.client = client
        self.bucket = bucket
        self._bucket = client.bucket(bucket)
        self._call = {"retry": DEFAULT_RETRY.with_timeout(RETRY_DEADLINE_S), "timeout": CALL_TIMEOUT_S}

    def stat(self, name: str) -> BlobInfo | None:
        with transient("Cloud Storage", "read object facts"):
            blob = self._bucket.get_blob(name, **self._call)
        return None if blob is None else _info(blob)

    def read(self, name: str, generation: int | None = None) -> bytes | None:
        from google.api_core.exceptions import NotFound

        blob = self._bucket.blob(name, generation=generation)
        try:
            with transient("Cloud Storage", "download object"):
                data: bytes = blob.download_as_bytes(**self._call)
        except NotFound:
            return None
        return data

    def write(self, name: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None,
              if_generation_match: int | None = None) -> BlobInfo:
        blob = self._bucket.blob(name)
        blob.metadata = metadata or None
        with _precondition(name), transient("Cloud Storage", "upload object"):
            blob.upload_from_string(data, content_type=content_type, if_generation_match=if_generation_match,
                                    **self._call)
        return _info(blob)

    def write_file(self, name: str, path: Path, content_type: str, metadata: dict[str, str] | None = None,
                   if_generation_match: int | None = None) -> BlobInfo:
        """A resumable upload in 8 MiB chunks (a book's audio is never held in memory)."""
        blob = self._bucket.blob(name, chunk_size=UPLOAD_CHUNK_BYTES)
        blob.metadata = metadata or None
        with _precondition(name), transient("Cloud Storage", "upload object"):
            blob.upload_from_filename(str(path), content_type=content_type, if_generation_match=if_generation_match,
                                      **self._call)
        return _info(blob)

    def delete(self, name: str, if_generation_match: int | None = None) -> None:
        from google.api_core.exceptions import NotFound

        try:
            with _precondition(name), transient("Cloud Storage", "delete object"):
                self._bucket.blob(name).delete(if_generation_match=if_generation_match, **self._call)
        except NotFound:
            pass

    def list(self, prefix: str) -> list[BlobInfo]:
        with transient("Cloud Storage", "list objects"):
            return sorted((_info(b) for b in self.client.list_blobs(self.bucket, prefix=prefix, **self._call)), key=lambda i: i.name)

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket}/{name}"


UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024


@contextlib.contextmanager
def _precondition(name: str) -> Iterator[None]:
    """Cloud Storage's 412 becomes ``PreconditionFailed`` (someone else wrote the object first)."""
    from google.api_core.exceptions import PreconditionFailed as Gcs412

    try:
        yield
    except Gcs412 as exc:
        raise PreconditionFailed(f"{name}: {exc}") from exc


def _info(blob: Any) -> BlobInfo:
    return BlobInfo(
        name=blob.name,
        size=int(blob.size or 0),
        generation=int(blob.generation or 0),
        content_type=blob.content_type,
        metadata=dict(blob.metadata or {}),
    )

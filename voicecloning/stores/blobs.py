"""Object storage behind one small interface: a local folder, or a Cloud Storage bucket.

Writes are atomic in both: an object is either absent or complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from voicecloning.stores.transient import transient


@dataclass(frozen=True)
class BlobInfo:
    name: str
    size: int
    generation: int
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class BlobStore(Protocol):
    bucket: str

    def stat(self, name: str) -> BlobInfo | None:
        """The object's current facts, or None if it does not exist."""

    def read(self, name: str, generation: int | None = None) -> bytes | None:
        """The object's bytes (of ``generation`` if given), or None if that is gone."""

    def write(self, name: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None) -> BlobInfo:
        """Store ``data`` under ``name`` atomically, replacing any previous object."""

    def delete(self, name: str) -> None:
        """Remove the object; a missing object is fine."""

    def list(self, prefix: str) -> list[BlobInfo]:
        """Objects whose names start with ``prefix``, sorted by name."""

    def uri(self, name: str) -> str:
        """A URI naming the object (``gs://`` or ``file://``)."""


class LocalBlobStore:
    """A folder as a bucket. Metadata and content types live in a sidecar folder.

    The generation is the file's modification time in nanoseconds: a
    re-upload is a newer generation, as in Cloud Storage.
    """

    META_DIR = ".meta"

    def __init__(self, root: Path, bucket: str | None = None) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.bucket = bucket or self.root.name

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root not in path.parents or self.META_DIR in Path(name).parts:
            raise ValueError(f"object name {name!r} escapes the bucket folder")
        return path

    def _meta_path(self, name: str) -> Path:
        return self.root / self.META_DIR / (name + ".json")

    def stat(self, name: str) -> BlobInfo | None:
        path = self._path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if not path.is_file():
            return None
        meta: dict[str, Any] = {}
        meta_path = self._meta_path(name)
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
        return BlobInfo(name, st.st_size, st.st_mtime_ns, meta.get("content_type"), meta.get("metadata", {}))

    def read(self, name: str, generation: int | None = None) -> bytes | None:
        path = self._path(name)
        try:
            with path.open("rb") as fh:
                if generation is not None and os.fstat(fh.fileno()).st_mtime_ns != generation:
                    return None
                return fh.read()
        except (FileNotFoundError, IsADirectoryError):
            return None

    def write(self, name: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None) -> BlobInfo:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta_path = self._meta_path(name)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(meta_path, json.dumps({"content_type": content_type, "metadata": metadata or {}}).encode())
        _atomic_write(path, data)
        info = self.stat(name)
        assert info is not None
        return info

    def delete(self, name: str) -> None:
        for path in (self._path(name), self._meta_path(name)):
            path.unlink(missing_ok=True)

    def list(self, prefix: str) -> list[BlobInfo]:
        infos = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and rel.startswith(prefix) and not rel.startswith(self.META_DIR + "/"):
                if path.name.startswith(".") and path.name.endswith(".tmp"):
                    continue  # an upload in progress
                info = self.stat(rel)
                if info is not None:
                    infos.append(info)
        return infos

    def uri(self, name: str) -> str:
        return self._path(name).as_uri()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a hidden temporary name in the same folder, fsync, then rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

    def write(self, name: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None) -> BlobInfo:
        blob = self._bucket.blob(name)
        blob.metadata = metadata or None
        with transient("Cloud Storage", "upload object"):
            blob.upload_from_string(data, content_type=content_type, **self._call)
        return _info(blob)

    def delete(self, name: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            with transient("Cloud Storage", "delete object"):
                self._bucket.blob(name).delete(**self._call)
        except NotFound:
            pass

    def list(self, prefix: str) -> list[BlobInfo]:
        with transient("Cloud Storage", "list objects"):
            return sorted((_info(b) for b in self.client.list_blobs(self.bucket, prefix=prefix, **self._call)), key=lambda i: i.name)

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket}/{name}"


def _info(blob: Any) -> BlobInfo:
    return BlobInfo(
        name=blob.name,
        size=int(blob.size or 0),
        generation=int(blob.generation or 0),
        content_type=blob.content_type,
        metadata=dict(blob.metadata or {}),
    )

"""Object storage behind one small interface: a local folder (``folder.py``), or a Cloud Storage bucket (``gcs.py``).

Writes are atomic in both: an object is either absent or complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


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

    def write(self, name: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None,
              if_generation_match: int | None = None) -> BlobInfo:
        """Store ``data`` under ``name`` atomically, replacing any previous object.

        With ``if_generation_match`` (0: the object must not exist) the write happens only if the
        object's generation is still that one; otherwise ``PreconditionFailed``.
        """

    def write_file(self, name: str, path: Path, content_type: str, metadata: dict[str, str] | None = None,
                   if_generation_match: int | None = None) -> BlobInfo:
        """Like ``write``, from a local file streamed in chunks (never held in memory whole)."""

    def delete(self, name: str, if_generation_match: int | None = None) -> None:
        """Remove the object; a missing object is fine. A generation that no longer matches: ``PreconditionFailed``."""

    def list(self, prefix: str) -> list[BlobInfo]:
        """Objects whose names start with ``prefix``, sorted by name."""

    def uri(self, name: str) -> str:
        """A URI naming the object (``gs://`` or ``file://``)."""

"""Outputs that belong to one upload: writes and deletes fenced by the request's generation.

Every output object carries the generation of the request that made it
(metadata ``job_generation``). A write first reads the object's facts; if a newer
generation owns it, the write is refused. The write itself carries a generation
precondition (``if_generation_match`` on what was read; 0 when nothing was there),
so an older run paused between its check and its write fails the precondition,
reads again, sees the newer owner, and stops. A delete likewise removes only the
object its own generation wrote, under a precondition.

Cloud Storage enforces the preconditions; the embedded store does too (under a file
lock). The Storage emulator ignores them: there the check narrows the window but
cannot close it, which the tests state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from voicecloning.errors import PreconditionFailed
from voicecloning.stores.blobs import BlobInfo, BlobStore

OWNER_KEY = "job_generation"
TRIES = 3


def owner_of(info: BlobInfo | None) -> int | None:
    """The generation of the request that wrote the object, if it says."""
    if info is None:
        return None
    value = info.metadata.get(OWNER_KEY, "")
    return int(value) if value.isdigit() else None


def owned(info: BlobInfo | None, generation: int) -> bool:
    return owner_of(info) == generation


def write_owned(
    store: BlobStore, name: str, generation: int, content_type: str, metadata: dict[str, str],
    *, data: bytes | None = None, path: Path | None = None, before_write: Callable[[], None] | None = None,
) -> BlobInfo | None:
    """Write ``data`` (or the file at ``path``) unless a newer generation owns ``name``.

    Returns the stored object's facts, or None when a newer generation owns the name.
    ``before_write`` runs between the check and the write (lease checks; tests pause there).
    """
    meta = {**metadata, OWNER_KEY: str(generation)}
    for _ in range(TRIES):
        current = store.stat(name)
        owner = owner_of(current)
        if owner is not None and owner > generation:
            return None
        if before_write is not None:
            before_write()
        expected = current.generation if current is not None else 0
        try:
            if path is not None:
                return store.write_file(name, path, content_type, meta, if_generation_match=expected)
            assert data is not None
            return store.write(name, data, content_type, meta, if_generation_match=expected)
        except PreconditionFailed:
            continue  # someone wrote it in between: look again
    return None


def delete_owned(store: BlobStore, name: str, generation: int) -> bool:
    """Delete ``name`` only if this generation wrote it (and nobody rewrote it since)."""
    current = store.stat(name)
    if current is None or not owned(current, generation):
        return False
    try:
        store.delete(name, if_generation_match=current.generation)
    except PreconditionFailed:
        return False
    return True

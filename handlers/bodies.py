"""Upload bodies, read with bounds: never more than the route's limit, never more than the process can hold.

* ``RequestBody`` wraps the request's input stream. ``read(limit)`` refuses a
  declared ``Content-Length`` over the limit before reading a byte, reads a
  body of unknown length (chunked) in blocks and stops one byte past the
  limit, so no request makes the process hold more than ``limit`` + one block.
  ``unread`` says whether bytes may be left in the stream (the edge then
  answers without draining them: see ``main.http_api``).
* ``BodyBuffer`` caps the bytes all requests of the process hold at once
  (``VOICECLONING_UPLOAD_BUFFER_BYTES``): past it an upload is answered 503
  with ``Retry-After`` instead of growing the instance out of memory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from handlers.uploads import UploadRejected

BLOCK_BYTES = 64 * 1024


class Busy(UploadRejected):
    """The process already holds as many upload bytes as it may; the caller should retry soon (HTTP 503)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 503)


@dataclass
class RequestBody:
    """The request's body stream: ``declared`` is its Content-Length (None: unknown, e.g. chunked)."""

    stream: BinaryIO | None
    declared: int | None
    chunked: bool = False
    _consumed: bool = False

    @property
    def unread(self) -> bool:
        """True while the stream may still hold bytes that nobody has read."""
        if self._consumed or self.stream is None:
            return False
        return bool(self.declared) if self.declared is not None else self.chunked

    def read(self, limit: int) -> bytes:
        """The whole body, or ``UploadRejected`` (413) as soon as it is known to be over ``limit`` bytes."""
        if self.declared is not None and self.declared > limit:
            raise UploadRejected(f"the upload is {self.declared:,} bytes; the limit is {limit:,}.", 413)
        if not self.unread or self.stream is None:
            self._consumed = True
            return b""
        blocks: list[bytes] = []
        size = 0
        while size <= limit:
            block = self.stream.read(min(BLOCK_BYTES, limit + 1 - size))
            if not block:
                self._consumed = True
                break
            blocks.append(block)
            size += len(block)
        if size > limit:
            raise UploadRejected(f"the upload is more than {limit:,} bytes; the limit is {limit:,}.", 413)
        return b"".join(blocks)


@dataclass
class BodyBuffer:
    """At most ``capacity`` bytes of upload bodies held by the process at once, all requests together."""

    capacity: int
    held: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Reserve ``nbytes`` for one request's body while the block runs; ``Busy`` when they do not fit.

        One request alone always fits, so a capacity below the largest upload still serves them one by one.
        """
        with self._lock:
            if self.held and self.held + nbytes > self.capacity:
                raise Busy("the service is receiving many uploads just now; try again in a few seconds.")
            self.held += nbytes
        try:
            yield
        finally:
            with self._lock:
                self.held -= nbytes

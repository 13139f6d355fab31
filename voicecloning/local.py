"""The embedded default: a folder stands in for the input bucket, and this loop for Eventarc.

Files that appear (or change) in ``DATA/input/`` become the same storage
events Cloud Storage sends and go through the same handler. Like the
platform, the loop retries a handler that raises, with exponential backoff,
and acknowledges one that returns.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from voicecloning.events import FINALIZED, StorageEvent
from voicecloning.logs import fields
from voicecloning.routes import route
from voicecloning.services import Services
from voicecloning.stores.blobs import BlobInfo
from voicecloning.stores.folder import LocalBlobStore

log = logging.getLogger(__name__)
SETTLE_SECONDS = 0.5  # a file must be unchanged this long before it counts as uploaded


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    event: StorageEvent = field(compare=False)
    attempt: int = field(compare=False, default=1)


def event_for(info: BlobInfo, bucket: str, now: Callable[[], object]) -> StorageEvent:
    return StorageEvent(
        id=f"local-{info.name}-{info.generation}",
        type=FINALIZED,
        time=now(),  # type: ignore[arg-type]
        bucket=bucket,
        name=info.name,
        generation=info.generation,
        size=info.size,
        content_type=info.content_type,
        metadata=info.metadata,
    )


def _voices_first(info: BlobInfo) -> tuple[int, str]:
    """Clips before requests found in the same scan, so a request rarely waits for its voice."""
    target = route(info.name)
    return (0 if target is not None and target.kind != "request" else 1, info.name)


class LocalRunner:
    """Watch the input folder, deliver events to ``handle``, retry what raises."""

    def __init__(
        self,
        services: Services,
        handle: Callable[[StorageEvent, Services], object],
        *,
        poll_seconds: float = 0.5,
        max_backoff: float = 60.0,
        retry_window: float = 3600.0,
    ) -> None:
        assert isinstance(services.inputs, LocalBlobStore)
        self.services = services
        self.handle = handle
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self.retry_window = retry_window
        self._seen: dict[str, int] = {}
        self._settling: dict[str, tuple[int, int, float]] = {}
        self._queue: list[_Pending] = []
        self._seq = itertools.count()
        self.stop_event = threading.Event()
        self.handled = 0

    def scan(self) -> None:
        """Queue an event for each new or changed object that has settled."""
        inputs = self.services.inputs
        now = time.monotonic()
        for info in sorted(inputs.list(""), key=_voices_first):
            if self._seen.get(info.name) == info.generation:
                continue
            size_gen = (info.size, info.generation)
            previous = self._settling.get(info.name)
            if previous is None or previous[:2] != size_gen:
                self._settling[info.name] = (*size_gen, now)
                continue
            if now - previous[2] < SETTLE_SECONDS:
                continue
            del self._settling[info.name]
            self._seen[info.name] = info.generation
            event = event_for(info, inputs.bucket, self.services.clock)
            heapq.heappush(self._queue, _Pending(now, next(self._seq), event))

    def submit(self, info: BlobInfo) -> None:
        """Deliver the event for ``info`` now (one-shot commands), whatever the scan has seen."""
        self._seen[info.name] = info.generation
        event = event_for(info, self.services.inputs.bucket, self.services.clock)
        heapq.heappush(self._queue, _Pending(time.monotonic(), next(self._seq), event))

    def run_until(self, done: Callable[[], bool], timeout: float = 3600.0) -> bool:
        """Deliver queued events (with retries) until ``done()``; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done() and not self._queue:
                return True
            if not self.step():
                time.sleep(0.1)
        return False

    def step(self) -> bool:
        """Deliver the next due event, if any. True if one was delivered."""
        if not self._queue or self._queue[0].due > time.monotonic():
            return False
        pending = heapq.heappop(self._queue)
        try:
            self.handle(pending.event, self.services)
            self.handled += 1
        except Exception as exc:  # noqa: BLE001 -- the platform's contract: an exception means "redeliver"
            age = (self.services.clock() - pending.event.time).total_seconds()
            if age > self.retry_window:
                log.error("giving up redelivery", exc_info=exc, extra=fields(object=pending.event.name))
                return True
            delay = min(self.max_backoff, 0.5 * 2 ** (pending.attempt - 1))
            log.warning("redelivering later", extra=fields(object=pending.event.name, delay_s=delay,
                                                              delivery=pending.attempt, error=str(exc)[:300]))
            heapq.heappush(self._queue, _Pending(time.monotonic() + delay, next(self._seq), pending.event,
                                                 pending.attempt + 1))
        return True

    def run(self) -> None:
        log.info("serving", extra=fields(input=str(self.services.inputs.root)))  # type: ignore[attr-defined]
        while not self.stop_event.is_set():
            self.scan()
            while self.step():
                pass
            self.stop_event.wait(self.poll_seconds)

    def idle(self) -> bool:
        return not self._queue and not self._settling

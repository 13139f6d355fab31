"""A local stand-in for Eventarc: new objects in the Storage emulator become CloudEvents for the worker.

The Cloud Storage emulator emits no notifications, so for local development
this bridge polls the input bucket's listing and, for every object it has not
seen (name + generation), POSTs the binary-mode CloudEvent
``google.cloud.storage.object.v1.finalized`` that Eventarc would send. Like
Eventarc it redelivers while the worker answers 5xx (or cannot be reached),
backing off exponentially, and gives up after ``max_attempts``. Objects that
exist when the bridge starts are not announced (Eventarc only reports new
ones). It is a development tool only: in the cloud, Eventarc does this.

    python -m voicecloning.devbridge --worker http://127.0.0.1:8080 \
        --storage http://127.0.0.1:9023 --bucket voicecloning-input
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from voicecloning.events import FINALIZED

log = logging.getLogger(__name__)


def finalized_event(blob: Any, *, event_id: str | None = None, when: datetime | None = None) -> CloudEvent:
    """The CloudEvent Eventarc sends when ``blob`` (a google-cloud-storage Blob) is finalized."""
    created = when or blob.time_created or datetime.now(UTC)
    stamp = created.astimezone(UTC).isoformat().replace("+00:00", "Z")
    attributes = {
        "id": event_id or f"devbridge-{blob.bucket.name}-{blob.name}-{blob.generation}",
        "type": FINALIZED,
        "source": f"//storage.googleapis.com/projects/_/buckets/{blob.bucket.name}",
        "subject": f"objects/{blob.name}",
        "time": stamp,  # when the object was finalized, as Eventarc reports it
        "specversion": "1.0",
        "datacontenttype": "application/json",
    }
    data = {
        "kind": "storage#object",
        "bucket": blob.bucket.name,
        "name": blob.name,
        "generation": str(blob.generation),
        "metageneration": str(blob.metageneration or 1),
        "contentType": blob.content_type,
        "size": str(blob.size),
        "metadata": blob.metadata or {},
        "timeCreated": stamp,
        "updated": stamp,
    }
    return CloudEvent(attributes, data)


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    event: CloudEvent = field(compare=False)
    attempt: int = field(default=0, compare=False)


class Bridge:
    """Poll ``bucket`` and deliver each new object's event to ``worker_url``, one at a time."""

    def __init__(self, client: Any, bucket: str, worker_url: str, *, interval: float = 0.5,
                 backoff: float = 0.5, max_backoff: float = 30.0, max_attempts: int = 20,
                 timeout: float = 600.0) -> None:
        self.client, self.bucket, self.worker_url = client, bucket, worker_url
        self.interval, self.backoff, self.max_backoff = interval, backoff, max_backoff
        self.max_attempts, self.timeout = max_attempts, timeout
        self.seen: set[tuple[str, int]] = set()
        self.delivered: list[tuple[str, int]] = []  # (object name, final status) for logs and tests
        self._queue: list[_Pending] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _listing(self) -> list[Any]:
        return list(self.client.list_blobs(self.bucket))

    def skip_existing(self) -> None:
        """Remember what is already there, so only objects created from now on are announced."""
        self.seen.update((b.name, int(b.generation)) for b in self._listing())

    def poll(self) -> int:
        """Queue an event for every new object (oldest first); how many were queued."""
        fresh = [b for b in self._listing() if (b.name, int(b.generation)) not in self.seen]
        fresh.sort(key=lambda b: (b.time_created or datetime.now(UTC), b.name))
        for blob in fresh:
            self.seen.add((blob.name, int(blob.generation)))
            heapq.heappush(self._queue, _Pending(time.monotonic(), next(self._seq), finalized_event(blob)))
        return len(fresh)

    def deliver_due(self) -> None:
        """POST every event whose time has come; reschedule those the worker answered 5xx."""
        while self._queue and self._queue[0].due <= time.monotonic() and not self._stop.is_set():
            item = heapq.heappop(self._queue)
            name = item.event.data["name"]
            headers, body = to_binary(item.event)
            try:
                status = requests.post(self.worker_url, headers=headers, data=body, timeout=self.timeout).status_code
            except requests.RequestException as exc:
                log.warning("worker unreachable: %s", exc)
                status = 503
            item.attempt += 1
            if status < 500:
                log.info("delivered %s -> %s (attempt %d)", name, status, item.attempt)
                self.delivered.append((name, status))
            elif item.attempt >= self.max_attempts:
                log.error("gave up on %s after %d attempts (last status %s)", name, item.attempt, status)
                self.delivered.append((name, status))
            else:
                delay = min(self.max_backoff, self.backoff * 2 ** (item.attempt - 1))
                log.info("worker answered %s for %s; redelivering in %.1fs", status, name, delay)
                item.due = time.monotonic() + delay
                heapq.heappush(self._queue, item)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - the emulator may restart; keep polling, as Eventarc would
                log.warning("listing %s failed: %s", self.bucket, exc)
            self.deliver_due()
            self._stop.wait(self.interval)

    def start(self) -> Bridge:
        """Run in a daemon thread (tests); ``stop()`` ends it."""
        self.skip_existing()
        self._thread = threading.Thread(target=self.run, name="devbridge", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def storage_client(storage_url: str, project: str) -> Any:
    """An anonymous google-cloud-storage client for the emulator at ``storage_url``."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=project, credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": storage_url})


def main(argv: list[str] | None = None) -> None:
    from voicecloning.settings import Settings

    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m voicecloning.devbridge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", required=True, help="URL of functions-framework serving on_object_finalized")
    parser.add_argument("--storage", default=settings.storage_emulator_host,
                        help="Storage emulator URL (default: STORAGE_EMULATOR_HOST)")
    parser.add_argument("--bucket", default=settings.input_bucket, help="input bucket (default: VOICECLONING_INPUT_BUCKET)")
    parser.add_argument("--project", default=settings.project or "demo-voicecloning")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between listings")
    parser.add_argument("--max-attempts", type=int, default=20)
    parser.add_argument("--replay-existing", action="store_true", help="also announce objects already there")
    args = parser.parse_args(argv)
    if not args.storage:
        parser.error("--storage (or STORAGE_EMULATOR_HOST) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s devbridge %(message)s")
    bridge = Bridge(storage_client(args.storage, args.project), args.bucket, args.worker,
                    interval=args.interval, max_attempts=args.max_attempts)
    if not args.replay_existing:
        bridge.skip_existing()
    log.info("watching gs://%s on %s -> %s", args.bucket, args.storage, args.worker)
    with contextlib.suppress(KeyboardInterrupt):
        bridge.run()


if __name__ == "__main__":
    main()

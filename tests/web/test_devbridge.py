"""The development bridge (the local stand-in for Eventarc) delivers each new object once, as a
binary-mode ``object.finalized`` CloudEvent, and redelivers while the worker answers 5xx.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from voicecloning.devbridge import Bridge


class FakeWorker:
    """Answers each POST with the next status from ``script`` (then 200), recording what it got."""

    def __init__(self, script: list[int]) -> None:
        self.script, self.received = list(script), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(outer.script.pop(0) if outer.script else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class FakeBucket:
    """What the bridge needs of a google-cloud-storage client: list_blobs."""

    def __init__(self) -> None:
        self.blobs: list[Any] = []

    def add(self, name: str, generation: int) -> None:
        self.blobs.append(SimpleNamespace(
            name=name, generation=generation, metageneration=1, size=10, content_type="audio/wav", metadata={},
            time_created=datetime.now(UTC), bucket=SimpleNamespace(name="in")))

    def list_blobs(self, bucket: str) -> list[Any]:
        return list(self.blobs)


@pytest.fixture
def worker() -> Iterator[FakeWorker]:
    w = FakeWorker([503, 500])
    yield w
    w.server.shutdown()
    w.server.server_close()


def test_a_new_object_is_delivered_as_a_binary_cloudevent_and_redelivered_on_5xx(worker: FakeWorker) -> None:
    """Objects there at start are not announced; a new one is posted until the worker answers 200."""
    bucket = FakeBucket()
    bucket.add("users/u1/voices/old.wav", 1)
    bridge = Bridge(bucket, "in", worker.url, interval=0.01, backoff=0.01)
    bridge.skip_existing()
    bucket.add("users/u1/voices/new.wav", 7)
    assert bridge.poll() == 1 and bridge.poll() == 0
    while bridge._queue:
        bridge.deliver_due()
    assert bridge.delivered == [("users/u1/voices/new.wav", 200)]
    assert len(worker.received) == 3
    headers, body = worker.received[-1]
    assert headers["ce-type"] == "google.cloud.storage.object.v1.finalized"
    assert headers["ce-subject"] == "objects/users/u1/voices/new.wav"
    assert headers["ce-source"] == "//storage.googleapis.com/projects/_/buckets/in"
    assert b'"generation": "7"' in body and b'"bucket": "in"' in body


def test_a_new_generation_of_the_same_name_is_a_new_event(worker: FakeWorker) -> None:
    """Re-uploading an object (a new generation) is announced again, like Cloud Storage does."""
    bucket = FakeBucket()
    bridge = Bridge(bucket, "in", worker.url, interval=0.01, backoff=0.01)
    bucket.add("users/u1/requests/j.json", 1)
    bucket.add("users/u1/requests/j.json", 2)
    assert bridge.poll() == 2

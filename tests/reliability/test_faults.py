"""Faults while a job runs: the worker killed (-9), Firestore stopped, Cloud Storage stopped.

One functions-framework worker over real HTTP, with its own Firestore emulator (kept durable
across a crash by export/import) and its own Storage emulator (objects on disk), so that both
can be stopped and restarted on the same port. The lease is short (5 s) so a dead worker's
claim expires quickly; each job is long enough (many items) to be interrupted mid-way.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from tests.conftest import INPUT_BUCKET, OUTPUT_BUCKET, gcp_env
from tests.reliability.conftest import (
    DurableFirestore,
    deliver_patiently,
    disk_storage_emulator,
    log_file_lines,
    matching,
    request_bytes,
    wait_for,
)
from tests.support import cloud
from tests.support.servers import Server

pytestmark = pytest.mark.integration

LEASE_SECONDS = 5
SENTENCES = ["The first item.", "A second one.", "Then a third.", "And the fourth.", "Five is here.",
             "Six follows.", "Seven now.", "Eight comes next.", "Nine is near.", "Ten at last.",
             "Eleven more.", "Twelve to end."]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory, logs_dir: Path) -> Iterator[Server]:
    server = disk_storage_emulator(logs_dir, tmp_path_factory.mktemp("storage-disk")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def env(durable_firestore: DurableFirestore, storage: Server, dev_model_dir: Path) -> dict[str, str]:
    return gcp_env(durable_firestore.server, storage, dev_model_dir, VOICECLONING_LEASE_SECONDS=str(LEASE_SECONDS),
                   VOICECLONING_MAX_AUDIO_TOKENS="8")


@pytest.fixture(scope="module")
def voice(gcs: Any, db: Any, worker: Server, clip_bytes: bytes) -> str:
    blob = cloud.upload(gcs.bucket(INPUT_BUCKET), "voices/f-v.wav", clip_bytes, "audio/wav")
    assert deliver_patiently(worker.url, cloud.storage_cloudevent(blob))[-1] == 200
    assert db.document("voices/f-v").get().get("status") == "ready"
    return "f-v"


class _Delivery:
    """One delivery posted in the background (the worker may die or fail while it runs)."""

    def __init__(self, url: str, event: Any) -> None:
        self.status: int | None = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None
        self._thread = threading.Thread(target=self._run, args=(url, event), daemon=True)
        self._thread.start()

    def _run(self, url: str, event: Any) -> None:
        try:
            self.status = cloud.post_event(url, event, timeout=120).status_code
        except Exception as exc:  # noqa: BLE001 -- a killed worker drops the connection
            self.error = exc
        self.finished_at = time.monotonic()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the delivery did not finish"


def _long_job(gcs: Any, worker: Server, db: Any, job: str, voice: str) -> tuple[Any, Any, _Delivery]:
    """Upload a many-item request, post its event in the background, return once synthesis is under way."""
    body = request_bytes(items=[{"text": s} for s in SENTENCES], voice_id=voice, language="en")
    blob = cloud.upload(gcs.bucket(INPUT_BUCKET), f"requests/{job}.json", body, "application/json")
    event = cloud.storage_cloudevent(blob)
    delivery = _Delivery(worker.url, event)

    def under_way() -> bool:  # planned, part 0 done, a later part claimed and rendering
        doc = db.document(f"jobs/{job}").get().to_dict() or {}
        return doc.get("status") == "processing" and any(
            p["index"] > 0 and p["status"] == "processing" for p in _parts(db, job))

    wait_for(under_way, 120, 0.05, f"{job} to be part-way through synthesis")
    return blob, event, delivery


def _parts(db: Any, job: str) -> list[dict[str, Any]]:
    """The job's part documents, by index."""
    docs = [snap.to_dict() for snap in db.collection(f"jobs/{job}/parts").stream()]
    return sorted(docs, key=lambda d: d["index"])


def _interrupted(db: Any, job: str) -> dict[str, Any]:
    """The one part that was under way when the fault struck (every other part is done)."""
    waiting = [p for p in _parts(db, job) if p["status"] != "done"]
    assert len(waiting) == 1, waiting
    return waiting[0]


def _assert_done_once(gcs: Any, db: Any, job: str, part_attempts: int) -> dict[str, Any]:
    """Done, planned once; the interrupted part took part_attempts claims, every other part one."""
    doc = db.document(f"jobs/{job}").get().to_dict()
    assert doc["status"] == "done" and doc["attempts"] == 1 and doc["lease"] is None, doc
    assert doc["items"] == len(SENTENCES) and doc["progress"] == 1.0
    parts = _parts(db, job)
    assert len(parts) == doc["parts_total"] == doc["parts_done"] >= 2
    assert all(p["status"] == "done" and p["lease"] is None for p in parts), parts
    assert sorted(p["attempts"] for p in parts) == [1] * (len(parts) - 1) + [part_attempts], parts
    data = gcs.bucket(OUTPUT_BUCKET).blob(f"outputs/{job}.wav").download_as_bytes()
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == 24000 and len(audio) / rate == pytest.approx(doc["duration_s"], abs=0.01)
    return doc


def _no_output(gcs: Any, job: str) -> bool:
    return not gcs.bucket(OUTPUT_BUCKET).blob(f"outputs/{job}.wav").exists()


def test_a_worker_killed_mid_synthesis_is_finished_by_a_redelivery(
    gcs: Any, db: Any, worker: Server, voice: str
) -> None:
    """kill -9 of the functions-framework process mid-job; a restarted worker finishes it once the lease expires."""
    _blob, event, delivery = _long_job(gcs, worker, db, "f-kill", voice)
    worker.kill()
    try:
        delivery.join(30)
        assert delivery.status is None and delivery.error is not None  # the connection died with the worker
        assert db.document("jobs/f-kill").get().get("status") == "processing"
        assert _interrupted(db, "f-kill")["status"] == "processing"  # its lease is left to expire
        assert _no_output(gcs, "f-kill")
    finally:
        worker.start()  # the later tests need it whatever happened here
    codes = deliver_patiently(worker.url, event, within=180)
    assert codes[-1] == 200, codes
    _assert_done_once(gcs, db, "f-kill", part_attempts=2)
    lines = log_file_lines(worker.log_path)
    assert matching(lines, "claimed", job_id="f-kill", attempt=2)
    assert len(matching(lines, "job done", job_id="f-kill")) == 1


def test_firestore_stopped_mid_job_fails_fast_and_succeeds_once_it_is_back(
    gcs: Any, db: Any, worker: Server, voice: str, durable_firestore: DurableFirestore
) -> None:
    """Firestore down during synthesis: HTTP 500 within seconds, no output; after restart a redelivery finishes."""
    _blob, event, delivery = _long_job(gcs, worker, db, "f-firestore", voice)
    durable_firestore.crash()
    stopped = time.monotonic()
    delivery.join(90)
    assert delivery.status == 500, (delivery.status, delivery.error)
    assert delivery.finished_at is not None and delivery.finished_at - stopped < 30
    assert _no_output(gcs, "f-firestore")  # nothing half-written
    assert cloud.post_event(worker.url, event).status_code == 500  # still down: still retried
    durable_firestore.restart()
    codes = deliver_patiently(worker.url, event, within=180)
    assert codes[-1] == 200, codes
    _assert_done_once(gcs, db, "f-firestore", part_attempts=2)
    lines = log_file_lines(worker.log_path)
    retry = matching(lines, "will retry", job_id="f-firestore")
    assert retry and "Firestore unavailable" in retry[0]["reason"] and retry[0]["severity"] == "ERROR"


def test_storage_stopped_mid_job_fails_fast_and_succeeds_once_it_is_back(
    gcs: Any, db: Any, worker: Server, voice: str, storage: Server
) -> None:
    """Cloud Storage down during synthesis: the part's upload fails, HTTP 500, the part back to queued; restart,
    redeliver, done."""
    _blob, event, delivery = _long_job(gcs, worker, db, "f-storage", voice)
    storage.kill()
    try:
        delivery.join(120)
        assert delivery.status == 500, (delivery.status, delivery.error)
        job = db.document("jobs/f-storage").get().to_dict()
        assert job["status"] == "processing" and job["output_uri"] is None
        part = _interrupted(db, "f-storage")
        assert part["status"] == "queued" and part["attempts"] == 1 and part["lease"] is None
        assert "Cloud Storage unavailable" in part["last_error"]
        # A redelivery while Storage is still down re-queues the part, which fails reading its voice: 500, counted.
        assert cloud.post_event(worker.url, event).status_code == 500
        assert _interrupted(db, "f-storage")["attempts"] == 2
    finally:
        storage.start()
    assert _no_output(gcs, "f-storage")
    codes = deliver_patiently(worker.url, event, within=120)
    assert codes[-1] == 200, codes
    _assert_done_once(gcs, db, "f-storage", part_attempts=3)

"""The pipeline over real connections: functions-framework serving real CloudEvents over HTTP,
the official Firestore emulator, the Cloud Storage emulator, and XTTS's real classes (tiny dev model).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import INPUT_BUCKET, OUTPUT_BUCKET, functions_server, gcp_env
from tests.support import cloud
from tests.support.clips import speech_clip
from tests.support.servers import Server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(firestore_server: Server, storage_server: Server, dev_model_dir: Path) -> dict[str, str]:
    return gcp_env(firestore_server, storage_server, dev_model_dir)


@pytest.fixture(scope="module")
def api(env: dict[str, str], logs_dir: Path) -> Iterator[Server]:
    server = functions_server("http_api", env, logs_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speech_clip(tmp_path_factory.mktemp("clips") / "ref.wav", seconds=8).read_bytes()


def _enroll(gcs: Any, worker: Server, name: str, clip: bytes, mode: str = "binary") -> Any:
    blob = cloud.upload(gcs.bucket(INPUT_BUCKET), name, clip, "audio/wav")
    codes = cloud.deliver(worker.url, cloud.storage_cloudevent(blob), mode)
    assert codes[-1] == 200, codes
    return blob


def _request(gcs: Any, worker: Server, name: str, mode: str = "structured", **body: Any) -> Any:
    blob = cloud.upload(gcs.bucket(INPUT_BUCKET), name, cloud.request_json(**body), "application/json")
    codes = cloud.deliver(worker.url, cloud.storage_cloudevent(blob), mode)
    assert codes[-1] == 200, codes
    return blob


def test_a_clip_becomes_a_ready_voice_with_stored_latents(gcs: Any, db: Any, worker: Server, clip_bytes: bytes) -> None:
    """A binary-mode CloudEvent for voices/alice.wav yields a ready voice document and its latents object."""
    blob = _enroll(gcs, worker, "voices/alice.wav", clip_bytes, mode="binary")
    doc = db.document("voices/alice").get().to_dict()
    assert doc["status"] == "ready", doc
    assert doc["error"] is None
    assert doc["source"] == {"bucket": INPUT_BUCKET, "name": "voices/alice.wav", "generation": str(blob.generation)}
    assert 6.0 < doc["clip"]["duration_s"] <= 8.0 and doc["clip"]["sample_rate"] == 22050
    assert doc["model_name"].startswith("xtts_v2-dev-random")
    assert doc["latents_uri"] == f"gs://{OUTPUT_BUCKET}/{doc['latents_object']}"
    assert gcs.bucket(OUTPUT_BUCKET).blob(doc["latents_object"]).exists()
    assert doc["created_at"] <= doc["finished_at"]


def test_a_request_becomes_a_done_job_with_a_24khz_wav(gcs: Any, db: Any, worker: Server, clip_bytes: bytes) -> None:
    """A structured-mode CloudEvent for requests/job1.json moves the job queued -> processing -> done."""
    _enroll(gcs, worker, "voices/bob.wav", clip_bytes)
    seen: list[str] = []
    changed = threading.Event()

    def on_snapshot(snaps: list[Any], _changes: Any, _read_time: Any) -> None:
        for snap in snaps:
            if snap.exists and (not seen or seen[-1] != snap.get("status")):
                seen.append(snap.get("status"))
                changed.set()

    watch = db.document("jobs/job1").on_snapshot(on_snapshot)
    try:
        _request(gcs, worker, "requests/job1.json", text="Hello there. This is a test.", voice_id="bob", language="en")
        deadline = time.monotonic() + 60  # the listener may lag under load; it ends as soon as done is seen
        while "done" not in seen and time.monotonic() < deadline:
            changed.wait(0.5)
    finally:
        watch.unsubscribe()
    doc = db.document("jobs/job1").get().to_dict()
    assert doc["status"] == "done", doc
    # A listener sees the states in order but may skip some (Firestore coalesces quick changes).
    order = ["queued", "processing", "done"]
    assert seen and seen[-1] == "done" and [order.index(s) for s in seen] == sorted(order.index(s) for s in seen), seen
    assert doc["progress"] == 1.0 and doc["error"] is None
    assert doc["voice_id"] == "bob" and doc["language"] == "en"
    assert doc["output_uri"] == f"gs://{OUTPUT_BUCKET}/outputs/job1.wav"
    assert doc["created_at"] <= doc["started_at"] <= doc["finished_at"]
    data = gcs.bucket(OUTPUT_BUCKET).blob("outputs/job1.wav").download_as_bytes()
    rate, seconds, peak = cloud.wav_facts(data)
    assert rate == 24000 == doc["sample_rate"]
    assert seconds == pytest.approx(doc["duration_s"], abs=0.01)
    assert 0.5 < seconds < 5.0  # capped tokens: about 1 s of (noise) audio per segment
    assert peak > 0.0


def test_a_duplicate_delivery_changes_nothing(gcs: Any, db: Any, worker: Server, clip_bytes: bytes) -> None:
    """The same event delivered again is acknowledged and leaves the document and output as they were."""
    _enroll(gcs, worker, "voices/carol.wav", clip_bytes)
    blob = _request(gcs, worker, "requests/dup1.json", text="Once only.", voice_id="carol")
    before = db.document("jobs/dup1").get().to_dict()
    output = gcs.bucket(OUTPUT_BUCKET).get_blob("outputs/dup1.wav")
    assert cloud.post_event(worker.url, cloud.storage_cloudevent(blob)).status_code == 200
    after = db.document("jobs/dup1").get().to_dict()
    assert after == before
    assert gcs.bucket(OUTPUT_BUCKET).get_blob("outputs/dup1.wav").generation == output.generation


def test_an_unsupported_language_fails_with_the_supported_list(gcs: Any, db: Any, worker: Server, clip_bytes: bytes) -> None:
    """Thai is not an XTTS-v2 language: the job fails and says which languages are supported."""
    _enroll(gcs, worker, "voices/dave.wav", clip_bytes)
    _request(gcs, worker, "requests/thai.json", text="สวัสดีครับ", voice_id="dave", language="th")
    doc = db.document("jobs/thai").get().to_dict()
    assert doc["status"] == "failed"
    assert "'th' is not supported" in doc["error"] and "hi" in doc["error"] and "zh-cn" in doc["error"]
    assert not gcs.bucket(OUTPUT_BUCKET).blob("outputs/thai.wav").exists()


def test_a_user_cannot_use_another_users_voice(gcs: Any, db: Any, worker: Server, clip_bytes: bytes) -> None:
    """users/u1's voice is invisible to users/u2's request; u1's own request uses it."""
    _enroll(gcs, worker, "users/u1/voices/mine.wav", clip_bytes)
    assert db.document("users/u1/voices/mine").get().get("status") == "ready"
    _request(gcs, worker, "users/u2/requests/steal.json", text="Not yours.", voice_id="mine")
    stolen = db.document("users/u2/jobs/steal").get().to_dict()
    assert stolen["status"] == "failed" and "'mine' does not exist" in stolen["error"]
    _request(gcs, worker, "users/u1/requests/own.json", text="Mine.", voice_id="mine")
    own = db.document("users/u1/jobs/own").get().to_dict()
    assert own["status"] == "done"
    assert own["output_uri"] == f"gs://{OUTPUT_BUCKET}/users/u1/outputs/own.wav"


def test_objects_outside_the_layout_are_acknowledged_and_ignored(gcs: Any, db: Any, worker: Server) -> None:
    """An object the service does not own gets 200 and no document."""
    blob = cloud.upload(gcs.bucket(INPUT_BUCKET), "misc/notes.txt", b"hello", "text/plain")
    assert cloud.post_event(worker.url, cloud.storage_cloudevent(blob)).status_code == 200
    assert [d.id for d in db.collection("misc").stream()] == []


def test_a_malformed_cloudevent_is_rejected_with_400(worker: Server) -> None:
    """functions-framework refuses an HTTP request that is not a CloudEvent."""
    resp = requests.post(worker.url, data=b"not an event", headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 400


def test_health_answers_without_loading_the_model(api: Server) -> None:
    resp = requests.get(api.url + "/health", timeout=30)
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "healthy" and "timestamp" in body
    info = requests.get(api.url + "/model/info", timeout=30).json()
    assert "loaded" not in info  # the API never loads weights; a worker's own state is under "worker"


def test_model_info_reports_languages_from_the_model_config(api: Server) -> None:
    info = requests.get(api.url + "/model/info", timeout=30).json()
    assert info["success"] is True
    assert info["model_type"] == "xtts"
    assert len(info["languages"]) == 17 and "hi" in info["languages"] and "th" not in info["languages"]
    assert "device" not in info and set(info["describes"]) == {"model", "worker"}
    assert requests.get(api.url + "/nope", timeout=30).status_code == 404

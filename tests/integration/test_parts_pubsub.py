"""Books across instances: parts rendered by two functions-framework workers that receive
Pub/Sub push deliveries from the official Pub/Sub emulator, on the Firestore and Storage emulators.

Every delivery goes through the real formats: Cloud Storage notifications (JSON_API_V1) and
part tasks are published to emulator topics whose push subscriptions POST to a stand-in for
Cloud Run's front end (``tests/support/balancer.py``: one idle instance per request, 429 when
both are busy). The Storage emulator emits no notifications, so the test publishes the one
Cloud Storage would (the documented bridge). The task topic has two push subscriptions, so
every part task is delivered twice, concurrently.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import soundfile as sf

from tests.conftest import INPUT_BUCKET, OUTPUT_BUCKET, PROJECT, functions_server, gcp_env
from tests.support import cloud
from tests.support.balancer import Balancer
from tests.support.clips import speech_clip
from tests.support.servers import Server, pubsub_emulator

pytestmark = pytest.mark.integration
TASKS, NOTIFY = "part-tasks", "storage-events"
SENTENCE = "Sentence {n} of the chapter is read aloud here."


@pytest.fixture(scope="module")
def pubsub(logs_dir: Path) -> Iterator[Server]:
    server = pubsub_emulator(logs_dir).start(ready_path="/v1/projects/x/topics")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def env(firestore_server: Server, storage_server: Server, pubsub: Server, dev_model_dir: Path) -> dict[str, str]:
    return gcp_env(firestore_server, storage_server, dev_model_dir, PUBSUB_EMULATOR_HOST=pubsub.host,
                   VOICECLONING_TASKS_TOPIC=f"projects/{PROJECT}/topics/{TASKS}",
                   VOICECLONING_PART_AUDIO_SECONDS="3", VOICECLONING_FIRST_PART_AUDIO_SECONDS="3",
                   VOICECLONING_LEASE_SECONDS="8",
                   VOICECLONING_PRECISION="auto")  # the production default (int8 GPT + bf16 decoder on CPU)


@pytest.fixture(scope="module")
def workers(env: dict[str, str], logs_dir: Path) -> Iterator[list[Server]]:
    servers = [functions_server("on_push", env, logs_dir).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def front(workers: list[Server], pubsub: Server) -> Iterator[Balancer]:
    balancer = Balancer([w.url for w in workers]).start()
    api = f"{pubsub.url}/v1/projects/{PROJECT}"
    for topic in (TASKS, NOTIFY):
        requests.put(f"{api}/topics/{topic}", json={}, timeout=10).raise_for_status()
    subscriptions = {f"{TASKS}-push": (TASKS, "/tasks"), f"{TASKS}-again": (TASKS, "/tasks"),
                     f"{NOTIFY}-push": (NOTIFY, "/storage")}
    for name, (topic, path) in subscriptions.items():
        body = {"topic": f"projects/{PROJECT}/topics/{topic}", "ackDeadlineSeconds": 600,
                "pushConfig": {"pushEndpoint": balancer.url + path}}
        requests.put(f"{api}/subscriptions/{name}", json=body, timeout=10).raise_for_status()
    yield balancer
    balancer.stop()


@pytest.fixture(scope="module")
def publish(pubsub: Server) -> Any:
    def send(topic: str, data: bytes, attributes: dict[str, str]) -> None:
        body = {"messages": [{"data": base64.b64encode(data).decode(), "attributes": attributes}]}
        reply = requests.post(f"{pubsub.url}/v1/projects/{PROJECT}/topics/{topic}:publish", json=body, timeout=10)
        reply.raise_for_status()

    return send


def _notification(blob: Any) -> dict[str, Any]:
    """What Cloud Storage publishes for a finalized object (payload format JSON_API_V1): data and attributes."""
    blob.reload()
    resource = {"kind": "storage#object", "bucket": blob.bucket.name, "name": blob.name,
                "generation": str(blob.generation), "size": str(blob.size), "contentType": blob.content_type,
                "metadata": blob.metadata or {}}
    return {"data": base64.b64encode(json.dumps(resource).encode()).decode(), "attributes": {
        "eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "bucketId": blob.bucket.name,
        "objectId": blob.name, "objectGeneration": str(blob.generation),
        "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z")}}


def _notify(publish: Any, blob: Any) -> None:
    message = _notification(blob)
    publish(NOTIFY, base64.b64decode(message["data"]), message["attributes"])


def _upload(gcs: Any, publish: Any, name: str, data: bytes, content_type: str) -> Any:
    blob = cloud.upload(gcs.bucket(INPUT_BUCKET), name, data, content_type)
    _notify(publish, blob)
    return blob


def _wait(db: Any, path: str, check: Any, timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        snap = db.document(path).get()
        doc = snap.to_dict() if snap.exists else {}
        if check(doc):
            return doc
        time.sleep(0.1)
    raise AssertionError(f"{path} did not get there in {timeout:.0f} s: {doc}")


def _parts(db: Any, job_path: str) -> dict[int, dict[str, Any]]:
    return {int(s.id): s.to_dict() for s in db.collection(f"{job_path}/parts").stream()}


def _text(count: int, start: int = 0) -> str:
    return " ".join(SENTENCE.format(n=n) for n in range(start, start + count))


@pytest.fixture(scope="module")
def voice(gcs: Any, db: Any, front: Balancer, publish: Any, workers: list[Server],
          tmp_path_factory: pytest.TempPathFactory) -> str:
    """The voice every job reads with, enrolled through Pub/Sub. First each instance enrolls a voice of its
    own, pushed to it directly, so that both have loaded the model (warm, as after Cloud Run's startup):
    a cold instance would still be loading while the warm one renders every part."""
    clip = speech_clip(tmp_path_factory.mktemp("clips") / "ref.wav", seconds=6).read_bytes()
    for n, worker in enumerate(workers):
        blob = cloud.upload(gcs.bucket(INPUT_BUCKET), f"voices/warm-{n}.wav", clip, "audio/wav")
        envelope = {"subscription": "direct", "message": {"messageId": f"warm-{n}", **_notification(blob)}}
        assert requests.post(worker.url + "/storage", json=envelope, timeout=300).status_code == 204
    _upload(gcs, publish, "voices/reader.wav", clip, "audio/wav")
    _wait(db, "voices/reader", lambda d: d.get("status") == "ready")
    return "reader"


def _audio(gcs: Any, name: str) -> tuple[Any, int]:
    return sf.read(io.BytesIO(gcs.bucket(OUTPUT_BUCKET).blob(name).download_as_bytes()), dtype="float32")


def test_a_long_job_is_split_across_both_workers_and_parts_play_while_it_renders(
    gcs: Any, db: Any, front: Balancer, publish: Any, voice: str
) -> None:
    """Parts go to both instances; part 0 is downloadable and decodable while the job is still processing;
    the final file's duration is the sum of the parts and the designed pauses (+/- 50 ms)."""
    _upload(gcs, publish, "requests/pp-book.json", cloud.request_json(text=_text(32), voice_id=voice),
            "application/json")
    early = _wait(db, "jobs/pp-book", lambda d: d.get("first_audio_at") is not None or d.get("status") == "done")
    assert early["status"] == "processing", "the job finished before its first part could be heard"
    first = _parts(db, "jobs/pp-book")[0]
    samples, rate = _audio(gcs, first["output_object"])
    assert rate == 24000 and abs(len(samples) / rate - first["duration_s"]) < 0.01 and len(samples) > 0
    done = _wait(db, "jobs/pp-book", lambda d: d.get("status") in ("done", "failed"))
    assert done["status"] == "done", done.get("error")
    parts = _parts(db, "jobs/pp-book")
    assert done["parts_total"] == done["parts_done"] == len(parts) >= 6
    assert {p["status"] for p in parts.values()} == {"done"}
    assert len({p["worker"] for p in parts.values()}) == 2, "both instances rendered parts"
    expected = sum(p["duration_s"] for p in parts.values()) + sum(p["pause_before_s"] for i, p in parts.items() if i)
    final, rate = _audio(gcs, done["output_object"])
    assert rate == 24000 and abs(len(final) / rate - expected) <= 0.05
    assert abs(done["duration_s"] - expected) <= 0.05
    _wait_parts_removed(gcs, "pp-book")
    assert done["first_audio_at"] <= done["finished_at"]


def _wait_parts_removed(gcs: Any, job_id: str) -> None:
    deadline = time.monotonic() + 30  # the assembler removes the parts right after recording done
    while (left := [b.name for b in gcs.bucket(OUTPUT_BUCKET).list_blobs(prefix=f"outputs/{job_id}/parts/")]):
        assert time.monotonic() < deadline, f"parts are not removed after assembly: {left}"
        time.sleep(0.1)


def test_duplicate_part_deliveries_change_nothing(gcs: Any, db: Any, front: Balancer, publish: Any, voice: str) -> None:
    """Each task arrived twice (two subscriptions); redelivering every task again after the job is done
    leaves every document and the output as they were."""
    _upload(gcs, publish, "requests/pp-dup.json", cloud.request_json(text=_text(6), voice_id=voice),
            "application/json")
    # Done, and settled: the usage line is added by its own task just after.
    done = _wait(db, "jobs/pp-dup", lambda d: d.get("status") == "failed" or (d.get("status") == "done" and d.get("usage")))
    assert done["status"] == "done", done.get("error")
    _wait_parts_removed(gcs, "pp-dup")
    before_parts = _parts(db, "jobs/pp-dup")
    output = gcs.bucket(OUTPUT_BUCKET).get_blob(done["output_object"])
    generation = done["source"]["generation"]
    for index in before_parts:
        task = {"kind": "render", "job": "jobs/pp-dup", "generation": generation, "part": index}
        publish(TASKS, json.dumps(task).encode(), {"kind": "render"})
    publish(TASKS, json.dumps({"kind": "assemble", "job": "jobs/pp-dup", "generation": generation}).encode(), {})
    time.sleep(3)  # let the duplicates arrive; what they must not do is checked below
    assert db.document("jobs/pp-dup").get().to_dict() == done
    assert _parts(db, "jobs/pp-dup") == before_parts
    assert gcs.bucket(OUTPUT_BUCKET).get_blob(done["output_object"]).generation == output.generation


def test_a_worker_killed_mid_part_has_its_part_redelivered_and_finished(
    gcs: Any, db: Any, front: Balancer, publish: Any, voice: str, workers: list[Server]
) -> None:
    """SIGKILL of an instance while it renders: Pub/Sub redelivers, the lease expires, the part is
    rendered again (attempts 2) and the job finishes with nothing doubled."""
    _upload(gcs, publish, "requests/pp-kill.json", cloud.request_json(text=_text(30, 100), voice_id=voice),
            "application/json")
    deadline = time.monotonic() + 120
    held: list[int] = []
    victim: Server | None = None
    while victim is None and time.monotonic() < deadline:
        for index, part in _parts(db, "jobs/pp-kill").items():
            if part.get("status") == "processing" and index > 0:
                victim = _instance_of(workers, str(part.get("worker", "")))
                held = [index]
                break
        time.sleep(0.02)
    assert victim is not None, "no instance was seen holding a part"
    victim.kill()
    victim.start()  # Cloud Run starts a new instance behind the same URL
    done = _wait(db, "jobs/pp-kill", lambda d: d.get("status") in ("done", "failed"))
    assert done["status"] == "done", done.get("error")
    parts = _parts(db, "jobs/pp-kill")
    assert parts[held[0]]["status"] == "done" and parts[held[0]]["attempts"] >= 2
    expected = sum(p["duration_s"] for p in parts.values()) + sum(p["pause_before_s"] for i, p in parts.items() if i)
    assert abs(done["duration_s"] - expected) <= 0.05
    # The audio and its word timings, once each; the parts are gone.
    _wait_parts_removed(gcs, "pp-kill")
    names = sorted(b.name for b in gcs.bucket(OUTPUT_BUCKET).list_blobs(prefix="outputs/pp-kill"))
    assert names == ["outputs/pp-kill.timings.json", "outputs/pp-kill.wav"], names


def _instance_of(workers: list[Server], worker: str) -> Server | None:
    """The test's server whose process group holds the worker process ``host:pid``."""
    import os

    pid = worker.rsplit(":", 1)[-1]
    try:
        group = os.getpgid(int(pid))
    except (ValueError, ProcessLookupError):
        return None
    return next((w for w in workers if w.proc is not None and w.proc.pid == group), None)


def test_a_reupload_mid_job_supersedes_every_old_part(gcs: Any, db: Any, front: Balancer, publish: Any,
                                                      voice: str) -> None:
    """A new generation of the request while parts render: the job finishes with the new text's parts only;
    old part deliveries change nothing."""
    _upload(gcs, publish, "requests/pp-new.json", cloud.request_json(text=_text(30, 200), voice_id=voice),
            "application/json")
    _wait(db, "jobs/pp-new", lambda d: int(d.get("parts_done") or 0) >= 1)
    newer = _upload(gcs, publish, "requests/pp-new.json", cloud.request_json(text=_text(5, 300), voice_id=voice),
                    "application/json")
    done = _wait(db, "jobs/pp-new", lambda d: d.get("source", {}).get("generation") == str(newer.generation)
                 and d.get("status") in ("done", "failed"))
    assert done["status"] == "done", done.get("error")
    parts = _parts(db, "jobs/pp-new")
    current = {i: p for i, p in parts.items() if i < done["parts_total"]}
    assert {p["source"]["generation"] for p in current.values()} == {str(newer.generation)}
    assert all("Sentence 3" in s["text"] for p in current.values() for s in p["segments"])
    output = gcs.bucket(OUTPUT_BUCKET).get_blob(done["output_object"])
    assert output.metadata["job_generation"] == str(newer.generation)
    expected = sum(p["duration_s"] for p in current.values()) + sum(p["pause_before_s"] for i, p in current.items() if i)
    assert abs(done["duration_s"] - expected) <= 0.05

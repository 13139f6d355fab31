"""Bursts: 200 requests through the embedded default (``python -m voicecloning serve``), and
50 over HTTP to two functions-framework workers on the emulators, each event delivered to
both workers at once. Every job must end ``done`` exactly once; none may be lost.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import INPUT_BUCKET, OUTPUT_BUCKET, PROJECT, functions_server, gcp_env
from tests.reliability.conftest import (
    BURST_TOKENS,
    deliver_patiently,
    log_file_lines,
    matching,
    request_bytes,
    set_env,
    wait_for,
)
from tests.support import cloud
from tests.support.servers import ROOT, Server
from voicecloning.stores.documents import SqliteDocumentStore
from voicecloning.stores.folder import LocalBlobStore

pytestmark = pytest.mark.integration

LOCAL_JOBS = 200
HTTP_JOBS = 50
# The bursts count deliveries and outputs; hearing every part back (the ASR gate, tested on its own in
# tests/integration/test_quality_gate.py) would triple their time without testing anything more here.
QUALITY_GATE = "off"


@pytest.fixture
def fast_dir() -> Iterator[Path]:
    """A data folder on tmpfs when there is one: this machine's shared disk can take 0.5 s per fsync,
    and the burst measures exactly-once delivery, not the disk."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="voicecloning-burst-", dir=base))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _report(label: str, counts: dict[str, Any]) -> str:
    line = f"{label}: " + ", ".join(f"{k}={v}" for k, v in counts.items())
    print(line)
    return line


def test_200_requests_through_the_embedded_default_each_done_once(
    fast_dir: Path, dev_model_dir: Path, logs_dir: Path, clip_bytes: bytes
) -> None:
    """Drop a voice and 200 requests into DATA/input while `serve` runs: 200 done, 200 outputs, 200 'job done'."""
    inputs = LocalBlobStore(fast_dir / "input")
    inputs.write("voices/b-v.wav", clip_bytes, "audio/wav")
    log_path = logs_dir / "serve-burst.log"
    env = {**os.environ, "VOICECLONING_MODEL_DIR": str(dev_model_dir), "VOICECLONING_MAX_AUDIO_TOKENS": BURST_TOKENS,
           "VOICECLONING_PRECISION": "fp32", "VOICECLONING_QUALITY_GATE": QUALITY_GATE, "PYTHONPATH": str(ROOT)}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "voicecloning", "serve", "--data", str(fast_dir)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        docs = wait_for(lambda: (fast_dir / "documents.sqlite3").exists() and SqliteDocumentStore(
            fast_dir / "documents.sqlite3"), 60, 0.2, "the document store")
        wait_for(lambda: (docs.get("voices/b-v") or {}).get("status") == "ready", 120, 0.2, "voice b-v")
        started = time.monotonic()
        for i in range(LOCAL_JOBS):
            inputs.write(f"requests/b{i:03d}.json", request_bytes(text=f"Burst number {i}.", voice_id="b-v"),
                         "application/json")

        def finished() -> bool:
            return sum(doc.get("status") in ("done", "failed") for doc in _jobs(docs).values()) >= LOCAL_JOBS

        wait_for(finished, 400, 1.0, f"{LOCAL_JOBS} jobs")
        seconds = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    jobs = _jobs(docs)
    statuses = Counter(doc["status"] for doc in jobs.values())
    outputs = [p for p in (fast_dir / "output" / "outputs").glob("*.wav")]
    done_lines = Counter(_job_of(line) for line in matching(log_file_lines(log_path), "job done"))
    report = _report("embedded burst", {
        "requests": LOCAL_JOBS, "documents": len(jobs), **{f"status_{k}": v for k, v in sorted(statuses.items())},
        "outputs": len(outputs), "job_done_log_lines": sum(done_lines.values()),
        "max_attempts_seen": max(doc["attempts"] for doc in jobs.values()), "seconds": round(seconds, 1),
    })
    assert statuses == {"done": LOCAL_JOBS}, report
    assert len(outputs) == LOCAL_JOBS, report
    assert set(done_lines.values()) == {1} and len(done_lines) == LOCAL_JOBS, report


def _jobs(docs: SqliteDocumentStore) -> dict[str, dict[str, Any]]:
    """The job documents themselves, not their parts or assembly (``jobs/<id>/...``)."""
    return {path: doc for path, doc in docs.list("jobs/") if path.count("/") == 1}


def _job_of(line: dict[str, Any]) -> str:
    """The job id a log line is about: its ``job_id``, or the job document path of a task (``jobs/<id>``)."""
    return str(line.get("job_id") or str(line.get("job") or "").rsplit("/", 1)[-1])


@pytest.fixture(scope="module")
def env(firestore_server: Server, storage_server: Server, dev_model_dir: Path) -> dict[str, str]:
    # Under this load the Firestore emulator times out some transactions ("409 Transaction lock timeout"):
    # a claim that then cannot be given back stays held until its lease ends, and every redelivery is
    # "busy" until then. A 30 s lease lets that happen inside the test's patience, as 180 s does in Eventarc's.
    return gcp_env(firestore_server, storage_server, dev_model_dir, VOICECLONING_MAX_AUDIO_TOKENS=BURST_TOKENS,
                   VOICECLONING_QUALITY_GATE=QUALITY_GATE, VOICECLONING_LEASE_SECONDS="30")


@pytest.fixture(scope="module")
def workers(env: dict[str, str], logs_dir: Path) -> Iterator[list[Server]]:
    servers = [functions_server("on_object_finalized", env, logs_dir) for _ in range(2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def test_50_requests_over_http_delivered_twice_concurrently_each_done_once(
    env: dict[str, str], workers: list[Server], clip_bytes: bytes
) -> None:
    """Each of 50 events goes to two workers at the same moment: 50 done, 50 outputs, one 'job done' each.

    Claims are at least one per job, not exactly one: a claim given back after a transient error under
    load (an emulator timing out) is claimed again, which is correct."""
    gcs = cloud.storage_client(env["STORAGE_EMULATOR_HOST"], PROJECT)
    bucket = cloud.ensure_bucket(gcs, INPUT_BUCKET)
    cloud.ensure_bucket(gcs, OUTPUT_BUCKET)
    saved = set_env({"FIRESTORE_EMULATOR_HOST": env["FIRESTORE_EMULATOR_HOST"]})
    db = cloud.firestore_client(PROJECT)
    os.environ.clear()
    os.environ.update(saved)
    voice = cloud.upload(bucket, "voices/hb-v.wav", clip_bytes, "audio/wav")
    assert deliver_patiently(workers[0].url, cloud.storage_cloudevent(voice))[-1] == 200
    events = [cloud.storage_cloudevent(cloud.upload(
        bucket, f"requests/hb{i:02d}.json", request_bytes(text=f"Burst number {i}.", voice_id="hb-v"),
        "application/json")) for i in range(HTTP_JOBS)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        finals = list(pool.map(lambda args: deliver_patiently(args[0].url, args[1], within=300)[-1],
                               [(w, e) for e in events for w in workers]))
    seconds = time.monotonic() - started
    docs = {f"hb{i:02d}": db.document(f"jobs/hb{i:02d}").get().to_dict() or {} for i in range(HTTP_JOBS)}
    statuses = Counter(doc.get("status") for doc in docs.values())
    outputs = [b.name for b in gcs.list_blobs(OUTPUT_BUCKET, prefix="outputs/hb") if b.name.endswith(".wav")
               and "/parts/" not in b.name]
    lines = [line for w in workers for line in log_file_lines(w.log_path)]
    done_lines = Counter(_job_of(line) for line in matching(lines, "job done") if _job_of(line).startswith("hb"))
    claims = Counter(_job_of(line) for line in matching(lines, "claimed") if _job_of(line).startswith("hb"))
    report = _report("http burst", {
        "requests": HTTP_JOBS, "deliveries": len(finals), "acknowledged": finals.count(200),
        **{f"status_{k}": v for k, v in sorted(statuses.items())}, "outputs": len(outputs),
        "job_done_log_lines": sum(done_lines.values()), "claims": sum(claims.values()),
        "done_per_worker": [len(matching(log_file_lines(w.log_path), "job done")) for w in workers],
        "seconds": round(seconds, 1),
    })
    assert finals == [200] * (2 * HTTP_JOBS), report
    assert statuses == {"done": HTTP_JOBS}, report
    assert len(outputs) == HTTP_JOBS, report
    assert set(done_lines.values()) == {1} and len(done_lines) == HTTP_JOBS, report
    assert sorted(outputs) == [f"outputs/hb{i:02d}.wav" for i in range(HTTP_JOBS)], report
    assert len(claims) == HTTP_JOBS and min(claims.values()) >= 1, report

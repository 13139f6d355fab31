"""The embedded default with `serve --workers 2`: the same part handlers, an embedded task queue,
two worker processes sharing one SQLite file, and a worker killed with SIGKILL mid-part."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from tests.conftest import TEST_TOKENS
from tests.support.clips import speech_clip
from tests.support.servers import ROOT
from voicecloning.stores.documents import SqliteDocumentStore

pytestmark = pytest.mark.integration
SENTENCE = "Sentence {n} of the local book is read aloud here."


@pytest.fixture
def data(tmp_path: Path, dev_model_dir: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICECLONING_", "FIRESTORE_", "STORAGE_"))}
    env.update({"VOICECLONING_MODEL_DIR": str(dev_model_dir), "VOICECLONING_MAX_AUDIO_TOKENS": TEST_TOKENS,
                "VOICECLONING_PRECISION": "auto", "PYTHONPATH": str(ROOT), "VOICECLONING_PART_AUDIO_SECONDS": "3",
                "VOICECLONING_FIRST_PART_AUDIO_SECONDS": "3", "VOICECLONING_LEASE_SECONDS": "6",
                "VOICECLONING_THREADS": "1", "VOICECLONING_KEEP_PARTS": "true"})
    root = tmp_path / "data"
    (root / "input" / "voices").mkdir(parents=True)
    speech_clip(root / "input" / "voices" / "reader.wav", seconds=6)
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "voicecloning", "serve", "--data", str(root), "--workers", "2"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    yield root, proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def _docs(root: Path) -> SqliteDocumentStore:
    return SqliteDocumentStore(root / "documents.sqlite3")


def _wait(root: Path, path: str, check: Any, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if (root / "documents.sqlite3").exists():
            doc = _docs(root).get(path) or {}
            if check(doc):
                return doc
        time.sleep(0.1)
    raise AssertionError(f"{path} did not get there: {doc}")


def _request(root: Path, job: str, sentences: int) -> None:
    text = " ".join(SENTENCE.format(n=n) for n in range(sentences))
    dest = root / "input" / "requests" / f"{job}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    tmp.write_text(json.dumps({"text": text, "voice_id": "reader"}))
    os.replace(tmp, dest)


def _worker_pids(root: Path) -> list[int]:
    return [int(line) for line in (root / "workers.pid").read_text().split()]


def test_two_worker_processes_share_a_long_job_and_a_killed_worker_is_replaced(
    data: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    """Parts are rendered by both processes; a worker SIGKILLed while it holds a part is restarted by
    `serve`, the part is delivered again and finished, and the final file is the parts plus pauses."""
    root, _proc = data
    _wait(root, "voices/reader", lambda d: d.get("status") == "ready")
    _request(root, "book", 30)
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:
        for key, part in _docs(root).children("jobs/book/parts"):
            worker = str(part.get("worker") or "")
            if part.get("status") == "processing" and key != "0" and worker:
                victim = (key, int(worker.rsplit(":", 1)[-1]))
                break
        time.sleep(0.02)
    assert victim is not None, "no worker was seen holding a part"
    first_pids = _worker_pids(root)
    os.kill(victim[1], signal.SIGKILL)
    done = _wait(root, "jobs/book", lambda d: d.get("status") in ("done", "failed"))
    assert done["status"] == "done", done.get("error")
    parts = dict(_docs(root).children("jobs/book/parts"))
    assert len(parts) == done["parts_total"] == done["parts_done"] >= 5
    assert parts[victim[0]]["attempts"] >= 2 and parts[victim[0]]["status"] == "done"
    assert len({p["worker"] for p in parts.values()}) >= 2
    assert _worker_pids(root) != first_pids and victim[1] not in _worker_pids(root)
    expected = sum(p["duration_s"] for p in parts.values()) + sum(p["pause_before_s"] for k, p in parts.items() if k != "0")
    info = sf.info(str(root / "output" / done["output_object"]))
    assert abs(info.frames / info.samplerate - expected) <= 0.05
    part0 = sf.info(str(root / "output" / parts["0"]["output_object"]))  # kept: VOICECLONING_KEEP_PARTS=true
    assert part0.samplerate == 24000 and abs(part0.frames / 24000 - parts["0"]["duration_s"]) < 0.01

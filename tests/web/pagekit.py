"""What the browser test (web/tests/e2e.mjs) needs besides servers: user C's long job, written straight into
the emulators and moved on when the browser asks, and the loop that runs the browser and answers it.

The fixtures that start the servers and the one browser session live in tests/web/conftest.py; the tests
are tests/web/test_page.py (users A and B) and tests/web/test_page_streaming.py (user C).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import threading
import uuid
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import OUTPUT_BUCKET, PROJECT
from tests.support import cloud
from tests.support.servers import ROOT

E2E = ROOT / "web" / "tests" / "e2e.mjs"
RATE = 24000  # parts are 24 kHz 16-bit WAV (voicecloning/assembly.py)
PART_SECONDS = 1.5
PAUSES = [0.0, 0.5, 0.6, 0.4]  # pause_before_s of each part (the first part's is never played)
STARTS = [n * PART_SECONDS + sum(PAUSES[1:n + 1]) for n in range(len(PAUSES))]  # each part's offset in the final file
# The finished job's WebVTT, cue times on the final file's timeline (as voicecloning/captions.py writes them:
# escaped text, `<v voice_id>` where a dialogue names the speaker): one plain cue over part 2, one voiced over part 3.
CUES = [
    {"start": STARTS[2], "end": STARTS[2] + PART_SECONDS, "text": "Tom & Jerry read part three.",
     "vtt": "Tom &amp; Jerry read part three.", "shown": "Tom & Jerry read part three."},
    {"start": STARTS[3], "end": STARTS[3] + PART_SECONDS, "text": "And alice reads the last one.",
     "vtt": "<v alice>And alice reads the last one.", "shown": "alice: And alice reads the last one."},
]


def tone(seconds: float, hz: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(round(seconds * RATE)) / RATE)).astype(np.float32)


def wav(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def stamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def vtt(cues: list[dict[str, Any]]) -> str:
    blocks = [f"{n}\n{stamp(c['start'])} --> {stamp(c['end'])}\n{c['vtt']}\n" for n, c in enumerate(cues, 1)]
    return "WEBVTT\n\n" + "\n".join(blocks)


class StreamedJob:
    """A long job written straight into the emulators (the admin clients bypass the rules), moved on when
    the browser asks: part 0 done and part 1 not yet, then parts 1 and 2, then part 3 and the final file
    with its WebVTT captions (the part objects are then deleted, as after assembly by default)."""

    def __init__(self, web_env: dict[str, str], uid: str) -> None:
        self.gcs, self.db = cloud.emulator_clients(web_env, PROJECT, (OUTPUT_BUCKET,))
        self.uid, self.job_id = uid, f"book-{uuid.uuid4().hex[:8]}"
        self.job = self.db.document(f"users/{uid}/jobs/{self.job_id}")
        self.audio = [tone(PART_SECONDS, 220 * (n + 1)) for n in range(len(PAUSES))]
        now = datetime.now(UTC)
        self.job.set({"job_id": self.job_id, "owner": uid, "status": "processing", "source": {"generation": "7"},
                      "voice_id": "narrator", "language": "en", "format": "wav", "created_at": now,
                      "updated_at": now, "parts_total": len(PAUSES), "parts_done": 0, "progress": 0.05,
                      "captions": ["vtt"]})  # until the job is done: the requested formats (docs/FIRESTORE.md)
        for n in range(len(PAUSES)):
            self._part(n, "processing" if n == 1 else "queued")
        self.render(0)

    def name(self, n: int) -> str:
        return f"users/{self.uid}/outputs/{self.job_id}/parts/{n}.wav"

    def _part(self, n: int, status: str, **extra: Any) -> None:
        self.job.collection("parts").document(str(n)).set({
            "index": n, "job_id": self.job_id, "owner": self.uid, "source": {"generation": "7"}, "status": status,
            "chars": 40, "pause_before_s": PAUSES[n], "worker": "test", "attempts": 1, "output_object": None,
            "duration_s": None, **extra})

    def render(self, *parts: int) -> None:
        for n in parts:
            self.gcs.bucket(OUTPUT_BUCKET).blob(self.name(n)).upload_from_string(wav(self.audio[n]), "audio/wav")
            self._part(n, "done", output_object=self.name(n), duration_s=PART_SECONDS,
                       finished_at=datetime.now(UTC))
        done = sum(1 for d in self.job.collection("parts").stream() if d.get("status") == "done")
        self.job.update({"parts_done": done, "progress": done / len(PAUSES) * 0.99, "first_audio_at": datetime.now(UTC)})

    def finish(self) -> None:
        """Part 3, then (as the assembler does) the final file and its captions before `done` names them."""
        self.render(3)
        final = np.concatenate([x for n, a in enumerate(self.audio) for x in ([tone(PAUSES[n], 0)] if n else []) + [a]])
        bucket = self.gcs.bucket(OUTPUT_BUCKET)
        name, captions = (f"users/{self.uid}/outputs/{self.job_id}.{ext}" for ext in ("wav", "vtt"))
        bucket.blob(name).upload_from_string(wav(final), "audio/wav")
        bucket.blob(captions).upload_from_string(vtt(CUES), "text/vtt; charset=utf-8")
        self.job.update({"status": "done", "output_object": name, "progress": 1.0, "duration_s": len(final) / RATE,
                         "captions": {"vtt": captions}, "finished_at": datetime.now(UTC)})
        for n in range(len(PAUSES)):
            bucket.blob(self.name(n)).delete()

    def answer(self, ask: dict[str, Any]) -> dict[str, Any]:
        if ask["what"] == "render":
            self.render(*ask["parts"])
        elif ask["what"] == "finish":
            self.finish()
        else:
            raise AssertionError(f"e2e.mjs asked for {ask}")
        return {"ok": True}

    def seeded(self) -> dict[str, str]:
        """What web/tests/streaming.mjs is told about this job."""
        return {"STREAM_JOB": self.job_id, "STREAM_PARTS": json.dumps({
            "total": len(PAUSES), "seconds": PART_SECONDS, "pauses": PAUSES,
            "cues": [{"start": c["start"], "end": c["end"]} for c in CUES]})}


def browse(env: dict[str, str], streamed: StreamedJob, stderr: Path) -> tuple[int, list[str]]:
    """Run web/tests/e2e.mjs, answering its `ask {...}` lines on stdin; (exit status, other stdout lines)."""
    with stderr.open("w") as err:
        proc = subprocess.Popen([shutil.which("node") or "node", str(E2E)], env=env, cwd=E2E.parent.parent,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
        watchdog = threading.Timer(540, proc.kill)
        watchdog.start()
        lines: list[str] = []
        try:
            assert proc.stdout is not None and proc.stdin is not None
            for line in proc.stdout:
                if line.startswith("ask "):
                    proc.stdin.write(json.dumps(streamed.answer(json.loads(line[4:]))) + "\n")
                    proc.stdin.flush()
                else:
                    lines.append(line.rstrip("\n"))
            return proc.wait(), lines
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()

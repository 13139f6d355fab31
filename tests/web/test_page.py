"""The page in a real browser (Debian's headless Chromium driven by playwright-core, web/tests/e2e.mjs),
against the emulators, both functions, and the development bridge standing in for Eventarc.

The browser run happens once per module; each test below asserts one behaviour of its JSON result.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import INPUT_BUCKET, OUTPUT_BUCKET, PROJECT, functions_server
from tests.support import cloud
from tests.support.clips import silence, speech_clip
from tests.support.servers import ROOT, Server
from tests.web.conftest import API_KEY, PASSWORD, WEB, AuthEmulator, need
from voicecloning.devbridge import Bridge

pytestmark = [pytest.mark.integration, pytest.mark.browser]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "web-screenshot.png"
RATE = 24000  # parts are 24 kHz 16-bit WAV (voicecloning/assembly.py)
PART_SECONDS = 1.5
PAUSES = [0.0, 0.5, 0.6, 0.4]  # pause_before_s of each part (the first part's is never played)


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


class StreamedJob:
    """A long job written straight into the emulators (the admin clients bypass the rules), moved on when
    the browser asks: part 0 done and part 1 not yet, then parts 1 and 2, then part 3 and the final file
    (the part objects are then deleted, as after assembly by default)."""

    def __init__(self, web_env: dict[str, str], uid: str) -> None:
        self.gcs, self.db = cloud.emulator_clients(web_env, PROJECT, (OUTPUT_BUCKET,))
        self.uid, self.job_id = uid, f"book-{uuid.uuid4().hex[:8]}"
        self.job = self.db.document(f"users/{uid}/jobs/{self.job_id}")
        self.audio = [tone(PART_SECONDS, 220 * (n + 1)) for n in range(len(PAUSES))]
        now = datetime.now(UTC)
        self.job.set({"job_id": self.job_id, "owner": uid, "status": "processing", "source": {"generation": "7"},
                      "voice_id": "narrator", "language": "en", "format": "wav", "created_at": now,
                      "updated_at": now, "parts_total": len(PAUSES), "parts_done": 0, "progress": 0.05})
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
        self.render(3)
        final = np.concatenate([x for n, a in enumerate(self.audio) for x in ([tone(PAUSES[n], 0)] if n else []) + [a]])
        name = f"users/{self.uid}/outputs/{self.job_id}.wav"
        self.gcs.bucket(OUTPUT_BUCKET).blob(name).upload_from_string(wav(final), "audio/wav")
        self.job.update({"status": "done", "output_object": name, "progress": 1.0, "duration_s": len(final) / RATE,
                         "finished_at": datetime.now(UTC)})
        for n in range(len(PAUSES)):
            self.gcs.bucket(OUTPUT_BUCKET).blob(self.name(n)).delete()

    def answer(self, ask: dict[str, Any]) -> dict[str, Any]:
        if ask["what"] == "render":
            self.render(*ask["parts"])
        elif ask["what"] == "finish":
            self.finish()
        else:
            raise AssertionError(f"e2e.mjs asked for {ask}")
        return {"ok": True}


def browse(env: dict[str, str], streamed: StreamedJob, stderr: Path) -> tuple[int, list[str]]:
    """Run web/tests/e2e.mjs, answering its `ask {...}` lines on stdin; (exit status, other stdout lines)."""
    with stderr.open("w") as err:
        proc = subprocess.Popen([shutil.which("node") or "node", str(WEB / "tests" / "e2e.mjs")], env=env, cwd=WEB,
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


@pytest.fixture(scope="module")
def worker(web_env: dict[str, str], logs_dir: Path) -> Iterator[Server]:
    server = functions_server("on_object_finalized", web_env, logs_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bridge(gcs: Any, worker: Server) -> Iterator[Bridge]:
    """The local stand-in for Eventarc: new input objects become CloudEvents for the worker."""
    running = Bridge(gcs, INPUT_BUCKET, worker.url, interval=0.25, backoff=0.5, max_backoff=4).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, web_origin: str, web_api: Server, auth_emulator: AuthEmulator,
         web_env: dict[str, str], logs_dir: Path) -> Iterator[Server]:
    """web/public served as a static site, with a config.json that points at the emulators."""
    need(WEB / "public" / "app.js", "the page bundle")
    folder = tmp_path_factory.mktemp("site") / "public"
    shutil.copytree(WEB / "public", folder)
    (folder / "config.json").write_text(json.dumps({
        "apiKey": API_KEY,
        "authDomain": f"{PROJECT}.firebaseapp.com",
        "projectId": PROJECT,
        "functionsBaseUrl": web_api.url,
        "emulators": {"auth": auth_emulator.url, "firestore": web_env["FIRESTORE_EMULATOR_HOST"]},
    }))
    port = int(web_origin.rsplit(":", 1)[1])
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)]
    server = Server("web-site", argv, port, log_path=logs_dir / f"site-{port}.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def run(site: Server, web_api: Server, bridge: Bridge, auth_emulator: AuthEmulator, web_env: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> dict[str, Any]:
    """One browser session: user A enrolls a voice and gets audio; user B sees none of it; user C plays a
    long job part by part while it renders."""
    need(CHROMIUM, "Debian's chromium")
    need(WEB / "node_modules" / "playwright-core", "playwright-core")
    clips = tmp_path_factory.mktemp("web-clips")
    user_c = auth_emulator.create_user("web-c")
    env = {
        "WEB_URL": site.url + "/", "API_URL": web_api.url, "AUTH_URL": auth_emulator.url, "API_KEY": API_KEY,
        "USER_A": auth_emulator.create_user("web-a").email, "USER_B": auth_emulator.create_user("web-b").email,
        "PASSWORD": PASSWORD, "USER_C": user_c.email,
        "CLIP": str(speech_clip(clips / "reference.wav", seconds=8)),
        "SILENCE": str(silence(clips / "quiet.wav", seconds=5)),
        "OUT_DIR": str(artifacts_dir), "CHROMIUM": str(CHROMIUM),
        "PATH": "/usr/bin:/bin", "HOME": str(clips),
    }
    streamed = StreamedJob(web_env, user_c.uid)
    env |= {"STREAM_JOB": streamed.job_id, "STREAM_PARTS": json.dumps(
        {"total": len(PAUSES), "seconds": PART_SECONDS, "pauses": PAUSES})}
    stderr = artifacts_dir / "e2e.stderr.log"
    returncode, lines = browse(env, streamed, stderr)
    assert returncode == 0 and lines, f"e2e.mjs exited {returncode}: {stderr.read_text()[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    (artifacts_dir / "e2e.json").write_text(json.dumps(result, indent=2))
    assert result["ok"], f"{result.get('error')}\nsteps: {result['steps']}\nbridge: {bridge.delivered}"
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":  # refresh the README's picture on purpose only
        shutil.copyfile(result["screenshot"], SCREENSHOT)
    return result


def test_every_control_has_an_accessible_label(run: dict[str, Any]) -> None:
    """Inputs, selects, buttons, progress bars and players all have a label (or text)."""
    assert run["unlabeled"] == []


def test_the_language_list_comes_from_model_info(run: dict[str, Any]) -> None:
    """The language picker offers the model's languages (XTTS-v2: 17, English among them)."""
    assert "en" in run["languages"] and "zh-cn" in run["languages"] and len(run["languages"]) == 17


def test_an_uploaded_clip_becomes_a_ready_voice_live(run: dict[str, Any]) -> None:
    """The voice row appears on upload and turns ready without a reload."""
    statuses = [s["status"] for s in run["voice"]["samples"]]
    assert run["voice"]["status"] == "ready", run["voice"]
    assert statuses[0] in ("uploading", "processing") and statuses[-1] == "ready", statuses
    assert "alice-voice" in run["voiceOptions"] and "quiet" not in run["voiceOptions"]


def test_a_rejected_clip_shows_its_reason(run: dict[str, Any]) -> None:
    """A silent clip fails, and the worker's reason is shown as written."""
    assert run["silentVoice"]["status"] == "failed"
    assert "speech" in run["silentVoice"]["error"].lower(), run["silentVoice"]


def test_a_job_appears_at_once_and_moves_live_to_done(run: dict[str, Any]) -> None:
    """The job row appears right after submitting; the progress bar moves; the job ends done."""
    assert run["jobAppearedMs"] < 3000
    samples = run["job"]["samples"]
    statuses = [s["status"] for s in samples]
    assert statuses[0] in ("queued", "processing") and statuses[-1] == "done", samples
    assert "processing" in statuses, samples
    shown = [s["progress"] for s in samples if s["status"] == "processing" and s["progress"] is not None]
    assert any(0 < p < 1 for p in shown), samples
    assert shown == sorted(shown), samples


def test_the_finished_audio_plays_and_downloads(run: dict[str, Any]) -> None:
    """The player has loaded audio (duration > 0) and the download link names the job's file."""
    assert run["audio"]["duration"] > 0
    assert run["audio"]["download"] == f"{run['job']['id']}.wav"
    assert run["audio"]["href"].startswith("blob:")


def test_another_user_sees_nothing_and_cannot_use_the_voice(run: dict[str, Any]) -> None:
    """User B sees no voices or jobs of A's, and a job naming A's voice fails saying it does not exist."""
    b = run["b"]
    assert b["voices"] == [] and b["jobs"] == [] and b["voiceOptions"] == []
    assert b["submitStatus"] == 201
    assert b["borrowed"]["status"] == "failed"
    assert "voice 'alice-voice' does not exist" in b["borrowed"]["error"].lower()


def test_the_page_fits_a_phone_screen(run: dict[str, Any]) -> None:
    """At 390 px wide nothing overflows sideways."""
    assert run["b"]["overflowX"] <= 0


def test_the_page_logs_no_errors(run: dict[str, Any]) -> None:
    """No console errors or uncaught exceptions during the whole session."""
    assert run["console"] == []


def test_a_screenshot_of_the_finished_job_is_saved(run: dict[str, Any]) -> None:
    """The screenshot is kept as a test artifact (UPDATE_DOCS_SCREENSHOT=1 also refreshes docs/web-screenshot.png)."""
    assert Path(run["screenshot"]).stat().st_size > 10_000
    assert SCREENSHOT.stat().st_size > 10_000


def test_a_long_job_plays_its_first_part_while_processing(run: dict[str, Any]) -> None:
    """C's job is still `processing` with 1 of 4 parts done: the player holds part 0 and plays it."""
    s = run["stream"]
    assert s["before"]["parts"] == "1 / 4 parts done" and s["before"]["download"] is None, s["before"]
    now = s["playingPart0"]
    assert now["status"] == "processing" and now["src"] == f"{s['jobId']}/parts/0.wav", now
    assert now["currentTime"] > 0.3 and not now["paused"], now


def test_the_player_waits_for_a_part_not_rendered_yet(run: dict[str, Any]) -> None:
    """Part 0 has ended and part 1 is not done: the player waits at the end of part 0 and says so."""
    waiting = run["stream"]["waiting"]
    assert waiting["paused"] and waiting["src"].endswith("/parts/0.wav"), waiting
    assert abs(waiting["currentTime"] - PART_SECONDS) < 0.05, waiting
    assert "waiting for part 2 of 4" in waiting["player"].lower(), waiting


def test_parts_play_in_order_with_the_designed_pauses(run: dict[str, Any]) -> None:
    """Parts 0, 1, 2 play in order, then the final file; between parts the player leaves at least the next
    part's pause_before_s (counted from the end of the previous part; the gaps are recorded, not timed)."""
    s = run["stream"]
    job = s["jobId"]
    events = s["events"]
    order = [e["src"] for e in events if e["type"] == "playing"]
    assert [k for n, k in enumerate(order) if n == 0 or order[n - 1] != k] == [
        f"{job}/parts/0.wav", f"{job}/parts/1.wav", f"{job}/parts/2.wav", f"{job}.wav"], order
    ended = {e["src"]: e["t"] for e in events if e["type"] == "ended"}
    started = {}
    for e in events:
        if e["type"] == "playing":
            started.setdefault(e["src"], e["t"])
    gap_2 = started[f"{job}/parts/2.wav"] - ended[f"{job}/parts/1.wav"]
    assert gap_2 >= PAUSES[2] * 1000 - 20, gap_2
    assert started[f"{job}/parts/1.wav"] - ended[f"{job}/parts/0.wav"] >= PAUSES[1] * 1000 - 20
    assert s["playingPart1"]["parts"] == "3 / 4 parts done" and s["playingPart1"]["status"] == "processing"


def test_the_final_file_takes_over_where_the_listener_is(run: dict[str, Any]) -> None:
    """C paused in part 2 when the job finished: the final file is loaded at the same place in the text
    (part 2's offset in it + the time into part 2), stays paused, plays on through part 3, and is offered
    for download; the part objects were deleted meanwhile."""
    s = run["stream"]
    paused, handed, final = s["pausedInPart2"], s["handedOver"], s["final"]
    assert paused["paused"] and paused["src"].endswith("/parts/2.wav"), paused
    assert handed["src"] == f"{s['jobId']}.wav" and handed["paused"], handed
    assert abs(handed["currentTime"] - (s["starts"][2] + paused["currentTime"])) < 0.02, (handed, paused)
    assert final["currentTime"] > s["starts"][3] and not final["paused"], final
    assert final["status"] == "done" and final["parts"] == "4 / 4 parts done", final
    assert final["download"] == f"{s['jobId']}.wav", final

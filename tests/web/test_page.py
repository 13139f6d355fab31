"""The page in a real browser (Debian's headless Chromium driven by playwright-core, web/tests/e2e.mjs),
against the emulators, both functions, and the development bridge standing in for Eventarc.

The browser run happens once per module; each test below asserts one behaviour of its JSON result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import INPUT_BUCKET, PROJECT, functions_server
from tests.support.clips import silence, speech_clip
from tests.support.servers import ROOT, Server
from tests.web.conftest import API_KEY, PASSWORD, WEB, AuthEmulator, need
from voicecloning.devbridge import Bridge

pytestmark = [pytest.mark.integration, pytest.mark.browser]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "web-screenshot.png"


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
def run(site: Server, web_api: Server, bridge: Bridge, auth_emulator: AuthEmulator,
        tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> dict[str, Any]:
    """One browser session: user A enrolls a voice and gets audio; user B sees none of it."""
    need(CHROMIUM, "Debian's chromium")
    need(WEB / "node_modules" / "playwright-core", "playwright-core")
    clips = tmp_path_factory.mktemp("web-clips")
    env = {
        "WEB_URL": site.url + "/", "API_URL": web_api.url, "AUTH_URL": auth_emulator.url, "API_KEY": API_KEY,
        "USER_A": auth_emulator.create_user("web-a").email, "USER_B": auth_emulator.create_user("web-b").email,
        "PASSWORD": PASSWORD,
        "CLIP": str(speech_clip(clips / "reference.wav", seconds=8)),
        "SILENCE": str(silence(clips / "quiet.wav", seconds=5)),
        "OUT_DIR": str(artifacts_dir), "CHROMIUM": str(CHROMIUM),
        "PATH": "/usr/bin:/bin", "HOME": str(clips),
    }
    proc = subprocess.run([shutil.which("node") or "node", str(WEB / "tests" / "e2e.mjs")], env=env, cwd=WEB,
                          capture_output=True, text=True, timeout=540)
    (artifacts_dir / "e2e.stderr.log").write_text(proc.stderr)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, f"e2e.mjs exited {proc.returncode}: {proc.stderr[-3000:]}"
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

"""The page in a real browser (Debian's headless Chromium driven by playwright-core, web/tests/e2e.mjs),
against the emulators, both functions, and the development bridge standing in for Eventarc: users A and B.

The browser runs once per test session (``browser_session``, tests/web/conftest.py); each test below
asserts one behaviour of its JSON result. User C's long job: tests/web/test_page_streaming.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import SCREENSHOT

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture
def run(browser_session: dict[str, Any]) -> dict[str, Any]:
    return browser_session


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

"""The embedded default end to end: `serve` in a subprocess, files dropped into the folder,
documents read back with `status` -- the same handler code as in the cloud."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_TOKENS
from tests.support.clips import speech_clip
from tests.support.cloud import wav_facts
from tests.support.servers import ROOT

pytestmark = pytest.mark.integration


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voicecloning", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def status(path: str, data: Path, env: dict[str, str]) -> dict | None:
    result = cli("status", path, "--data", str(data), env=env)
    return json.loads(result.stdout) if result.returncode == 0 else None


def wait_for(path: str, data: Path, env: dict[str, str], states: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    doc = None
    while time.monotonic() < deadline:
        doc = status(path, data, env)
        if doc and doc.get("status") in states:
            return doc
        time.sleep(0.5)
    raise AssertionError(f"{path} never reached {states}: {doc}")


def drop(src: Path, dest: Path) -> None:
    """Upload the way a careful user does: copy beside, then rename into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name("." + dest.name + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


@pytest.fixture
def local_env(dev_model_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICECLONING_", "FIRESTORE_", "STORAGE_"))}
    return {**env, "VOICECLONING_MODEL_DIR": str(dev_model_dir), "VOICECLONING_MAX_AUDIO_TOKENS": TEST_TOKENS,
            "VOICECLONING_PRECISION": "fp32", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def served(tmp_path: Path, local_env: dict[str, str]) -> Iterator[Path]:
    data = tmp_path / "data"
    # A clip already in the folder before the service starts is processed too.
    drop(speech_clip(tmp_path / "early.wav", seconds=6), data / "input" / "voices" / "early.wav")
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "voicecloning", "serve", "--data", str(data)], cwd=ROOT,
                            env=local_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield data
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_dropped_clip_and_request_become_a_ready_voice_and_a_done_job(
    served: Path, tmp_path: Path, local_env: dict[str, str]
) -> None:
    early = wait_for("voices/early", served, local_env, {"ready", "failed"})
    assert early["status"] == "ready", early
    drop(speech_clip(tmp_path / "alice.flac", seconds=8), served / "input" / "voices" / "alice.flac")
    request = tmp_path / "job1.json"
    request.write_text(json.dumps({"text": "Hello from the folder. It works.", "voice_id": "alice", "language": "en"}))
    drop(request, served / "input" / "requests" / "job1.json")
    voice = wait_for("voices/alice", served, local_env, {"ready", "failed"})
    assert voice["status"] == "ready", voice
    job = wait_for("jobs/job1", served, local_env, {"done", "failed"})
    assert job["status"] == "done", job
    out = served / "output" / "outputs" / "job1.wav"
    assert job["output_uri"] == out.resolve().as_uri()
    rate, seconds, peak = wav_facts(out.read_bytes())
    assert rate == 24000 and 0.5 < seconds < 5.0 and peak > 0
    # Nothing the service wrote is in the input folder, where it would trigger the service again.
    # (.meta/ is the folder store's own bookkeeping of object generations: never listed, never watched.)
    written = {p.relative_to(served / "input").as_posix() for p in (served / "input").rglob("*")
               if p.is_file() and p.relative_to(served / "input").parts[0] != ".meta"}
    assert written == {"voices/early.wav", "voices/alice.flac", "requests/job1.json"}


def test_a_bad_request_fails_with_its_reason_and_the_service_keeps_going(
    served: Path, tmp_path: Path, local_env: dict[str, str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{ this is not json")
    drop(bad, served / "input" / "requests" / "bad.json")
    job = wait_for("jobs/bad", served, local_env, {"done", "failed"})
    assert job["status"] == "failed" and "not valid JSON" in job["error"]
    assert not list((served / "output").glob("outputs/bad.*"))


def test_status_says_when_a_document_does_not_exist(tmp_path: Path, local_env: dict[str, str]) -> None:
    result = cli("status", "jobs/nope", "--data", str(tmp_path), env=local_env)
    assert result.returncode != 0 and "no document store" in result.stderr


def test_serve_without_a_model_explains_the_licence(tmp_path: Path, local_env: dict[str, str]) -> None:
    """No model configured, none downloaded, licence not accepted: a clear stop, not a download."""
    env = {k: v for k, v in local_env.items() if k not in ("VOICECLONING_MODEL_DIR", "COQUI_TOS_AGREED")}
    env["XDG_DATA_HOME"] = str(tmp_path / "empty-xdg")
    env["TTS_HOME"] = str(tmp_path / "empty-tts")
    result = cli("serve", "--data", str(tmp_path / "d"), env=env)
    assert result.returncode != 0
    assert "Coqui Public Model License" in result.stderr and "non-commercial" in result.stderr
    assert "dev-model" in result.stderr

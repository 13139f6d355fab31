"""Retention: expiry times, text scrubbing, and the local sweep over the embedded stores."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voicecloning.retention import expire_at, scrub_text, sweep_local
from voicecloning.settings import Settings
from voicecloning.stores.documents import SqliteDocumentStore
from voicecloning.stores.folder import LocalBlobStore

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def stores(tmp_path: Path) -> tuple[LocalBlobStore, SqliteDocumentStore]:
    return LocalBlobStore(tmp_path / "output", "output"), SqliteDocumentStore(tmp_path / "documents.sqlite3")


def aged(store: LocalBlobStore, name: str, days: float) -> None:
    """An object written ``days`` before NOW (its generation is its modification time)."""
    store.write(name, b"x", "application/octet-stream")
    stamp = (NOW - timedelta(days=days)).timestamp()
    os.utime(store.root / name, (stamp, stamp))


def test_expiry_is_the_finish_time_plus_the_retention_days() -> None:
    assert expire_at(NOW, 30) == NOW + timedelta(days=30)
    assert expire_at(NOW, 0) is None and expire_at(NOW, None) is None


def test_retention_days_come_from_the_environment() -> None:
    assert Settings.from_env({"VOICECLONING_RETENTION_DAYS": "14"}).product.retention_days == 14
    assert Settings.from_env({}).product.retention_days == 0


def test_scrubbing_removes_text_at_every_depth_and_keeps_everything_else() -> None:
    doc = {"job_id": "j1", "status": "done", "text": "secret", "items": [{"text": "a", "voice_id": "v"}],
           "timings": {"segments": [{"text": "b", "start_s": 0.0}]}, "characters": 6}
    clean = scrub_text(doc)
    assert clean == {"job_id": "j1", "status": "done", "items": [{"voice_id": "v"}],
                     "timings": {"segments": [{"start_s": 0.0}]}, "characters": 6, "text_removed": True}
    assert doc["text"] == "secret"  # the input is not changed


def test_the_sweep_deletes_old_outputs_and_keeps_new_ones_and_voice_data(
    stores: tuple[LocalBlobStore, SqliteDocumentStore],
) -> None:
    outputs, docs = stores
    aged(outputs, "outputs/old.wav", 8)
    aged(outputs, "outputs/old.vtt", 7)
    aged(outputs, "users/u1/outputs/old.mp3", 30)
    aged(outputs, "outputs/new.wav", 6.9)
    aged(outputs, "voices/alice.1.latents.safetensors", 400)  # voices are not outputs
    aged(outputs, "users/u1/voices/bob.2.latents.safetensors", 400)
    counts = sweep_local(outputs, docs, NOW, days=7)
    assert counts == {"objects": 3, "documents": 0}
    assert [i.name for i in outputs.list("")] == ["outputs/new.wav", "users/u1/voices/bob.2.latents.safetensors",
                                                   "voices/alice.1.latents.safetensors"]


def test_the_sweep_expires_documents_whose_expiry_has_passed(stores: tuple[LocalBlobStore, SqliteDocumentStore]) -> None:
    outputs, docs = stores
    docs.update("jobs/old", {"status": "done", "expire_at": NOW - timedelta(seconds=1)})
    docs.update("users/u1/jobs/due", {"status": "done", "expire_at": NOW})
    docs.update("jobs/later", {"status": "done", "expire_at": NOW + timedelta(days=1)})
    docs.update("jobs/kept", {"status": "done"})  # finished before retention was on
    docs.update("voices/alice", {"status": "ready"})
    assert sweep_local(outputs, docs, NOW, days=7) == {"objects": 0, "documents": 2}
    assert [p for p, _d in docs.list("")] == ["jobs/kept", "jobs/later", "voices/alice"]


def test_with_retention_off_outputs_stay_but_expired_documents_still_go(
    stores: tuple[LocalBlobStore, SqliteDocumentStore],
) -> None:
    """Like a TTL policy: a document that carries an expiry expires even if retention was turned off since."""
    outputs, docs = stores
    aged(outputs, "outputs/ancient.wav", 1000)
    docs.update("jobs/j", {"expire_at": NOW - timedelta(days=1)})
    assert sweep_local(outputs, docs, NOW, days=0) == {"objects": 0, "documents": 1}
    assert outputs.stat("outputs/ancient.wav") is not None


def test_a_second_sweep_finds_nothing(stores: tuple[LocalBlobStore, SqliteDocumentStore]) -> None:
    outputs, docs = stores
    aged(outputs, "outputs/old.wav", 10)
    docs.update("jobs/old", {"expire_at": NOW - timedelta(days=1)})
    sweep_local(outputs, docs, NOW, days=7)
    assert sweep_local(outputs, docs, NOW, days=7) == {"objects": 0, "documents": 0}


def test_the_sweep_command_uses_the_retention_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m voicecloning sweep` deletes what has expired under DATA and says how much."""
    import json

    from voicecloning.cli import main

    outputs = LocalBlobStore(tmp_path / "output", "output")
    docs = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    outputs.write("outputs/j.wav", b"x", "audio/wav")
    old = (datetime.now(UTC) - timedelta(days=3)).timestamp()
    os.utime(outputs.root / "outputs/j.wav", (old, old))
    docs.update("jobs/j", {"status": "done", "expire_at": datetime.now(UTC) - timedelta(minutes=1)})
    monkeypatch.setenv("VOICECLONING_RETENTION_DAYS", "2")
    assert main(["sweep", "--data", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"retention_days": 2, "deleted": {"objects": 1, "documents": 1}}
    assert outputs.stat("outputs/j.wav") is None and docs.get("jobs/j") is None

"""The embedded backends: a folder as a bucket, SQLite as the document store, the folder watcher."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from voicecloning.local import SETTLE_SECONDS, LocalRunner
from voicecloning.services import Services
from voicecloning.settings import Settings
from voicecloning.stores.documents import SqliteDocumentStore
from voicecloning.stores.folder import LocalBlobStore


def test_a_rewrite_is_a_newer_generation_and_old_generations_read_as_gone(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    first = store.write("voices/a.wav", b"one", "audio/wav", {"consent": "yes"})
    time.sleep(0.01)
    second = store.write("voices/a.wav", b"two", "audio/wav")
    assert second.generation > first.generation
    assert store.read("voices/a.wav", first.generation) is None
    assert store.read("voices/a.wav", second.generation) == b"two"
    assert store.stat("voices/a.wav").content_type == "audio/wav"  # type: ignore[union-attr]
    assert first.metadata == {"consent": "yes"}


def test_names_cannot_escape_the_bucket_folder(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    for name in ("../outside.txt", "a/../../outside.txt", ".meta/x.json"):
        with pytest.raises(ValueError):
            store.write(name, b"x", "text/plain")
    assert not (tmp_path / "outside.txt").exists()


def test_writes_leave_no_temporary_files_and_listing_hides_sidecars(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    store.write("outputs/j.wav", b"RIFF", "audio/wav")
    store.delete("outputs/missing.wav")  # a missing object is fine
    assert [i.name for i in store.list("")] == ["outputs/j.wav"]
    assert not list((tmp_path / "b").rglob("*.tmp"))


def test_sqlite_transactions_are_atomic_and_keep_datetimes(tmp_path: Path) -> None:
    docs = SqliteDocumentStore(tmp_path / "d.sqlite3")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    docs.update("jobs/j", {"status": "queued", "created_at": when})

    def boom(doc: dict | None) -> tuple[dict, None]:
        raise RuntimeError("fails mid-transaction")

    with pytest.raises(RuntimeError):
        docs.transact("jobs/j", boom)
    assert docs.get("jobs/j") == {"status": "queued", "created_at": when}
    assert docs.transact("jobs/j", lambda d: ({**(d or {}), "n": 1}, "ok")) == "ok"
    assert docs.get("jobs/j")["n"] == 1  # type: ignore[index]
    assert [p for p, _ in docs.list("jobs/")] == ["jobs/j"]


def test_the_watcher_delivers_clips_before_requests_once_files_settle(tmp_path: Path) -> None:
    settings = Settings.from_env({"VOICECLONING_DATA_DIR": str(tmp_path)})
    inputs = LocalBlobStore(tmp_path / "input", "input")
    services = Services(settings, inputs, LocalBlobStore(tmp_path / "output", "output"),
                        SqliteDocumentStore(":memory:"), engine=None)
    seen: list[str] = []
    runner = LocalRunner(services, lambda event, _s: seen.append(event.name))
    inputs.write("requests/j1.json", b"{}", "application/json")
    inputs.write("voices/v1.wav", b"RIFF", "audio/wav")
    runner.scan()
    assert not runner.step()  # not settled yet: an upload may still be in progress
    time.sleep(SETTLE_SECONDS + 0.1)
    runner.scan()
    while runner.step():
        pass
    assert seen == ["voices/v1.wav", "requests/j1.json"]
    runner.scan()
    assert not runner.step()  # unchanged files are not delivered again

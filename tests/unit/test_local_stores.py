"""The embedded backends: a folder as a bucket, SQLite as the document store, the folder watcher."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from voicecloning.errors import PreconditionFailed
from voicecloning.local import SETTLE_SECONDS, LocalRunner
from voicecloning.services import Services
from voicecloning.settings import Settings
from voicecloning.stores.documents import SqliteDocumentStore
from voicecloning.stores.folder import LocalBlobStore


def test_a_rewrite_is_a_newer_generation_and_old_generations_read_as_gone(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    first = store.write("voices/a.wav", b"one", "audio/wav", {"consent": "yes"})
    second = store.write("voices/a.wav", b"two", "audio/wav")
    assert second.generation > first.generation
    assert store.read("voices/a.wav", first.generation) is None
    assert store.read("voices/a.wav", second.generation) == b"two"
    assert store.stat("voices/a.wav").content_type == "audio/wav"  # type: ignore[union-attr]
    assert first.metadata == {"consent": "yes"}


def test_generations_increase_on_every_write_however_fast(tmp_path: Path) -> None:
    """Back-to-back writes (well inside one timestamp tick) each get a strictly greater generation."""
    store = LocalBlobStore(tmp_path / "b")
    generations = [store.write("requests/j.json", str(n).encode(), "application/json").generation for n in range(50)]
    assert generations == sorted(set(generations))
    other = store.write("voices/x.wav", b"x", "audio/wav").generation
    assert other > generations[-1]  # one counter for the whole bucket, as Cloud Storage's are comparable
    assert store.stat("requests/j.json").generation == generations[-1]  # type: ignore[union-attr]


def test_two_stores_on_one_folder_share_the_generation_counter(tmp_path: Path) -> None:
    """Processes sharing a folder (serve --workers N) never issue the same or a smaller generation."""
    a, b = LocalBlobStore(tmp_path / "b"), LocalBlobStore(tmp_path / "b")
    seen = []
    for n in range(20):
        store = a if n % 2 else b
        seen.append(store.write("outputs/j.wav", bytes([n]), "audio/wav").generation)
    assert seen == sorted(set(seen))
    assert a.stat("outputs/j.wav") == b.stat("outputs/j.wav")
    assert LocalBlobStore(tmp_path / "b").write("outputs/j.wav", b"z", "audio/wav").generation > seen[-1]


def test_a_file_replaced_by_hand_with_an_old_mtime_is_a_newer_generation(tmp_path: Path) -> None:
    """``cp -p``/``rsync -a`` keep the modification time: the copy is still a new version, newer than the last."""
    import os
    import shutil

    store = LocalBlobStore(tmp_path / "b")
    first = store.write("requests/j.json", b'{"text": "one"}', "application/json")
    source = tmp_path / "copy.json"
    source.write_bytes(b'{"text": "two"}')
    os.utime(source, ns=(1_000_000_000, 1_000_000_000))  # 1970: older than any generation issued
    shutil.copy2(source, tmp_path / "b" / "requests" / "j.json")
    replaced = store.stat("requests/j.json")
    assert replaced is not None and replaced.generation > first.generation
    assert store.read("requests/j.json", replaced.generation) == b'{"text": "two"}'
    assert store.read("requests/j.json", first.generation) is None
    assert store.stat("requests/j.json") == replaced  # looked at again: the same version, not another one
    (tmp_path / "b" / "new.txt").write_bytes(b"dropped in")
    assert store.stat("new.txt").generation > replaced.generation  # type: ignore[union-attr]


def test_preconditions_guard_writes_and_deletes(tmp_path: Path) -> None:
    """``if_generation_match``: 0 means "only if absent"; otherwise the current generation must match."""
    store = LocalBlobStore(tmp_path / "b")
    created = store.write("outputs/j.wav", b"one", "audio/wav", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        store.write("outputs/j.wav", b"two", "audio/wav", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        store.write("outputs/j.wav", b"two", "audio/wav", if_generation_match=created.generation - 1)
    assert store.read("outputs/j.wav") == b"one"
    updated = store.write("outputs/j.wav", b"two", "audio/wav", if_generation_match=created.generation)
    assert updated.generation > created.generation and store.read("outputs/j.wav") == b"two"
    with pytest.raises(PreconditionFailed):
        store.delete("outputs/j.wav", if_generation_match=created.generation)
    assert store.stat("outputs/j.wav") == updated
    store.delete("outputs/j.wav", if_generation_match=updated.generation)
    assert store.stat("outputs/j.wav") is None
    with pytest.raises(PreconditionFailed):
        store.delete("outputs/j.wav", if_generation_match=updated.generation)


def test_write_file_copies_a_file_with_its_metadata(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    source = tmp_path / "final.wav"
    source.write_bytes(b"RIFF" + bytes(1000))
    info = store.write_file("outputs/j.wav", source, "audio/wav", {"job_generation": "7"}, if_generation_match=0)
    assert info.size == 1004 and store.read("outputs/j.wav", info.generation) == source.read_bytes()
    assert store.stat("outputs/j.wav").metadata == {"job_generation": "7"}  # type: ignore[union-attr]
    assert store.stat("outputs/j.wav").content_type == "audio/wav"  # type: ignore[union-attr]


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
    store.write("outputs/j/parts/0.wav", b"RIFF", "audio/wav")
    store.delete("outputs/j/parts/0.wav")
    assert [i.name for i in store.list("")] == ["outputs/j.wav"]
    assert not (tmp_path / "b" / "outputs" / "j").exists()  # a bucket has no folders: emptied ones go
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

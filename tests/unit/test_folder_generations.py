"""The folder bucket behaves like a bucket: every new version has a greater generation, whatever
its timestamps say; preconditions hold across processes; SQLite claims hold across processes."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from voicecloning import records
from voicecloning.errors import PreconditionFailed
from voicecloning.stores.documents import SqliteDocumentStore
from voicecloning.stores.folder import LocalBlobStore


def test_two_writes_in_a_row_are_two_generations(tmp_path: Path) -> None:
    """No sleep between writes: the counter, not the clock, orders them."""
    store = LocalBlobStore(tmp_path / "b")
    generations = [store.write("requests/j.json", b"x", "application/json").generation for _ in range(20)]
    assert generations == sorted(generations) and len(set(generations)) == 20


@pytest.mark.parametrize("how", ["cp -p", "mv", "rsync-like"])
def test_a_reupload_with_an_older_timestamp_is_a_newer_generation(tmp_path: Path, how: str) -> None:
    """`cp -p`, `mv` and `rsync -a` keep old modification times; the re-upload is still newer."""
    store = LocalBlobStore(tmp_path / "b")
    first = store.write("requests/j.json", b"first", "application/json")
    old = tmp_path / "old.json"
    old.write_bytes(b"second")
    os.utime(old, (1_000_000_000, 1_000_000_000))  # 2001
    dest = tmp_path / "b" / "requests" / "j.json"
    if how == "cp -p":
        subprocess.run(["cp", "-p", str(old), str(dest)], check=True)
    elif how == "mv":
        shutil.move(str(old), str(dest))
    else:
        tmp = dest.with_name(".j.json.rsync")
        shutil.copy2(old, tmp)
        os.replace(tmp, dest)
    second = store.stat("requests/j.json")
    assert second is not None and second.generation > first.generation
    assert store.read("requests/j.json", first.generation) is None
    assert store.read("requests/j.json", second.generation) == b"second"
    assert store.stat("requests/j.json") == second  # stable until it changes again


def test_generation_preconditions_refuse_a_stale_write_and_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    with pytest.raises(PreconditionFailed):
        store.write("o.wav", b"a", "audio/wav", if_generation_match=5)
    first = store.write("o.wav", b"a", "audio/wav", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        store.write("o.wav", b"b", "audio/wav", if_generation_match=0)
    second = store.write("o.wav", b"b", "audio/wav", if_generation_match=first.generation)
    with pytest.raises(PreconditionFailed):
        store.delete("o.wav", if_generation_match=first.generation)
    store.delete("o.wav", if_generation_match=second.generation)
    assert store.stat("o.wav") is None


def _write_many(root: str, tag: str, count: int) -> list[int]:
    store = LocalBlobStore(Path(root))
    return [store.write(f"o/{tag}-{n}", b"x", "text/plain").generation for n in range(count)]


def _claim(path: str, start: float) -> str:
    import time

    docs = SqliteDocumentStore(path)
    while time.time() < start:
        time.sleep(0.001)
    return records.claim(docs, "jobs/j", generation=1, now=datetime.now(UTC), lease_seconds=60, max_attempts=5,
                         working_status="processing").outcome


def test_two_processes_get_distinct_increasing_generations(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        a, b = pool.starmap(_write_many, [(str(tmp_path / "b"), "a", 30), (str(tmp_path / "b"), "b", 30)])
    assert len(set(a) | set(b)) == 60 and a == sorted(a) and b == sorted(b)


def test_two_processes_sharing_one_sqlite_file_claim_a_job_once(tmp_path: Path) -> None:
    """Four processes race for the same claim on one SQLite file: exactly one gets it."""
    import time

    path = str(tmp_path / "d.sqlite3")
    SqliteDocumentStore(path).update("jobs/j", {"status": "queued", "source": {"generation": "1"}, "attempts": 0})
    start = time.time() + 1.0
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        outcomes = pool.starmap(_claim, [(path, start)] * 4)
    assert sorted(outcomes) == ["busy", "busy", "busy", "claimed"]

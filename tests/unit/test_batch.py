"""Batch manifests: one job per line, bad lines fail alone, and exact counts under repeated reports."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voicecloning.batch import ManifestLimits, default_job_id, job_finished, open_batch, parse_manifest
from voicecloning.errors import InvalidRequest
from voicecloning.settings import Limits, Settings
from voicecloning.stores.documents import SqliteDocumentStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LIMITS = ManifestLimits()
PATH = "users/u1/batches/b1"


def manifest(*lines: object) -> bytes:
    return "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines).encode()


@pytest.fixture
def docs(tmp_path: Path) -> SqliteDocumentStore:
    return SqliteDocumentStore(tmp_path / "documents.sqlite3")


def test_each_line_becomes_a_job_named_after_the_batch_and_line() -> None:
    lines = parse_manifest(manifest({"text": "One", "voice_id": "a"}, "", {"text": "Two", "voice_id": "a",
                                                                           "job_id": "chapter-2"}), "b1", LIMITS)
    assert [(ln.n, ln.job_id, ln.error) for ln in lines] == [(1, "b1-1", None), (3, "chapter-2", None)]
    assert json.loads(lines[1].body) == {"text": "Two", "voice_id": "a"}  # type: ignore[arg-type]


@pytest.mark.parametrize(("line", "fragment"), [
    ("{not json", "line 2 is not valid JSON"),
    ('["a list"]', "line 2 must be a JSON object"),
    ('{"text": "x", "job_id": "a b"}', "line 2: 'job_id' is not a valid job id"),
    ('{"text": "x", "job_id": 5}', "'job_id' is not a valid job id"),
])
def test_a_bad_line_is_a_line_error_not_a_batch_failure(line: str, fragment: str) -> None:
    lines = parse_manifest(manifest({"text": "ok", "voice_id": "a"}, line, {"text": "ok", "voice_id": "a"}), "b1", LIMITS)
    assert [ln.error is None for ln in lines] == [True, False, True]
    assert fragment in lines[1].error and lines[1].job_id == "b1-2" and lines[1].body is None  # type: ignore[operator]


def test_an_oversized_line_fails_alone() -> None:
    lines = parse_manifest(manifest({"text": "x" * 300}, {"text": "ok"}), "b1", ManifestLimits(max_line_bytes=100))
    assert "line 1 is 312 bytes" in lines[0].error and lines[1].error is None  # type: ignore[operator]


def test_a_repeated_job_id_fails_the_later_line_under_its_own_id() -> None:
    lines = parse_manifest(manifest({"job_id": "x"}, {"job_id": "x"}, {"job_id": "b1-4"}, "oops"), "b1", LIMITS)
    assert [ln.job_id for ln in lines][:3] == ["x", "b1-2", "b1-4"]
    assert lines[1].error == "line 2: job id 'x' is already used by line 1."
    assert lines[3].job_id.startswith("invalid-") and "not valid JSON" in lines[3].error  # type: ignore[operator]
    assert len({ln.job_id for ln in lines}) == 4


@pytest.mark.parametrize(("data", "limits", "fragment"), [
    (b"", LIMITS, "has no lines"),
    (b"\n \n", LIMITS, "has no lines"),
    (b"\xff\xfe{}", LIMITS, "not UTF-8"),
    (manifest(*[{}] * 4), ManifestLimits(max_lines=3), "has 4 requests; at most 3"),
    (b"{}" * 60, ManifestLimits(max_bytes=100), "the manifest is 120 bytes; the limit is 100"),
])
def test_an_unusable_manifest_is_refused_as_a_whole(data: bytes, limits: ManifestLimits, fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        parse_manifest(data, "b1", limits)


def test_job_ids_stay_within_the_id_limit_for_long_batch_ids() -> None:
    assert default_job_id("b" * 64, 1000) == "b" * 59 + "-1000"


def test_limits_come_from_the_settings() -> None:
    env = {"VOICECLONING_BATCH_MAX_LINES": "5", "VOICECLONING_BATCH_MAX_BYTES": "1000"}
    assert ManifestLimits.from_settings(Settings.from_env(env)) == ManifestLimits(5, 1000, Limits().max_request_bytes)


def open_three(docs: SqliteDocumentStore, generation: int = 1) -> dict[str, object]:
    lines = parse_manifest(manifest({"text": "a"}, "{bad", {"text": "c"}), "b1", LIMITS)
    outcome, doc = open_batch(docs, PATH, generation, lines, NOW, owner="u1", batch_id="b1")
    assert outcome == "new"
    return doc


def test_a_batch_counts_bad_lines_as_failed_from_the_start(docs: SqliteDocumentStore) -> None:
    doc = open_three(docs)
    assert {k: doc[k] for k in ("batch_id", "owner", "status", "total", "done", "failed")} == {
        "batch_id": "b1", "owner": "u1", "status": "running", "total": 3, "done": 0, "failed": 1}
    assert doc["jobs"] == {"b1-1": "pending", "b1-2": "failed", "b1-3": "pending"}


def test_the_batch_becomes_done_exactly_once_when_every_job_has_ended(docs: SqliteDocumentStore) -> None:
    open_three(docs)
    assert job_finished(docs, PATH, 1, "b1-1", "done", NOW) is False
    assert job_finished(docs, PATH, 1, "b1-3", "failed", NOW + timedelta(seconds=5)) is True
    assert job_finished(docs, PATH, 1, "b1-3", "failed", NOW + timedelta(seconds=9)) is False  # a redelivery
    doc = docs.get(PATH)
    assert doc is not None
    assert (doc["status"], doc["total"], doc["done"], doc["failed"]) == ("done", 3, 1, 2)
    assert doc["finished_at"] == NOW + timedelta(seconds=5)


def test_repeated_and_foreign_reports_change_nothing(docs: SqliteDocumentStore) -> None:
    open_three(docs)
    for _ in range(3):
        job_finished(docs, PATH, 1, "b1-1", "done", NOW)
    job_finished(docs, PATH, 1, "b1-1", "failed", NOW)  # a later contradicting report for a counted job
    job_finished(docs, PATH, 1, "b1-2", "done", NOW)  # the bad line's job cannot turn done
    job_finished(docs, PATH, 1, "other", "done", NOW)  # not in this batch
    doc = docs.get(PATH)
    assert doc is not None and (doc["done"], doc["failed"], doc["status"]) == (1, 1, "running")


def test_a_batch_of_only_bad_lines_is_done_at_once(docs: SqliteDocumentStore) -> None:
    lines = parse_manifest(b"{bad\n[1]", "b1", LIMITS)
    _outcome, doc = open_batch(docs, PATH, 1, lines, NOW)
    assert (doc["status"], doc["failed"], doc["finished_at"]) == ("done", 2, NOW)


def test_a_reuploaded_manifest_supersedes_the_old_batch(docs: SqliteDocumentStore) -> None:
    """The newer generation replaces the document; late reports for the old one are ignored."""
    open_three(docs, generation=1)
    lines = parse_manifest(manifest({"text": "new"}), "b1", LIMITS)
    assert open_batch(docs, PATH, 2, lines, NOW)[0] == "new"
    assert open_batch(docs, PATH, 1, lines, NOW)[0] == "stale"
    assert open_batch(docs, PATH, 2, lines, NOW)[0] == "current"
    assert job_finished(docs, PATH, 1, "b1-1", "done", NOW) is False
    assert docs.get(PATH)["done"] == 0  # type: ignore[index]
    assert job_finished(docs, PATH, 2, "b1-1", "done", NOW) is True


def test_concurrent_duplicate_reports_keep_counts_exact(docs: SqliteDocumentStore, tmp_path: Path) -> None:
    """Every job reported by three workers at once: one 'became done' in total, counts exact."""
    lines = parse_manifest(manifest(*[{"text": str(i)} for i in range(12)]), "b1", LIMITS)
    open_batch(docs, PATH, 1, lines, NOW)
    results: list[bool] = []

    def report(job_ids: list[str]) -> None:
        store = SqliteDocumentStore(tmp_path / "documents.sqlite3")
        results.extend(job_finished(store, PATH, 1, j, "done", NOW) for j in job_ids)

    ids = [ln.job_id for ln in lines]
    threads = [threading.Thread(target=report, args=(ids,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc = docs.get(PATH)
    assert doc is not None and (doc["done"], doc["failed"], doc["status"]) == (12, 0, "done")
    assert results.count(True) == 1

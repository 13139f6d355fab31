"""Daily usage in sharded counters (the embedded SQLite store) and quotas that name what is used up."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from voicecloning import usage
from voicecloning.errors import InvalidRequest
from voicecloning.settings import Product
from voicecloning.stores.documents import SqliteDocumentStore

NOW = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)
DAY = "2026-12-01"


class CountingStore(SqliteDocumentStore):
    """The real embedded store, counting the writes each document receives."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: dict[str, int] = {}
        self._lock = threading.Lock()

    def transact(self, path: str, fn: Any) -> Any:
        def counted(doc: Any) -> Any:
            new, result = fn(doc)
            if new is not None:
                with self._lock:
                    self.writes[path] = self.writes.get(path, 0) + 1
            return new, result

        return super().transact(path, counted)


@pytest.fixture
def docs(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "documents.sqlite3")


def test_a_recorded_job_shows_in_the_readable_daily_total(docs: CountingStore) -> None:
    assert usage.record(docs, "u1", DAY, 120, 8.25, 3.5, key="users/u1/jobs/j1@1", now=NOW) is True
    total = docs.get("users/u1/usage/2026-12-01")
    assert total is not None
    assert {k: total[k] for k in ("chars", "audio_s", "compute_s", "jobs", "day")} == {
        "chars": 120, "audio_s": 8.25, "compute_s": 3.5, "jobs": 1, "day": DAY}


def test_a_burst_of_jobs_writes_the_total_at_most_once_per_interval(docs: CountingStore) -> None:
    """50 jobs at the same moment: shards share the writes, the total is written once; refresh catches up."""
    refreshed = [usage.record(docs, "u1", DAY, 10, 1.0, 0.5, key=f"j{i}", now=NOW) for i in range(50)]
    assert refreshed.count(True) == 1
    assert docs.writes["users/u1/usage/2026-12-01"] == 1
    shard_writes = [n for p, n in docs.writes.items() if "/shards/" in p]
    assert sum(shard_writes) == 50 and max(shard_writes) < 50 / 2
    assert docs.get("users/u1/usage/2026-12-01")["chars"] == 10  # type: ignore[index]
    later = NOW + timedelta(seconds=usage.ROLLUP_INTERVAL_S)
    assert usage.refresh(docs, "u1", DAY, later, min_age_s=usage.ROLLUP_INTERVAL_S) is True
    assert docs.get("users/u1/usage/2026-12-01")["chars"] == 500  # type: ignore[index]


def test_totals_are_exact_even_while_the_readable_total_lags(docs: CountingStore) -> None:
    for i in range(5):
        usage.record(docs, "u1", DAY, 100, 2.0, 1.0, key=f"j{i}", now=NOW)
    assert usage.totals(docs, "u1", DAY) == usage.Usage(chars=500, audio_s=10.0, compute_s=5.0, jobs=5)


def test_a_redelivered_job_is_counted_once(docs: CountingStore) -> None:
    for _ in range(3):
        usage.record(docs, "u1", DAY, 100, 2.0, 1.0, key="users/u1/jobs/j1@7", now=NOW)
    assert usage.totals(docs, "u1", DAY).jobs == 1


def test_concurrent_workers_lose_no_counts(docs: CountingStore, tmp_path: Path) -> None:
    """Eight threads with their own connections to one SQLite file add 80 jobs exactly."""

    def work(n: int) -> None:
        store = SqliteDocumentStore(tmp_path / "documents.sqlite3")
        for i in range(10):
            usage.record(store, "u1", DAY, 7, 0.5, 0.25, key=f"w{n}-{i}", now=NOW)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert usage.totals(docs, "u1", DAY) == usage.Usage(chars=560, audio_s=40.0, compute_s=20.0, jobs=80)


def test_owners_and_days_are_counted_apart(docs: CountingStore) -> None:
    usage.record(docs, "u1", DAY, 1, 1.0, 1.0, now=NOW)
    usage.record(docs, "u2", DAY, 2, 1.0, 1.0, now=NOW)
    usage.record(docs, None, "2026-12-02", 3, 1.0, 1.0, now=NOW)
    assert [usage.totals(docs, o, d).chars for o, d in (("u1", DAY), ("u2", DAY), (None, "2026-12-02"), ("u1", "2026-12-02"))] == [1, 2, 3, 0]
    assert docs.get("usage/2026-12-02") is not None  # unowned jobs count under usage/<day>


def test_without_quotas_nothing_is_checked(docs: CountingStore) -> None:
    usage.record(docs, "u1", DAY, 10**9, 10**6, 1.0, now=NOW)
    usage.check_quota(docs, "u1", Product(), 10**6, NOW)


def test_a_job_over_the_character_quota_is_refused_naming_quota_use_and_reset(docs: CountingStore) -> None:
    usage.record(docs, "u1", DAY, 9_500, 60.0, 10.0, now=NOW)
    quota = Product(quota_chars_per_day=10_000)
    usage.check_quota(docs, "u1", quota, 500, NOW)  # exactly at the quota is fine
    with pytest.raises(usage.QuotaExceeded) as info:
        usage.check_quota(docs, "u1", quota, 800, NOW)
    assert isinstance(info.value, InvalidRequest)
    assert str(info.value) == ("the daily character quota is 10,000 characters; 9,500 are used today and this "
                               "request needs 800; it resets at 2026-12-02 00:00 UTC (in 2 h 30 min).")


def test_the_audio_quota_refuses_once_the_day_is_used_up(docs: CountingStore) -> None:
    quota = Product(quota_audio_seconds_per_day=120.0)
    usage.record(docs, "u1", DAY, 10, 119.0, 5.0, now=NOW)
    usage.check_quota(docs, "u1", quota, 10, NOW)
    usage.record(docs, "u1", DAY, 10, 1.5, 5.0, now=NOW)
    with pytest.raises(usage.QuotaExceeded, match=r"the daily audio quota is 120 seconds; 120.5 s are used today"):
        usage.check_quota(docs, "u1", quota, 10, NOW)


def test_quotas_reset_at_the_next_utc_midnight(docs: CountingStore) -> None:
    usage.record(docs, "u1", DAY, 10_000, 1.0, 1.0, now=NOW)
    tomorrow = datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC)
    usage.check_quota(docs, "u1", Product(quota_chars_per_day=10_000), 10_000, tomorrow)
    assert usage.resets_at(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)


def test_job_usage_and_day_helpers() -> None:
    assert usage.job_usage(12, 1.23456, 0.5) == {"chars": 12, "audio_s": 1.235, "compute_s": 0.5}
    assert usage.day_of(datetime(2026, 12, 1, 23, 30, tzinfo=UTC) + timedelta(hours=1)) == "2026-12-02"
    with pytest.raises(ValueError):
        usage.total_path("u1", "../x")

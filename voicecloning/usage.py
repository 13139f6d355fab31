"""Per-owner daily usage (characters, audio seconds, compute seconds) and optional quotas.

Firestore sustains about one write per second per document, so a busy owner's
day is counted in ``SHARDS`` shard documents::

    users/<uid>/usage/<yyyy-mm-dd>/shards/<k>     counters, k = 0..SHARDS-1  (unowned: usage/<day>/shards/<k>)
    users/<uid>/usage/<yyyy-mm-dd>                the readable total (chars, audio_s, compute_s, jobs, updated_at)

``record`` adds one job to one shard (chosen from the job's ``key``, so a
redelivered job lands on the same shard and is counted once), then refreshes the
total document if its ``updated_at`` is at least ``ROLLUP_INTERVAL_S`` old: the
total gets at most one write per interval however many jobs finish. ``record``
returns whether it refreshed the total; when it did not, the caller schedules
``refresh`` after ``ROLLUP_INTERVAL_S`` (a delayed task) so the last jobs of a
burst show up too. Quota checks never read the total: ``totals`` sums the shards,
which is exact. Days are UTC days; a quota resets at the next UTC midnight.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from voicecloning.errors import InvalidRequest
from voicecloning.settings import Product
from voicecloning.stores.documents import DocumentStore

SHARDS = 16  # ~16 job completions per second per owner before one shard sees more than one write/s
ROLLUP_INTERVAL_S = 2.0
MAX_KEYS = 4000  # job keys remembered per shard for de-duplication (~64,000 jobs per owner and day)


class QuotaExceeded(InvalidRequest):
    """A daily quota is used up; the message names it, the amount used and when it resets."""


@dataclass(frozen=True)
class Usage:
    chars: int = 0
    audio_s: float = 0.0
    compute_s: float = 0.0
    jobs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"chars": self.chars, "audio_s": round(self.audio_s, 3), "compute_s": round(self.compute_s, 3),
                "jobs": self.jobs}


def job_usage(chars: int, audio_s: float, compute_s: float) -> dict[str, Any]:
    """What a job document records as ``usage``."""
    return {"chars": int(chars), "audio_s": round(audio_s, 3), "compute_s": round(compute_s, 3)}


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def total_path(owner: str | None, day: str | date) -> str:
    prefix = f"users/{owner}/" if owner else ""
    return f"{prefix}usage/{_day(day)}"


def shard_path(owner: str | None, day: str | date, shard: int) -> str:
    return f"{total_path(owner, day)}/shards/{shard}"


def record(
    docs: DocumentStore, owner: str | None, day: str | date, chars: int, audio_s: float, compute_s: float,
    shard: int | None = None, *, key: str | None = None, now: datetime | None = None,
) -> bool:
    """Add one job's usage to the owner's day; True if the readable total was refreshed.

    With ``key`` (e.g. ``"<job path>@<generation>"``) a repeated call for the same job adds nothing.
    """
    now = now or datetime.now(UTC)
    if shard is None:
        shard = int(hashlib.sha256(key.encode()).hexdigest(), 16) % SHARDS if key else random.randrange(SHARDS)
    if not 0 <= shard < SHARDS:
        raise ValueError(f"shard must be in 0..{SHARDS - 1}")

    def add(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
        doc = doc or {}
        keys = list(doc.get("keys") or [])
        if key is not None and key in keys:
            return None, False
        if key is not None:
            keys = [*keys, key][-MAX_KEYS:]
        updated = {
            "chars": int(doc.get("chars") or 0) + int(chars),
            "audio_s": round(float(doc.get("audio_s") or 0.0) + audio_s, 3),
            "compute_s": round(float(doc.get("compute_s") or 0.0) + compute_s, 3),
            "jobs": int(doc.get("jobs") or 0) + 1,
            "keys": keys,
            "updated_at": now,
        }
        return updated, True

    if not docs.transact(shard_path(owner, day, shard), add):
        return False
    return refresh(docs, owner, day, now, min_age_s=ROLLUP_INTERVAL_S)


def totals(docs: DocumentStore, owner: str | None, day: str | date) -> Usage:
    """The exact usage of the owner's day: the sum of its shards."""
    chars, audio, compute, jobs = 0, 0.0, 0.0, 0
    for k in range(SHARDS):
        doc = docs.get(shard_path(owner, day, k)) or {}
        chars += int(doc.get("chars") or 0)
        audio += float(doc.get("audio_s") or 0.0)
        compute += float(doc.get("compute_s") or 0.0)
        jobs += int(doc.get("jobs") or 0)
    return Usage(chars, audio, compute, jobs)


def refresh(docs: DocumentStore, owner: str | None, day: str | date, now: datetime, min_age_s: float = 0.0) -> bool:
    """Write the shards' sum to the readable total unless it was written less than ``min_age_s`` ago."""
    path = total_path(owner, day)
    current = docs.get(path)
    if current is not None and _age(current, now) < min_age_s:
        return False
    summed = totals(docs, owner, day)

    def write(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
        if doc is not None and _age(doc, now) < min_age_s:
            return None, False  # another worker refreshed it meanwhile
        return {**summed.to_dict(), "owner": owner, "day": _day(day), "updated_at": now}, True

    return docs.transact(path, write)


def check_quota(docs: DocumentStore, owner: str | None, product: Product, chars: int, now: datetime) -> None:
    """``QuotaExceeded`` if a job of ``chars`` characters would exceed the owner's quotas today."""
    if not product.quota_chars_per_day and not product.quota_audio_seconds_per_day:
        return
    used = totals(docs, owner, day_of(now))
    resets = resets_at(now)
    when = f"it resets at {resets:%Y-%m-%d %H:%M} UTC (in {_span(resets - now)})"
    limit = product.quota_chars_per_day
    if limit and used.chars + chars > limit:
        raise QuotaExceeded(
            f"the daily character quota is {limit:,} characters; {used.chars:,} are used today and this request "
            f"needs {chars:,}; {when}."
        )
    audio_limit = product.quota_audio_seconds_per_day
    if audio_limit and used.audio_s >= audio_limit:
        raise QuotaExceeded(
            f"the daily audio quota is {audio_limit:,.0f} seconds; {used.audio_s:,.1f} s are used today; {when}."
        )


def resets_at(now: datetime) -> datetime:
    """The next UTC midnight."""
    today = now.astimezone(UTC).date()
    return datetime.combine(today + timedelta(days=1), time(0, 0), tzinfo=UTC)


def _day(day: str | date) -> str:
    text = day.isoformat() if isinstance(day, date) else day
    date.fromisoformat(text)  # raises ValueError for anything but yyyy-mm-dd
    return text


def _age(doc: dict[str, Any], now: datetime) -> float:
    updated = doc.get("updated_at")
    return (now - updated).total_seconds() if isinstance(updated, datetime) else float("inf")


def _span(delta: timedelta) -> str:
    minutes = max(1, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"

"""Batch manifests: ``batches/<batch_id>.jsonl`` -- one request object per line -- and the batch document.

``parse_manifest`` checks the manifest as a whole (size, encoding, line count)
and each line on its own: a line that is not a JSON object, or names a bad or
repeated ``job_id``, becomes a ``BatchLine`` with an ``error`` -- that line's job
fails with the reason, the batch goes on. A good line's ``body`` is the request
without ``job_id``; it is validated like any request when its job runs.
Blank lines are skipped; ``n`` is the 1-based line number in the file.
Jobs are ``<batch_id>-<n>`` unless the line names its own ``job_id``.

The batch document (``batches/<batch_id>``, or under ``users/<uid>/``)::

    {"batch_id", "owner", "source": {"generation"}, "status": "running" | "done",
     "total", "done", "failed", "jobs": {"<job_id>": "pending" | "done" | "failed"},
     "created_at", "updated_at", "finished_at"}

``done`` + ``failed`` == ``total`` makes the batch ``done`` (each job keeps its
own status; ``failed`` counts the failures). Counts are recomputed from
``jobs`` in every transaction, so a repeated ``job_finished`` changes nothing.
A re-uploaded manifest (a newer generation) replaces the document; reports for
the old generation are ignored. Every finished job writes the batch document
once: Firestore sustains ~1 write/s per document, enough for batches whose
jobs finish at up to about one per second on average (bursts are absorbed by
transaction retries).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voicecloning.errors import InvalidRequest
from voicecloning.routes import ID_RULE, valid_id

JOB_STATUSES = ("done", "failed")


@dataclass(frozen=True)
class ManifestLimits:
    max_lines: int = 1000
    max_bytes: int = 4 * 1024 * 1024
    max_line_bytes: int = 256 * 1024  # one request (settings.limits.max_request_bytes)

    @classmethod
    def from_settings(cls, settings: Any) -> ManifestLimits:
        return cls(settings.product.batch_max_lines, settings.product.batch_max_bytes,
                   settings.limits.max_request_bytes)


@dataclass(frozen=True)
class BatchLine:
    n: int  # line number in the file, from 1
    job_id: str
    body: bytes | None  # the request JSON for this job, or None when ``error`` is set
    error: str | None = None


def parse_manifest(data: bytes, batch_id: str, limits: ManifestLimits) -> list[BatchLine]:
    """The manifest's lines as jobs; ``InvalidRequest`` only when the manifest as a whole is unusable."""
    if not valid_id(batch_id):
        raise InvalidRequest(f"the batch id '{batch_id[:64]}' is not valid; {ID_RULE}.")
    if len(data) > limits.max_bytes:
        raise InvalidRequest(f"the manifest is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes. "
                             "Split it into several batches.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the manifest is not UTF-8 text (bad byte at position {exc.start}).") from None
    raw = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not raw:
        raise InvalidRequest("the manifest has no lines; put one request object per line.")
    if len(raw) > limits.max_lines:
        raise InvalidRequest(f"the manifest has {len(raw):,} requests; at most {limits.max_lines:,} are allowed.")
    parsed = [_line(n, line, batch_id, limits) for n, line in raw]
    return _unique(parsed, batch_id)


def default_job_id(batch_id: str, n: int) -> str:
    suffix = f"-{n}"
    return batch_id[: 64 - len(suffix)] + suffix


def _line(n: int, line: str, batch_id: str, limits: ManifestLimits) -> BatchLine:
    job_id = default_job_id(batch_id, n)
    size = len(line.encode())
    if size > limits.max_line_bytes:
        return BatchLine(n, job_id, None, f"line {n} is {size:,} bytes; a request may have at most "
                                          f"{limits.max_line_bytes:,}.")
    try:
        body = json.loads(line)
    except json.JSONDecodeError as exc:
        return BatchLine(n, job_id, None, f"line {n} is not valid JSON: {exc.msg} at column {exc.colno}.")
    if not isinstance(body, dict):
        return BatchLine(n, job_id, None, f"line {n} must be a JSON object (a request), one per line.")
    if "job_id" in body:
        named = body.pop("job_id")
        if not isinstance(named, str) or not valid_id(named):
            return BatchLine(n, job_id, None, f"line {n}: 'job_id' is not a valid job id; {ID_RULE}.")
        job_id = named
    return BatchLine(n, job_id, json.dumps(body, ensure_ascii=False).encode())


def _unique(lines: list[BatchLine], batch_id: str) -> list[BatchLine]:
    """A job id used by an earlier line fails the later line, which gets an id of its own."""
    taken: dict[str, int] = {}
    out = []
    for line in lines:
        if line.job_id in taken:
            fallback = default_job_id(batch_id, line.n)
            if fallback in taken or any(other.job_id == fallback for other in lines if other is not line):
                fallback = "invalid-" + hashlib.sha256(f"{batch_id}\n{line.n}".encode()).hexdigest()[:16]
            error = line.error or f"line {line.n}: job id '{line.job_id}' is already used by line {taken[line.job_id]}."
            line = BatchLine(line.n, fallback, None, error)
        taken[line.job_id] = line.n
        out.append(line)
    return out


def _generation(doc: dict[str, Any] | None) -> int:
    return int(((doc or {}).get("source") or {}).get("generation", -1))


def open_batch(
    docs: Any, path: str, generation: int, lines: list[BatchLine], now: datetime, *, owner: str | None = None,
    batch_id: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Create (or, for a newer manifest, replace) the batch document.

    Returns ("new" | "current" | "stale", the document). Lines with an ``error``
    count as failed at once; if every line failed the batch is already ``done``.
    """

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, tuple[str, dict[str, Any]]]:
        current = _generation(doc)
        if doc is not None and current > generation:
            return None, ("stale", doc)
        if doc is not None and current == generation:
            return None, ("current", doc)
        jobs = {line.job_id: ("failed" if line.error else "pending") for line in lines}
        fresh = {
            "batch_id": batch_id or path.rsplit("/", 1)[-1],
            "owner": owner,
            "source": {"generation": str(generation)},
            "jobs": jobs,
            "created_at": now,
            "finished_at": None,
            **_counted(jobs, now),
            "updated_at": now,
        }
        return fresh, ("new", fresh)

    return docs.transact(path, fn)  # type: ignore[no-any-return]


def job_finished(docs: Any, batch_path: str, generation: int, job_id: str, status: str, now: datetime) -> bool:
    """Note that one job of the batch ended; True exactly once: when this call made the batch ``done``."""
    if status not in JOB_STATUSES:
        raise ValueError(f"a finished job's status is one of {JOB_STATUSES}, not {status!r}")

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
        if doc is None or _generation(doc) != generation:
            return None, False
        jobs = dict(doc.get("jobs") or {})
        if jobs.get(job_id) != "pending":
            return None, False  # not this batch's job, or already counted
        jobs[job_id] = status
        updated = {**doc, "jobs": jobs, **_counted(jobs, now, doc.get("finished_at")), "updated_at": now}
        return updated, updated["status"] == "done"

    return docs.transact(batch_path, fn)  # type: ignore[no-any-return]


def _counted(jobs: dict[str, str], now: datetime, finished_at: datetime | None = None) -> dict[str, Any]:
    done = sum(1 for s in jobs.values() if s == "done")
    failed = sum(1 for s in jobs.values() if s == "failed")
    finished = done + failed == len(jobs)
    return {"total": len(jobs), "done": done, "failed": failed, "status": "done" if finished else "running",
            "finished_at": (finished_at or now) if finished else None}

"""Join a job's rendered parts into its final file: exactly one assembler, streaming, fenced.

The assembler is chosen by the job's claim (a transaction with a lease): a second
assembly task finds the lease and is retried, and finds the job ``done`` after. A dead
assembler's lease runs out and the next delivery takes over. ``done`` is recorded only
after the final object exists; a delivery that finds this generation's final object
already written finishes without joining again.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from handlers.captions_out import write_captions
from handlers.outcome import Outcome, claim_or_outcome, internal_error, record_failure, release_and_raise
from voicecloning import records
from voicecloning.assembly import MissingPart, PartAudio, assemble
from voicecloning.errors import InputError, Overtaken, TransientError
from voicecloning.logs import fields
from voicecloning.part_records import part_path, tally
from voicecloning.routes import output_name, part_name
from voicecloning.settings import Settings
from voicecloning.stores.blobs import BlobStore
from voicecloning.stores.documents import DocumentStore
from voicecloning.stores.fenced import delete_owned, owned, owner_of, write_owned
from voicecloning.stores.queue import Task, TaskQueue

log = logging.getLogger(__name__)


def assemble_job(
    task: Task, *, outputs: BlobStore, docs: DocumentStore, tasks: TaskQueue, engine: Any, settings: Settings,
    clock: Callable[[], datetime], worker: str,
) -> Outcome:
    job_path, generation = task.body["job"], int(task.body["generation"])
    job = docs.get(job_path)
    if job is None or records.generation_of(job) != generation:
        return Outcome.STALE
    if job.get("status") in records.TERMINAL:
        return Outcome.DUPLICATE
    counted = tally(docs, job_path, generation, int(job.get("parts_total") or 0))
    if not counted.complete:
        return Outcome.IGNORED  # early: the worker that finishes the last part queues assembly again
    apath = assembly_path(job_path)
    opened, _doc = records.open_record(docs, apath, generation=generation, now=clock(), initial={
        "status": "queued", "job_id": job.get("job_id"), "owner": job.get("owner"),
        "source": {"generation": str(generation)}})
    if opened == "stale":
        return Outcome.STALE
    claimed = claim_or_outcome(docs, apath, generation, "processing", settings, clock(), extra={"worker": worker})
    if claimed == Outcome.EXHAUSTED:
        reason = (docs.get(apath) or {}).get("error") or "it kept failing"
        return record_failure(docs, job_path, generation, None, f"the parts could not be joined: {reason}", clock())
    if isinstance(claimed, Outcome):
        return claimed
    token = claimed.token
    assert token is not None
    fmt, rate = str(job.get("format") or "wav"), int(job.get("sample_rate") or 24000)
    name = output_name(job.get("owner"), str(job.get("job_id")), fmt)
    parts = [counted.parts[i] for i in range(counted.total)]
    try:
        facts = _existing(outputs, name, generation) or _join(
            parts, name, generation, fmt, rate, job, engine.manifest, outputs=outputs,
            renew=_renewer(docs, apath, generation, token, settings, clock))
        if facts is None:
            return Outcome.STALE
        facts |= write_captions(outputs, job, parts, generation,
                                renew=_renewer(docs, apath, generation, token, settings, clock))
        finished_at = clock()
        if not records.holds(docs, apath, generation=generation, token=token):
            return Outcome.STALE
        done = records.finish(docs, job_path, generation=generation, token=None, now=finished_at, fields={
            "status": "done", "error": None, "lease": None, "progress": 1.0, "parts_done": counted.total,
            "output_uri": outputs.uri(name), "output_object": name, "license": engine.manifest.license,
            "assembler": worker, "finished_at": finished_at, **facts,
        })
        records.finish(docs, apath, generation=generation, token=token, now=finished_at,
                       fields={"status": "done", "lease": None, "finished_at": finished_at})
    except Overtaken:
        return Outcome.STALE
    except MissingPart as exc:
        return _rerender(docs, tasks, job_path, generation, token, exc.index, clock)
    except InputError as exc:
        record_failure(docs, apath, generation, token, str(exc), clock())
        return record_failure(docs, job_path, generation, None, str(exc), clock())
    except TransientError as exc:
        release_and_raise(docs, apath, generation, token, exc, "queued", clock())
    except Exception as exc:  # noqa: BLE001 -- a bug: fail fast with the reason, never retry it blindly
        log.exception("internal error while assembling", extra=fields(path=job_path))
        record_failure(docs, apath, generation, token, internal_error(exc), clock())
        return record_failure(docs, job_path, generation, None, internal_error(exc), clock())
    if not done:
        return Outcome.STALE
    log.info("job done", extra=fields(status="done", duration_s=facts["duration_s"], parts=counted.total))
    if not settings.keep_parts:
        remove_parts(outputs, job, generation)
    return Outcome.DONE


def assembly_path(job_path: str) -> str:
    """The document whose claim decides who joins the parts (its own lease and attempts, not the job's)."""
    return f"{job_path}/assembly/final"


def remove_parts(outputs: BlobStore, job: dict[str, Any], generation: int) -> int:
    """Delete the job's part objects written by this upload or an older one (never a newer one's)."""
    prefix = part_name(job.get("owner"), str(job.get("job_id")), 0, "")[: -len("0.")]
    removed = 0
    for info in outputs.list(prefix):
        owner = owner_of(info)
        if owner is not None and owner <= generation:
            removed += delete_owned(outputs, info.name, owner)
    return removed


def _existing(outputs: BlobStore, name: str, generation: int) -> dict[str, Any] | None:
    info = outputs.stat(name)
    if info is None or not owned(info, generation) or "duration_s" not in info.metadata:
        return None
    return {"content_type": info.content_type, "duration_s": float(info.metadata["duration_s"]),
            "sample_rate": int(info.metadata["sample_rate"])}


def _join(
    parts: list[dict[str, Any]], name: str, generation: int, fmt: str, rate: int, job: dict[str, Any],
    manifest: Any, *,
    outputs: BlobStore, renew: Callable[[], None],
) -> dict[str, Any] | None:
    audio = [PartAudio(str(p.get("output_object") or ""), float(p.get("pause_before_s") or 0.0)) for p in parts]

    def read(object_name: str) -> bytes | None:
        info = outputs.stat(object_name) if object_name else None
        return outputs.read(object_name, info.generation) if info is not None and owned(info, generation) else None

    with tempfile.TemporaryDirectory(prefix="assemble-") as folder:
        joined = assemble(audio, read, Path(folder) / f"final.{fmt}", fmt, rate, on_part=lambda _i: renew())
        metadata = {"job_id": str(job.get("job_id")), "duration_s": f"{joined.duration_s:.3f}",
                    "sample_rate": str(joined.sample_rate), "parts": str(len(parts)),
                    "settings": str(job.get("settings") or {})[:1000], "model_name": manifest.model_name,
                    "model_version": manifest.model_version, "license": manifest.license}
        written = write_owned(outputs, name, generation, joined.content_type, metadata, path=joined.path,
                              before_write=lambda: renew(strict=True))
    if written is None:
        return None
    return {"content_type": joined.content_type, "duration_s": round(joined.duration_s, 3),
            "sample_rate": joined.sample_rate}


def _renewer(docs: DocumentStore, path: str, generation: int, token: str, settings: Settings,
             clock: Callable[[], datetime]) -> Callable[..., None]:
    lease = settings.reliability.lease_seconds
    last = [time.monotonic()]

    def renew(strict: bool = False) -> None:
        if not strict and time.monotonic() - last[0] < lease / 3:
            return
        last[0] = time.monotonic()
        if not records.renew(docs, path, generation=generation, token=token, now=clock(), lease_seconds=lease):
            raise Overtaken(f"{path} is no longer ours")

    return renew


def _rerender(docs: DocumentStore, tasks: TaskQueue, job_path: str, generation: int, token: str, index: int,
              clock: Callable[[], datetime]) -> Outcome:
    """A part's audio vanished before assembly: queue that part again and give the job back."""
    path = part_path(job_path, index)
    docs.transact(path, lambda d: (({**d, "status": "queued", "lease": None, "output_object": None}, None)
                                   if d and records.generation_of(d) == generation else (None, None)))
    records.release(docs, assembly_path(job_path), generation=generation, token=token,
                    error=f"part {index} audio missing", status="queued", now=clock())
    tasks.publish([Task("render", {"job": job_path, "generation": str(generation), "part": index})])
    log.warning("part audio missing at assembly: rendering it again", extra=fields(path=path))
    return Outcome.STALE


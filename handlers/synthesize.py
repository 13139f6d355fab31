"""Run a synthesis job: parse the request, wait for its voices, synthesize, write the audio."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np

from handlers.outcome import Outcome, claim_or_outcome, record_failure, release_and_raise
from voicecloning import records
from voicecloning.audio.encode import encode_audio
from voicecloning.audio.level import level
from voicecloning.engine.latents import VoiceLatents
from voicecloning.errors import InputError, InvalidRequest, TransientError, VoiceNotReady, VoiceUnavailable
from voicecloning.events import StorageEvent
from voicecloning.logs import fields
from voicecloning.request import SynthesisRequest, parse_request
from voicecloning.routes import Route, voice_doc_path
from voicecloning.settings import Settings
from voicecloning.stores.blobs import BlobStore
from voicecloning.stores.documents import DocumentStore
from voicecloning.text import split_text

log = logging.getLogger(__name__)
PAUSE_BETWEEN_ITEMS_S = 0.35


def synthesize_job(
    event: StorageEvent,
    route: Route,
    *,
    inputs: BlobStore,
    outputs: BlobStore,
    docs: DocumentStore,
    engine: Any,
    settings: Settings,
    clock: Callable[[], datetime],
) -> Outcome:
    now = clock()
    path = route.doc_path
    source = {"bucket": event.bucket, "name": event.name, "generation": str(event.generation)}
    initial = {"status": "queued", "job_id": route.id, "owner": route.owner, "source": source, "progress": 0.0,
               "output_uri": None, "model_name": None, "model_version": None}
    opened, current = records.open_record(docs, path, generation=event.generation, initial=initial, now=now)
    if opened == "stale":
        return Outcome.STALE
    if route.problem:
        return record_failure(docs, path, event.generation, None, route.problem, now)
    if current.get("status") in records.TERMINAL:
        return Outcome.DUPLICATE
    try:
        request, voices = _prepare(event, route, opened, current, inputs=inputs, docs=docs, engine=engine,
                                   settings=settings, clock=clock)
    except InputError as exc:
        return record_failure(docs, path, event.generation, None, str(exc), clock())
    except VoiceNotReady:
        raise  # bounded by voice_wait_seconds, not by attempts
    except TransientError as exc:
        return _count_or_raise(docs, path, event.generation, exc, settings, clock)
    output_name = route.output_name(request.format)
    claimed = claim_or_outcome(docs, path, event.generation, "processing", settings, clock())
    if claimed == Outcome.EXHAUSTED:
        outputs.delete(output_name)  # never failed with an output left behind
    if isinstance(claimed, Outcome):
        return claimed
    token = claimed.token
    assert token is not None
    try:
        latents = {vid: _load_latents(vdoc, outputs) for vid, vdoc in voices.items()}
        keep = _keeper(docs, path, event.generation, token, settings, clock)
        audio = _render(request, latents, engine, keep)
        encoded = encode_audio(audio, 24000, request.format, request.sample_rate)
        if not records.holds(docs, path, generation=event.generation, token=token):
            log.info("job superseded before its output was written", extra=fields(status="superseded"))
            return Outcome.STALE  # a newer upload owns the output name now
        outputs.write(output_name, encoded.data, encoded.content_type, {
            "job_id": route.id,
            "model_name": engine.manifest.model_name,
            "model_version": engine.manifest.model_version,
            "license": engine.manifest.license,
            "settings": str(request.options.to_dict()),
        })
    except InputError as exc:
        outputs.delete(output_name)
        return record_failure(docs, path, event.generation, token, str(exc), clock())
    except Exception as exc:
        release_and_raise(docs, path, event.generation, token, exc, "queued", clock())
        raise  # unreachable
    finished_at = clock()
    done = records.finish(docs, path, generation=event.generation, token=token, now=finished_at, fields={
        "status": "done",
        "error": None,
        "lease": None,
        "progress": 1.0,
        "output_uri": outputs.uri(output_name),
        "output_object": output_name,
        "content_type": encoded.content_type,
        "duration_s": round(encoded.duration_s, 3),
        "sample_rate": encoded.sample_rate,
        "license": engine.manifest.license,
        "finished_at": finished_at,
    })
    log.info("job done" if done else "job superseded while running",
             extra=fields(status="done" if done else "superseded", duration_s=round(encoded.duration_s, 3)))
    return Outcome.DONE if done else Outcome.STALE


def _prepare(
    event: StorageEvent, route: Route, opened: str, current: dict[str, Any], *, inputs: BlobStore,
    docs: DocumentStore, engine: Any, settings: Settings, clock: Callable[[], datetime],
) -> tuple[SynthesisRequest, dict[str, dict[str, Any]]]:
    """Read and validate the request, record what it asks for, and wait for its voices."""
    request = _read_request(event, inputs, settings)
    for language in request.languages:
        engine.check_language(language)
    if opened == "new":
        summary = {**request.summary(), "model_name": engine.manifest.model_name,
                   "model_version": engine.manifest.model_version}
        records.annotate(docs, route.doc_path, generation=event.generation, fields=summary, now=clock())
    created = current.get("created_at") or clock()
    return request, _wait_for_voices(request, route, docs, inputs, settings, created=created, clock=clock)


def _count_or_raise(
    docs: DocumentStore, path: str, generation: int, exc: TransientError, settings: Settings,
    clock: Callable[[], datetime],
) -> Outcome:
    """A transient failure before the claim still counts towards the attempts (poison protection)."""
    try:
        exhausted = records.count_failure(docs, path, generation=generation, error=str(exc)[:500],
                                          max_attempts=settings.reliability.max_attempts, now=clock())
    except TransientError:
        exhausted = False
    if exhausted:
        log.error("job failed", extra=fields(status="failed", path=path, reason=str(exc)[:500]))
        return Outcome.EXHAUSTED
    log.error("will retry", exc_info=exc, extra=fields(path=path, reason=str(exc)[:500]))
    raise exc


def _read_request(event: StorageEvent, inputs: BlobStore, settings: Settings) -> SynthesisRequest:
    limit = settings.limits.max_request_bytes
    if event.size > limit:
        raise InvalidRequest(f"the request file is {event.size:,} bytes; the limit is {limit:,} bytes.")
    data = inputs.read(event.name, event.generation)
    if data is None:
        raise InvalidRequest("the request file was replaced or deleted before it was read; upload it again.")
    return parse_request(data, settings.limits)


def _find_voice(route: Route, voice_id: str, docs: DocumentStore) -> tuple[str, dict[str, Any] | None]:
    """A user's request sees that user's voices, then unowned ones; never another user's."""
    if route.owner:
        own = voice_doc_path(route.owner, voice_id)
        doc = docs.get(own)
        if doc is not None:
            return own, doc
    shared = voice_doc_path(None, voice_id)
    return shared, docs.get(shared)


def _wait_for_voices(
    request: SynthesisRequest, route: Route, docs: DocumentStore, inputs: BlobStore, settings: Settings,
    *, created: datetime, clock: Callable[[], datetime],
) -> dict[str, dict[str, Any]]:
    """Each voice's ready document; waits a bounded time for voices still enrolling."""
    rel = settings.reliability
    poll_until = time.monotonic() + rel.voice_poll_seconds
    while True:
        pending: list[str] = []
        ready: dict[str, dict[str, Any]] = {}
        for voice_id in request.voice_ids:
            _path, doc = _find_voice(route, voice_id, docs)
            if doc is None:
                if not _clip_uploaded(route, voice_id, inputs):
                    where = f"{route.prefix}voices/{voice_id}.wav"
                    raise VoiceUnavailable(f"voice '{voice_id}' does not exist; upload a reference clip to {where} first.")
                pending.append(voice_id)
            elif doc.get("status") == "failed":
                raise VoiceUnavailable(f"voice '{voice_id}' could not be enrolled: {doc.get('error')}")
            elif doc.get("status") != "ready":
                pending.append(voice_id)
            else:
                ready[voice_id] = doc
        if not pending:
            return ready
        waited = (clock() - created).total_seconds()
        if waited > rel.voice_wait_seconds:
            raise VoiceUnavailable(
                f"voice '{pending[0]}' was still being enrolled after {waited:.0f} s; try the request again later."
            )
        if time.monotonic() >= poll_until:
            raise VoiceNotReady(f"voice '{pending[0]}' is still being enrolled")
        time.sleep(min(1.0, max(0.05, poll_until - time.monotonic())))


def _clip_uploaded(route: Route, voice_id: str, inputs: BlobStore) -> bool:
    """A clip for the voice is in the bucket (its enrollment event may not have arrived yet)."""
    prefix = f"{route.prefix}voices/{voice_id}"
    return any(
        info.name.startswith(prefix + ".") and not info.name.endswith(".consent.json")
        or info.name.startswith(prefix + "/")
        for info in inputs.list(prefix)
    )


def _load_latents(voice_doc: dict[str, Any], outputs: BlobStore) -> VoiceLatents:
    name = voice_doc.get("latents_object")
    data = outputs.read(name) if name else None
    if data is None:
        raise VoiceUnavailable(
            f"the stored data of voice '{voice_doc.get('voice_id')}' is missing; upload its reference clip again."
        )
    return VoiceLatents.from_bytes(data)


def _keeper(
    docs: DocumentStore, path: str, generation: int, token: str, settings: Settings, clock: Callable[[], datetime]
) -> Callable[[float], None]:
    """Per finished segment: write ``progress`` at most once per interval (Firestore's soft limit is
    one write per second per document) and renew the lease well before it expires, so a long job
    is never taken over while its worker is alive."""
    interval = settings.reliability.progress_interval_seconds
    lease = settings.reliability.lease_seconds
    last_progress = [0.0]
    last_renewal = [time.monotonic()]

    def keep(fraction: float) -> None:
        now = time.monotonic()
        if now - last_renewal[0] >= lease / 3:
            last_renewal[0] = now
            records.renew(docs, path, generation=generation, token=token, now=clock(), lease_seconds=lease)
        if now - last_progress[0] >= interval and fraction < 1.0:
            last_progress[0] = now
            docs.update(path, {"progress": round(fraction, 4)})

    return keep


def _render(
    request: SynthesisRequest, latents: dict[str, VoiceLatents], engine: Any, progress: Callable[[float], None]
) -> np.ndarray:
    """All items, each split into segments, in order; progress per finished segment."""
    plan = [(item, split_text(item.text, item.language, engine.char_limit(item.language))) for item in request.items]
    total = sum(len(segments) for _item, segments in plan) or 1
    done = 0
    pieces: list[np.ndarray] = []
    gap = np.zeros(int(PAUSE_BETWEEN_ITEMS_S * 24000), dtype=np.float32)
    for item, segments in plan:
        base = done

        def on_segment(finished: int, _count: int, base: int = base) -> None:
            progress((base + finished) / total)

        audio = engine.synthesize(latents[item.voice_id], segments, item.language, request.options, on_segment)
        done += len(segments)
        if pieces:
            pieces.append(gap)
        pieces.append(audio)
    turns = level(pieces[::2])  # the items at one loudness; the odd pieces are the gaps
    return np.concatenate([turns[i // 2] if i % 2 == 0 else gap for i in range(len(pieces))])

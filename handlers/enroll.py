"""Enroll a voice: check and normalise the reference clip(s), compute latents once, store them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from handlers.outcome import Outcome, claim_or_outcome, record_failure, release_and_raise
from voicecloning import records
from voicecloning.audio.decode import decode_audio
from voicecloning.audio.reference import ClipChecks, PreparedClip, combine_clips, prepare_reference
from voicecloning.errors import ClipRejected, ConsentMissing, InputError
from voicecloning.events import StorageEvent
from voicecloning.logs import fields
from voicecloning.routes import LATENTS_SUFFIX, Route, latents_name
from voicecloning.settings import Settings
from voicecloning.stores.blobs import BlobInfo, BlobStore
from voicecloning.stores.documents import DocumentStore

log = logging.getLogger(__name__)
LATENTS_TYPE = "application/octet-stream"
CONSENT_MAX_BYTES = 16 * 1024


def enroll_voice(
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
    initial = {"status": "processing", "voice_id": route.id, "owner": route.owner, "source": source,
               "model_name": None, "model_version": None}
    opened, _doc = records.open_record(docs, path, generation=event.generation, initial=initial, now=now)
    if opened == "stale":
        return Outcome.STALE
    if route.problem:
        return record_failure(docs, path, event.generation, None, route.problem, now)
    claimed = claim_or_outcome(docs, path, event.generation, "processing", settings, now)
    if isinstance(claimed, Outcome):
        return claimed
    token = claimed.token
    try:
        clips = _clip_objects(event, route, inputs)
        consent = _consent(event, route, inputs, settings)
        prepared = [_prepare(info, inputs, settings) for info in clips]
        clip = prepared[0] if len(prepared) == 1 else combine_clips(prepared, settings.limits.max_reference_seconds)
        latents = engine.compute_latents(clip.samples, clip.sample_rate)
        name = latents_name(route.owner, route.id, event.generation)
        outputs.write(name, latents.to_bytes(), LATENTS_TYPE,
                      {"voice_id": route.id, "model_name": latents.model_name})
    except InputError as exc:
        return record_failure(docs, path, event.generation, token, str(exc), clock())
    except Exception as exc:
        release_and_raise(docs, path, event.generation, token, exc, "processing", clock())
        raise  # unreachable: release_and_raise always raises
    now = clock()
    finished = records.finish(docs, path, generation=event.generation, token=token, now=now, fields={
        "status": "ready",
        "error": None,
        "lease": None,
        "clip": clip.facts(),
        "clips": [info.name for info in clips],
        "warnings": list(clip.warnings),
        "consent": consent,
        "latents_uri": outputs.uri(name),
        "latents_object": name,
        "model_name": latents.model_name,
        "model_version": latents.model_version,
        "finished_at": now,
    })
    log.info("voice ready" if finished else "voice superseded while enrolling",
             extra=fields(status="ready" if finished else "superseded", warnings=list(clip.warnings)))
    if finished:
        _prune_latents(outputs, route, event.generation)
    return Outcome.DONE if finished else Outcome.STALE


def _prune_latents(outputs: BlobStore, route: Route, current: int) -> None:
    """Delete the latents of earlier enrollments of this voice (a re-upload replaces the voice), but
    the one just before: a job planned with it may still be rendering its parts."""
    prefix = f"{route.prefix}voices/{route.id}."
    earlier: list[tuple[int, str]] = []
    for info in outputs.list(prefix):
        generation = info.name[len(prefix):].split(".", 1)[0]
        if info.name.endswith(LATENTS_SUFFIX) and generation.isdigit() and int(generation) < current:
            earlier.append((int(generation), info.name))
    for _generation, name in sorted(earlier)[:-1]:
        outputs.delete(name)


def _clip_objects(event: StorageEvent, route: Route, inputs: BlobStore) -> list[BlobInfo]:
    """The clip of a single-clip voice, or every clip under voices/<id>/ for a multi-clip voice."""
    if route.part is None:
        return [BlobInfo(event.name, event.size, event.generation, event.content_type, event.metadata)]
    folder = f"{route.prefix}voices/{route.id}/"
    return [info for info in inputs.list(folder) if "/" not in info.name[len(folder):]]


def _prepare(info: BlobInfo, inputs: BlobStore, settings: Settings) -> PreparedClip:
    limits = settings.limits
    ext = info.name.rsplit(".", 1)[-1].lower()
    if info.size > limits.max_clip_bytes:
        raise ClipRejected(
            f"the clip is {info.size / 2**20:.1f} MiB; the limit is {limits.max_clip_bytes / 2**20:.0f} MiB. "
            f"Upload a shorter recording (about 10-30 s of speech is best)."
        )
    data = inputs.read(info.name, info.generation)
    if data is None:
        raise ClipRejected(f"the clip '{info.name}' was replaced or deleted while it was being enrolled; upload it again.")
    audio = decode_audio(data, ext, max_seconds=limits.max_clip_seconds, max_source_rate=limits.max_source_rate)
    checks = ClipChecks(min_speech_seconds=limits.min_speech_seconds, max_reference_seconds=limits.max_reference_seconds)
    return prepare_reference(audio, checks)


def _consent(event: StorageEvent, route: Route, inputs: BlobStore, settings: Settings) -> dict[str, Any] | None:
    """The voice's consent statement: object metadata ``consent`` or a sidecar voices/<id>.consent.json."""
    statement: dict[str, Any] | None = None
    if event.metadata.get("consent"):
        statement = {"statement": event.metadata["consent"][:2000], "source": "object metadata"}
    else:
        sidecar = f"{route.prefix}voices/{route.id}.consent.json"
        info = inputs.stat(sidecar)
        if info is not None and info.size <= CONSENT_MAX_BYTES:
            data = inputs.read(sidecar)
            try:
                body = json.loads(data or b"")
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ConsentMissing(f"'{sidecar}' is not valid JSON; write it as {{\"statement\": \"...\"}}.") from None
            if isinstance(body, dict) and isinstance(body.get("statement"), str) and body["statement"].strip():
                statement = {**{k: v for k, v in body.items() if isinstance(v, (str, int, float, bool))},
                             "source": sidecar}
                statement["statement"] = str(statement["statement"])[:2000]
    if statement is None and settings.require_consent:
        raise ConsentMissing(
            "this service requires the speaker's consent: upload "
            f"{route.prefix}voices/{route.id}.consent.json containing {{\"statement\": \"I, <name>, agree that my "
            "voice may be cloned for <purpose>.\"}} (or set the object metadata 'consent'), then upload the clip again."
        )
    return statement

"""Before a job is claimed: read its request, apply lexicons and markup, check the quota, wait for its voices.

Everything here happens before any synthesis, so every refusal (a bad request, an
unknown lexicon, unsupported markup, a callback URL that may not be called, a quota
used up) fails the job at once with its reason (``InputError``).

Text becomes pieces (``voicecloning/parts.py``): each item's text is parsed for
markup (``markup.parse``), the request's lexicons are applied to each spoken chunk
(never to a tag), and every ``<break>`` becomes the ``pause_before_s`` of the next
piece, *replacing* the designed pause there (consecutive breaks add up; a break at
the end of an item carries into the next item). A break before the job's first
words or after its last is dropped: the audio neither starts nor ends with silence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voicecloning import lexicon, markup, records, usage, webhooks
from voicecloning.errors import InvalidRequest, VoiceNotReady, VoiceUnavailable
from voicecloning.parts import PAUSE_BETWEEN_ITEMS_S, PAUSE_BETWEEN_SEGMENTS_S, Piece, Segment, segments_of
from voicecloning.request import SynthesisRequest, parse_request
from voicecloning.routes import Route
from voicecloning.settings import Settings
from voicecloning.stores.blobs import BlobStore
from voicecloning.stores.documents import DocumentStore
from voicecloning.text import has_speakable_content


@dataclass(frozen=True)
class Prepared:
    request: SynthesisRequest
    segments: list[Segment]
    voices: dict[str, dict[str, Any]]  # each voice's ready document
    lexicons_used: list[dict[str, Any]]

    @property
    def chars(self) -> int:
        """Characters to be spoken (after lexicons and markup): what usage and quotas count."""
        return sum(len(s.text) for s in self.segments)


def prepare(
    data: bytes, route: Route, generation: int, opened: str, current: dict[str, Any], *, inputs: BlobStore,
    docs: DocumentStore, engine: Any, settings: Settings, clock: Callable[[], datetime],
) -> Prepared:
    """Validate the request bytes, record what they ask for, wait for the voices, check the quota."""
    request = parse_request(data, settings.limits)
    for language in request.languages:
        engine.check_language(language)
    if request.callback_url:
        webhooks.check_url(request.callback_url, settings.product.webhook_allow_hosts)
    if opened == "new":
        summary = {**request.summary(), "model_name": engine.manifest.model_name,
                   "model_version": engine.manifest.model_version}
        records.annotate(docs, route.doc_path, generation=generation, fields=summary, now=clock())
    loaded = lexicon.load(request.lexicons, route.owner, inputs)
    segments = segments_of(pieces(request, loaded), engine.char_limit)
    created = current.get("created_at") or clock()
    voices = _wait_for_voices(request, route, docs, inputs, settings, created=created, clock=clock)
    prepared = Prepared(request, segments, voices, loaded.used)
    usage.check_quota(docs, route.owner, settings.product, prepared.chars, clock())
    return prepared


def pieces(request: SynthesisRequest, lexicons: lexicon.LoadedLexicons | None = None) -> list[Piece]:
    """The request's text as pieces in one voice each, with the pause before each (module docstring)."""
    lexicons = lexicons or lexicon.LoadedLexicons()
    out: list[Piece] = []
    designed, breaks = 0.0, None
    for n, item in enumerate(request.items):
        if n:
            designed = PAUSE_BETWEEN_ITEMS_S
        for chunk in markup.parse(item.text):
            if isinstance(chunk, markup.Break):
                breaks = (breaks or 0.0) + chunk.seconds
                continue
            text = lexicons.apply(chunk.text).strip()
            if not has_speakable_content(text):
                continue  # a lexicon removed its words, or only punctuation remained: its pause carries on
            out.append(Piece(text, item.voice_id, item.language, designed if breaks is None else breaks))
            designed, breaks = PAUSE_BETWEEN_SEGMENTS_S, None
    if not out:
        raise InvalidRequest("after the lexicons' rules the text has no words to speak.")
    return out


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
            _path, doc = records.find_voice(docs, route.owner, voice_id)
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

"""The page's way in and out of the private buckets, always inside the caller's own prefix.

The HTTP function proxies the bytes (see docs/WEB.md for why not signed URLs):

    PUT  /voices/<voice_id>.<ext>   the body is a reference clip -> input users/<uid>/voices/<voice_id>.<ext>
    POST /jobs                      the body is a request JSON   -> input users/<uid>/requests/<job_id>.json
    GET  /outputs/<job_id>.<ext>    the bytes of output (audio, .vtt, .srt): users/<uid>/outputs/<job_id>.<ext>
    GET  /outputs/<job_id>/parts/<n>.wav  one rendered part     users/<uid>/outputs/<job_id>/parts/<n>.wav

Every object name is built here from the verified user id; nothing the caller
sends can name another user's prefix.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from voicecloning.assembly import PART_FORMAT
from voicecloning.audio.decode import INPUT_EXTENSIONS
from voicecloning.captions import CONTENT_TYPES
from voicecloning.captions import FORMATS as CAPTION_FORMATS
from voicecloning.errors import InputError
from voicecloning.request import OUTPUT_FORMATS, parse_request
from voicecloning.routes import ID_RULE, part_name, valid_id
from voicecloning.settings import Limits
from voicecloning.stores.blobs import BlobStore

# Cloud Storage allows 8 KiB of custom metadata per object, keys and values together, in bytes.
METADATA_LIMIT_BYTES = 8 * 1024
# A consent statement is stored as metadata, and sent URL-encoded in one header (up to 3 characters a
# byte): 2 KiB keeps that header under the 8 KiB a server accepts for one header line.
MAX_CONSENT_BYTES = 2 * 1024

AUDIO_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "ogg": "audio/ogg",
               "opus": "audio/ogg", "m4a": "audio/mp4", "aac": "audio/aac", "webm": "audio/webm"}
PART_INDEX = re.compile(r"[0-9]{1,6}")


class UploadRejected(InputError):
    """What the caller sent cannot be stored; the message says why (HTTP ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Stored:
    id: str
    object: str


@dataclass(frozen=True)
class Download:
    data: bytes
    content_type: str
    filename: str


def split_name(name: str, allowed: tuple[str, ...], what: str) -> tuple[str, str]:
    """``"<id>.<ext>"`` -> (id, ext), or ``UploadRejected`` saying what a valid name looks like."""
    ident, dot, ext = name.rpartition(".")
    ext = ext.lower()
    if not dot or not valid_id(ident):
        raise UploadRejected(f"'{name[:80]}' is not a valid {what} name; {ID_RULE}, then .<extension>.")
    if ext not in allowed:
        raise UploadRejected(f"'.{ext[:16]}' is not supported; use one of: {', '.join(allowed)}.", 415)
    return ident, ext


def upload_voice(uid: str, name: str, data: bytes, content_type: str | None, *, inputs: BlobStore,
                 limits: Limits, max_bytes: int, consent: str | None = None) -> Stored:
    """Store a reference clip as the caller's voice ``<voice_id>``; enrollment starts from its event.

    ``consent`` (the speaker's statement) becomes the object metadata the worker reads as consent.
    """
    voice_id, ext = split_name(name, INPUT_EXTENSIONS, "voice")
    limit = min(limits.max_clip_bytes, max_bytes)
    if not data:
        raise UploadRejected("the clip is empty; choose a recording of 10-30 s of one person speaking.")
    if len(data) > limit:
        raise UploadRejected(f"the clip is {len(data) / 2**20:.1f} MiB; the limit is {limit / 2**20:.0f} MiB.", 413)
    kind = content_type if content_type and content_type.startswith("audio/") else AUDIO_TYPES[ext]
    obj = f"users/{uid}/voices/{voice_id}.{ext}"
    metadata = {"uploaded_by": "web"}
    if consent and consent.strip():
        metadata["consent"] = _consent(consent)
    if metadata_bytes(metadata) > METADATA_LIMIT_BYTES:  # cannot happen with the limits above; never send it
        raise UploadRejected("the clip's metadata is too large to store; shorten the consent statement.")
    inputs.write(obj, data, kind, metadata)
    return Stored(voice_id, obj)


def metadata_bytes(metadata: dict[str, str]) -> int:
    """What Cloud Storage counts against its custom metadata limit: keys and values, UTF-8 bytes."""
    return sum(len(key.encode()) + len(value.encode()) for key, value in metadata.items())


def _consent(statement: str) -> str:
    """The statement as stored; ``UploadRejected`` when it is over ``MAX_CONSENT_BYTES`` (never cut short)."""
    text = statement.strip()
    size = len(text.encode())
    if size > MAX_CONSENT_BYTES:
        raise UploadRejected(
            f"the consent statement is {size:,} bytes in UTF-8; at most {MAX_CONSENT_BYTES:,} are stored "
            f"(about {MAX_CONSENT_BYTES:,} letters of Latin script, fewer in other scripts). Shorten it.",
            413,
        )
    return text


def submit_job(uid: str, body: bytes, *, inputs: BlobStore, limits: Limits, now: datetime | None = None) -> Stored:
    """Check the request as the worker will, then store it as a new job of the caller's."""
    try:
        parse_request(body, limits)
    except InputError as exc:
        raise UploadRejected(str(exc)) from None
    now = now or datetime.now(UTC)
    job_id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
    obj = f"users/{uid}/requests/{job_id}.json"
    inputs.write(obj, body, "application/json", {"uploaded_by": "web"})
    return Stored(job_id, obj)


def read_output(uid: str, name: str, *, outputs: BlobStore) -> Download:
    """The caller's finished audio ``<job_id>.<ext>`` (or its captions, ``.vtt`` / ``.srt``) or one rendered
    part ``<job_id>/parts/<n>.wav``; ``UploadRejected`` (404) when there is none."""
    job_id, slash, part = name.partition("/parts/")
    if slash:
        return _read_part(uid, job_id, part, outputs)
    job_id, ext = split_name(name, (*OUTPUT_FORMATS, *CAPTION_FORMATS), "output")
    data = outputs.read(f"users/{uid}/outputs/{job_id}.{ext}")
    if data is None:
        raise UploadRejected(f"you have no finished audio named '{job_id}.{ext}'.", 404)
    kind = AUDIO_TYPES.get(ext) or CONTENT_TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Download(data, kind, f"{job_id}.{ext}")


def _read_part(uid: str, job_id: str, part: str, outputs: BlobStore) -> Download:
    index, _dot, ext = part.rpartition(".")
    if not valid_id(job_id) or not PART_INDEX.fullmatch(index):
        raise UploadRejected(f"'{job_id[:64]}/parts/{part[:16]}' is not a valid part name; <job_id>/parts/<n>.{PART_FORMAT}.")
    if ext.lower() != PART_FORMAT:
        raise UploadRejected(f"parts are .{PART_FORMAT} only, not '.{ext[:16]}'.", 415)
    data = outputs.read(part_name(uid, job_id, int(index), PART_FORMAT))
    if data is None:
        raise UploadRejected(f"you have no rendered part {int(index)} of job '{job_id}'.", 404)
    return Download(data, AUDIO_TYPES[PART_FORMAT], f"{job_id}-part-{int(index)}.{PART_FORMAT}")

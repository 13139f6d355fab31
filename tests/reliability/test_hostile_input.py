"""Hostile input through the real handler path: main.py's CloudEvent function served by
functions-framework (in-process test client, and a subset over real HTTP), backed by the
Firestore and Cloud Storage emulators.

Every case must be acknowledged (200), recorded as ``failed`` with a reason that names the
problem, leave no output, and leave the service answering.
"""

from __future__ import annotations

import io
import json
import logging
import os
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import soundfile as sf
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from tests.conftest import INPUT_BUCKET, OUTPUT_BUCKET, functions_server, gcp_env
from tests.reliability.conftest import set_env
from tests.support import cloud
from tests.support.clips import speech_samples
from tests.support.servers import ROOT, Server
from voicecloning import logs, runtime
from voicecloning.routes import route

pytestmark = pytest.mark.integration

MAX_CLIP_BYTES = 1024 * 1024  # small, so that "over the size limit" stays cheap
MAX_CLIP_SECONDS = 120
LIMITS_ENV = {"VOICECLONING_MAX_CLIP_BYTES": str(MAX_CLIP_BYTES), "VOICECLONING_MAX_CLIP_SECONDS": str(MAX_CLIP_SECONDS),
              "VOICECLONING_VOICE_POLL_SECONDS": "1"}


# ---- inputs -----------------------------------------------------------------------------


def _wav(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _speech(seconds: float, rate: int = 22050) -> bytes:
    audio, source_rate = speech_samples(max(seconds, 1.0))
    audio = audio[: int(seconds * source_rate)]
    if rate != source_rate:
        import soxr

        audio = soxr.resample(audio, source_rate, rate)
    return _wav(audio, rate)


def _header_claiming_hours() -> bytes:
    """A WAV whose header announces 3 hours of 22.05 kHz audio; the file holds 1 kB."""
    data_bytes = 3 * 3600 * 22050 * 2
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 22050, 22050 * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", 4 + len(fmt) + 8 + data_bytes) + b"WAVE" + fmt + \
        b"data" + struct.pack("<I", data_bytes) + bytes(1024)


def _hours_long_flac() -> bytes:
    """Two complete hours of (silent) 8 kHz audio: 0.2 MB, a real file, far over the duration limit."""
    buf = io.BytesIO()
    minute = np.zeros(8000 * 60, dtype=np.int16)
    with sf.SoundFile(buf, "w", samplerate=8000, channels=1, format="FLAC", subtype="PCM_16") as out:
        for _ in range(120):
            out.write(minute)
    return buf.getvalue()


def _json(**body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _ok(**overrides: Any) -> bytes:
    return _json(**{"text": "Hello there.", "voice_id": "h-ok", "language": "en", **overrides})


@dataclass(frozen=True)
class Case:
    id: str
    name: str  # the object name in the input bucket
    data: Callable[[], bytes]
    expect: tuple[str, ...]  # each must appear in the recorded reason
    content_type: str = "application/octet-stream"
    upload: bool = True  # False: names the storage emulator cannot store (it drops the connection)
    max_seconds: float | None = None  # must be refused this fast (limits checked before decoding)


def clip(id: str, name: str, data: Callable[[], bytes], *expect: str, **kw: Any) -> Case:
    return Case(id, name, data, expect, "audio/wav", **kw)


def req(id: str, data: Callable[[], bytes], *expect: str, name: str | None = None, **kw: Any) -> Case:
    return Case(id, name or f"requests/h-{id}.json", data, expect, "application/json", **kw)


NOT_ALLOWED_ID = "use 1-64 letters, digits, '-' or '_'"
CASES = [
    # -- reference clips
    clip("empty-clip", "voices/h-empty.wav", lambda: b"", "uploaded file is empty"),
    clip("truncated-wav", "voices/h-trunc.wav", lambda: _speech(4)[:40_000], "damaged or truncated",
         "holds only"),
    clip("header-claims-hours", "voices/h-liar.wav", _header_claiming_hours, "header announces 3 h 0 min",
         max_seconds=5),
    clip("text-as-wav", "voices/h-text.wav", lambda: b"This is not audio, just words. " * 200,
         "could not be decoded as WAV", "extension matches its format"),
    clip("random-bytes-as-mp3", "voices/h-noise.mp3",
         lambda: np.random.default_rng(7).integers(0, 256, 50_000, dtype=np.uint8).tobytes(),
         "could not be decoded as MP3"),
    clip("png-as-flac", "voices/h-png.flac", lambda: b"\x89PNG\r\n\x1a\n" + bytes(5000), "FLAC file", "upload a WAV"),
    clip("garbage-m4a", "voices/h-junk.m4a", lambda: b"\x00\x00\x00\x18ftypM4A " + bytes(3000), "M4A"),
    clip("pure-silence", "voices/h-silent.wav", lambda: _wav(np.zeros(22050 * 5, dtype=np.float32), 22050),
         "no speech found", "at least 3 s"),
    clip("under-a-second-of-speech", "voices/h-short.wav", lambda: _speech(0.8), "speech", "at least 3 s"),
    clip("hours-long-clip", "voices/h-long.flac", _hours_long_flac, "2 h 0 min long", "at most 2 min",
         max_seconds=5),
    clip("over-the-size-limit", "voices/h-huge.wav", lambda: bytes(MAX_CLIP_BYTES + 500_000),
         "1.5 MiB", "the limit is 1 MiB", max_seconds=5),
    clip("too-low-sample-rate", "voices/h-lofi.wav", lambda: _speech(5, rate=4000), "4000 Hz", "8000 Hz or more"),
    clip("unsupported-extension", "voices/h-doc.txt", lambda: b"hello", "'.txt' files are not supported", "wav"),
    clip("wav-named-exe", "voices/h-prog.exe", lambda: _speech(4), "'.exe' files are not supported"),
    clip("clip-without-extension", "voices/h-bare", lambda: _speech(4), "is not a clip name", "voices/<voice_id>.<ext>"),
    clip("clip-part-odd-name", "voices/h-multi/take one!.wav", lambda: _speech(4), "clip name 'take one!'",
         NOT_ALLOWED_ID),
    # -- request JSON
    req("json-invalid", lambda: b'{"text": "hi", "voice_id": ', "not valid JSON", "line 1"),
    req("json-list", lambda: b'["Hello", "h-ok"]', "must be a JSON object, not a list"),
    req("json-string", lambda: b'"Hello there"', "must be a JSON object, not a string"),
    req("json-deeply-nested", lambda: b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested 5001 levels deep",
        "at most 8"),
    req("json-not-utf8", lambda: '{"text": "café", "voice_id": "h-ok"}'.encode("latin-1"), "not UTF-8",
        "save it as UTF-8"),
    req("json-over-size-limit", lambda: _ok(text="Hello.")[:-1] + b" " * (4 * 1024 * 1024) + b"}",
        "bytes; the limit is 4,194,304 bytes"),
    req("json-empty-file", lambda: b"", "request file is empty"),
    req("text-missing", lambda: _json(voice_id="h-ok"), "'text' is missing"),
    req("voice-missing", lambda: _json(text="Hello."), "'voice_id' is missing"),
    req("text-not-a-string", lambda: _ok(text=42), "'text' must be a string, not a number"),
    req("voice-not-a-string", lambda: _ok(voice_id=["h-ok"]), "'voice_id' is not a valid voice id"),
    req("text-empty", lambda: _ok(text=""), "'text' is empty"),
    req("text-whitespace", lambda: _ok(text=" \n\t "), "'text' is empty"),
    req("text-over-length-limit", lambda: _ok(text="a" * 500_001), "500,001 characters", "limit is 500,000"),
    req("text-only-punctuation", lambda: _ok(text="?!... ,;: --"), "no words to speak"),
    req("text-only-emoji", lambda: _ok(text="😀🎉👍"), "no words to speak"),
    req("unknown-voice", lambda: _ok(voice_id="h-nobody"), "voice 'h-nobody' does not exist",
        "voices/h-nobody.wav"),
    req("voice-failed-enrollment", lambda: _ok(voice_id="h-silent"), "voice 'h-silent' could not be enrolled",
        "no speech found"),
    req("another-users-voice", lambda: _ok(voice_id="h-mine"), "voice 'h-mine' does not exist",
        name="users/h-u2/requests/h-steal.json"),
    req("unsupported-language", lambda: _ok(language="th"), "'th' is not supported", "zh-cn"),
    req("language-not-a-string", lambda: _ok(language=5), "'language' must be a language code"),
    req("unknown-output-format", lambda: _ok(format="aiff"), "'format' 'aiff' is not supported", "mp3"),
    req("temperature-out-of-range", lambda: _ok(temperature=5), "'temperature' is 5", "between 0.01 and 2"),
    req("top-k-not-whole", lambda: _ok(top_k=2.5), "'top_k' must be a whole number"),
    req("speed-not-a-number", lambda: _ok(speed="fast"), "'speed' must be a number"),
    req("seed-negative", lambda: _ok(seed=-1), "'seed' is -1"),
    req("sample-rate-unsupported", lambda: _ok(sample_rate=12345), "'sample_rate' 12345 is not supported"),
    req("unknown-field", lambda: _json(txt="Hello.", voice_id="h-ok"), "unknown field 'txt'", "Did you mean 'text'?"),
    req("items-empty", lambda: _json(items=[], voice_id="h-ok"), "'items' must be a non-empty list"),
    req("items-and-text", lambda: _json(items=[{"text": "a"}], text="b", voice_id="h-ok"), "either 'text' or 'items'"),
    req("items-too-many", lambda: _json(items=[{"text": "a"}] * 20_001, voice_id="h-ok"), "20001 entries",
        "at most 20000"),
    req("voice-id-dotdot", lambda: _ok(voice_id="../h-ok"), "'voice_id' is not a valid voice id", NOT_ALLOWED_ID),
    req("voice-id-slash", lambda: _ok(voice_id="users/h-u1/h-mine"), "'voice_id' is not a valid voice id"),
    req("voice-id-unicode", lambda: _ok(voice_id="vöice"), "'voice_id' is not a valid voice id"),
    req("voice-id-65-chars", lambda: _ok(voice_id="v" * 65), "'voice_id' is not a valid voice id"),
    # -- object names
    req("name-dotdot", _ok, "job id 'a..b'", NOT_ALLOWED_ID, name="requests/a..b.json"),
    req("name-unicode", _ok, "job id 'jöb'", NOT_ALLOWED_ID, name="requests/jöb.json"),
    req("name-65-chars", _ok, "job id '" + "j" * 65 + "'", NOT_ALLOWED_ID, name=f"requests/{'j' * 65}.json"),
    req("name-subfolder", _ok, "is not a request name", "requests/<job_id>.json", name="requests/sub/h-x.json"),
    req("name-space", _ok, "job id 'has space'", name="requests/has space.json"),
    req("name-user-dotdot", _ok, "user id in 'users/../requests/h-x.json' is not valid", name="users/../requests/h-x.json",
        upload=False),
    clip("name-clip-traversal", "voices/../../etc/passwd.wav", lambda: _speech(4), "is not a clip name", upload=False),
    req("name-newline", _ok, "job id 'new?line'", name="requests/new\nline.json", upload=False),
    req("name-emoji", _ok, "job id 'job😀'", name="requests/job😀.json"),
]
HTTP_CASES = {"empty-clip", "header-claims-hours", "pure-silence", "over-the-size-limit", "json-invalid",
              "json-deeply-nested", "json-not-utf8", "text-only-emoji", "unknown-voice", "another-users-voice",
              "unsupported-language", "voice-id-dotdot", "name-dotdot", "name-unicode"}


# ---- the service ----------------------------------------------------------------------------


@dataclass
class Service:
    """One way of reaching the service: post an event, ask for health."""

    post: Callable[[CloudEvent], int]
    health: Callable[[], int]
    post_raw: Callable[[bytes], int]


@pytest.fixture(scope="module")
def env(firestore_server: Server, storage_server: Server, dev_model_dir: Path) -> dict[str, str]:
    return gcp_env(firestore_server, storage_server, dev_model_dir, **LIMITS_ENV)


@pytest.fixture(scope="module")
def in_process(env: dict[str, str]) -> Iterator[Service]:
    """functions-framework's own app for main.py, in this process (the test client)."""
    import functions_framework

    saved = set_env(env)
    root = logging.getLogger()
    handlers_before = list(root.handlers)
    runtime.reset()
    worker = functions_framework.create_app(target="on_object_finalized", source=str(ROOT / "main.py"),
                                            signature_type="cloudevent").test_client()
    api = functions_framework.create_app(target="http_api", source=str(ROOT / "main.py"),
                                         signature_type="http").test_client()

    def post(event: CloudEvent) -> int:
        headers, body = to_structured(event)
        return worker.post("/", headers=headers, data=body).status_code

    def post_raw(body: bytes) -> int:
        return worker.post("/", data=body, headers={"Content-Type": "application/json"}).status_code

    yield Service(post=post, health=lambda: api.get("/health").status_code, post_raw=post_raw)
    runtime.reset()
    for handler in root.handlers[:]:
        if handler not in handlers_before and isinstance(handler.formatter, logs.JsonFormatter):
            root.removeHandler(handler)
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def over_http(env: dict[str, str], logs_dir: Path) -> Iterator[Service]:
    """main.py served by functions-framework subprocesses over real HTTP."""
    worker = functions_server("on_object_finalized", env, logs_dir).start()
    api = functions_server("http_api", env, logs_dir).start()

    def post(event: CloudEvent) -> int:
        headers, body = to_binary(event)
        return requests.post(worker.url, headers=headers, data=body, timeout=120).status_code

    def health() -> int:
        assert worker.proc is not None and worker.proc.poll() is None, "the worker process died"
        return requests.get(api.url + "/health", timeout=30).status_code

    def post_raw(body: bytes) -> int:
        return requests.post(worker.url, data=body, headers={"Content-Type": "application/json"}, timeout=30).status_code

    yield Service(post=post, health=health, post_raw=post_raw)
    worker.stop()
    api.stop()


def _event(name: str, generation: int, size: int, content_type: str) -> CloudEvent:
    when = datetime.now(UTC)
    return CloudEvent({
        "id": f"hostile-{generation}", "type": cloud.FINALIZED, "specversion": "1.0",
        "source": f"//storage.googleapis.com/projects/_/buckets/{INPUT_BUCKET}", "subject": f"objects/{name}",
        "time": when.isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
    }, {"bucket": INPUT_BUCKET, "name": name, "generation": str(generation), "size": str(size),
        "contentType": content_type, "metadata": {}, "timeCreated": when.isoformat(), "updated": when.isoformat()})


def _send(service: Service, gcs: Any, name: str, data: bytes, content_type: str, upload: bool = True) -> tuple[int, int]:
    """Upload the object (unless its name cannot be stored) and post its event; (status, generation)."""
    if upload:
        blob = cloud.upload(gcs.bucket(INPUT_BUCKET), name, data, content_type)
        event, generation = cloud.storage_cloudevent(blob), int(blob.generation)
    else:
        generation = time.time_ns()
        event = _event(name, generation, len(data), content_type)
    return service.post(event), generation


def _ignored_ping(service: Service) -> int:
    """An event for an object the service ignores: it must still be answered 200."""
    return service.post(_event("misc/ping.txt", time.time_ns(), 4, "text/plain"))


@pytest.fixture(scope="module")
def voices(in_process: Service, gcs: Any, db: Any, clip_bytes: bytes) -> None:
    """h-ok (ready), users/h-u1's h-mine (ready), h-silent (failed enrollment)."""
    for name in ("voices/h-ok.wav", "users/h-u1/voices/h-mine.wav"):
        status, _ = _send(in_process, gcs, name, clip_bytes, "audio/wav")
        assert status == 200
    silent = _wav(np.zeros(22050 * 5, dtype=np.float32), 22050)
    assert _send(in_process, gcs, "voices/h-silent.wav", silent, "audio/wav")[0] == 200
    assert db.document("voices/h-ok").get().get("status") == "ready"
    assert db.document("users/h-u1/voices/h-mine").get().get("status") == "ready"
    assert db.document("voices/h-silent").get().get("status") == "failed"


def _check(service: Service, gcs: Any, db: Any, case: Case) -> None:
    target = route(case.name)
    assert target is not None, case.name
    data = case.data()
    started = time.monotonic()
    status, generation = _send(service, gcs, case.name, data, case.content_type, case.upload)
    took = time.monotonic() - started
    assert status == 200, f"{case.id}: HTTP {status}"
    doc = db.document(target.doc_path).get().to_dict()
    assert doc is not None, f"{case.id}: no document at {target.doc_path}"
    assert doc["status"] == "failed", f"{case.id}: {doc}"
    assert doc["source"]["generation"] == str(generation)
    for words in case.expect:
        assert words.lower() in doc["error"].lower(), f"{case.id}: {words!r} not in {doc['error']!r}"
    assert doc["error"].endswith((".", "?"))
    assert doc["lease"] is None
    if target.kind == "request":
        assert not list(gcs.list_blobs(OUTPUT_BUCKET, prefix=target.output_name("")))
        assert not list(gcs.list_blobs(OUTPUT_BUCKET, prefix=target.output_name("")[:-1] + "/"))  # no parts
    if case.max_seconds is not None:
        assert took < case.max_seconds, f"{case.id}: took {took:.1f}s; limits must be checked before decoding"
    assert service.health() == 200
    assert _ignored_ping(service) == 200


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    assert {c.id for c in CASES} >= HTTP_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_in_process(case: Case, in_process: Service, voices: None, gcs: Any, db: Any) -> None:
    """Acknowledged (200), failed with a reason naming the problem, no output; the service still answers."""
    _check(in_process, gcs, db, case)


@pytest.mark.parametrize("case", [c for c in CASES if c.id in HTTP_CASES], ids=sorted(HTTP_CASES, key=[c.id for c in CASES].index))
def test_hostile_input_over_http(case: Case, over_http: Service, voices: None, gcs: Any, db: Any) -> None:
    """The same over real HTTP to a functions-framework process, which stays up and healthy."""
    _check(over_http, gcs, db, case)


def test_a_malformed_cloudevent_is_refused_and_the_worker_keeps_answering(over_http: Service) -> None:
    """Bytes that are no CloudEvent: 400 from functions-framework, and the worker still handles events."""
    assert over_http.post_raw(b"not an event") == 400
    assert over_http.post_raw(b"{" * 100_000) == 400
    assert over_http.health() == 200
    assert _ignored_ping(over_http) == 200

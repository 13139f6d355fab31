"""The HTTP API's edges, in-process with the embedded stores: bounded bodies, every error as JSON with CORS,
consent capped in bytes, /model/info from the config plus the worker's own report."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers import api, uploads
from handlers.bodies import BodyBuffer, Busy, RequestBody
from voicecloning.errors import ConfigurationError, TransientError
from voicecloning.modelinfo import model_facts
from voicecloning.selfreport import WORKER_REPORT, read_worker_report, report_worker
from voicecloning.services import Services, build_stores
from voicecloning.settings import Limits, Settings
from voicecloning.web_settings import WebSettings

ORIGIN = "https://voices.example"
LANGUAGES = ["en", "de", "xx"]


class CountingStream(io.RawIOBase):
    """An endless body that counts the bytes handed out."""

    def __init__(self) -> None:
        self.given = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("the whole body was asked for at once")
        self.given += size
        return b"x" * size


class Verifier:
    def uid(self, authorization: str | None) -> str:
        return "alice"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model": "xtts", "languages": LANGUAGES,
                                                    "audio": {"output_sample_rate": 24000}}))
    (folder / "vocab.json").write_text("{}")
    (folder / "model.pth").write_bytes(b"")
    return folder


@pytest.fixture
def stores(tmp_path: Path, model_dir: Path) -> Services:
    return build_stores(Settings.from_env({"VOICECLONING_DATA_DIR": str(tmp_path / "data"),
                                           "VOICECLONING_MODEL_DIR": str(model_dir)}))


def context(base: Services, **changes: Any) -> api.WebContext:
    web = api.WebContext(settings=WebSettings(cors_origins=(ORIGIN,)), verifier=Verifier(),  # type: ignore[arg-type]
                         stores=lambda: base, model=lambda: model_facts(base.settings.model_dir),
                         buffer=BodyBuffer(10 * 2**20))
    return replace(web, **changes)


def call(web: api.WebContext, method: str, path: str, body: RequestBody | None = None,
         headers: dict[str, str] | None = None) -> api.Reply:
    request = api.ApiRequest(method, path, {"Origin": ORIGIN, **(headers or {})}, body or RequestBody(None, None))
    return api.handle_request(request, lambda: web)


# ---- bodies ---------------------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read() -> None:
    """Content-Length over the limit: 413 at once, the stream untouched (and still 'unread' for the edge)."""
    stream = CountingStream()
    body = RequestBody(stream, declared=10**9)  # type: ignore[arg-type]

    with pytest.raises(uploads.UploadRejected) as caught:
        body.read(limit=1000)
    assert caught.value.status == 413 and "1,000,000,000 bytes" in str(caught.value)
    assert stream.given == 0 and body.unread


def test_a_body_of_unknown_length_is_read_only_one_byte_past_the_limit() -> None:
    """A chunked body that never ends: reading stops at limit + 1 bytes and answers 413."""
    stream = CountingStream()
    body = RequestBody(stream, declared=None, chunked=True)  # type: ignore[arg-type]

    with pytest.raises(uploads.UploadRejected, match="more than 300,000 bytes") as caught:
        body.read(limit=300_000)
    assert caught.value.status == 413 and stream.given == 300_001


def test_a_body_within_the_limit_is_read_whole() -> None:
    body = RequestBody(io.BytesIO(b"abc" * 1000), declared=None, chunked=True)
    assert body.read(limit=3000) == b"abc" * 1000 and not body.unread
    assert not RequestBody(io.BytesIO(b""), declared=0).unread  # nothing was sent, nothing is left


def test_the_process_holds_at_most_its_upload_buffer() -> None:
    """A second upload that would pass the buffer is refused (503) until the first is done."""
    buffer = BodyBuffer(capacity=100)
    with buffer.hold(80):
        with pytest.raises(Busy) as caught, buffer.hold(30):
            pass
        assert caught.value.status == 503 and buffer.held == 80
    with buffer.hold(100):
        assert buffer.held == 100
    assert buffer.held == 0
    with buffer.hold(500):  # one upload alone always fits
        assert buffer.held == 500


def test_a_busy_process_answers_503_with_retry_after_and_cors(stores: Services) -> None:
    web = context(stores, buffer=BodyBuffer(capacity=10))
    with web.buffer.hold(10):
        reply = call(web, "POST", "/jobs", RequestBody(io.BytesIO(b"{}"), declared=2))
    assert reply.status == 503 and reply.headers["Retry-After"] == "5"
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN and "try again" in reply.body["error"]


def test_an_oversize_job_is_refused_413_with_cors_while_reading(stores: Services) -> None:
    stream = CountingStream()
    reply = call(context(stores), "POST", "/jobs", RequestBody(stream, declared=None, chunked=True))  # type: ignore[arg-type]
    limit = stores.settings.limits.max_request_bytes
    assert reply.status == 413 and reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert stream.given == limit + 1


# ---- every error is JSON with CORS ----------------------------------------------------------------------


def failing_stores(exc: BaseException) -> Any:
    def stores() -> Services:
        raise exc

    return stores


@pytest.mark.parametrize(("exc", "status"), [
    (RuntimeError("a bug"), 500),
    (PermissionError("403 Forbidden: the bucket's IAM changed"), 500),
    (TransientError("Cloud Storage unavailable"), 503),
    (ConfigurationError("VOICECLONING_INPUT_BUCKET is wrong"), 503),
])
def test_every_failure_is_answered_as_json_with_cors(stores: Services, exc: BaseException, status: int) -> None:
    """An untyped storage error or a bug becomes JSON 500 with an incident id, never a bare page; CORS kept."""
    web = context(stores, stores=failing_stores(exc))
    reply = call(web, "GET", "/outputs/j1.wav")
    assert reply.status == status and reply.content_type == "application/json"
    assert reply.body["success"] is False and reply.body["error"]
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert str(exc) not in reply.body["error"]  # internals stay in the log
    if status == 500:
        assert reply.body["incident"] in reply.body["error"]


def test_a_broken_configuration_is_answered_as_json(stores: Services) -> None:
    def context_fails() -> api.WebContext:
        raise ConfigurationError("VOICECLONING_CORS_ORIGINS entry 'x' is not an origin")

    reply = api.handle_request(api.ApiRequest("GET", "/health", {"Origin": ORIGIN}), context_fails)
    assert reply.status == 503 and reply.body["success"] is False and "misconfigured" in reply.body["error"]


# ---- consent in bytes -----------------------------------------------------------------------------------


def put_voice(inputs: Any, consent: str) -> uploads.Stored:
    return uploads.upload_voice("alice", "v1.wav", b"RIFF", "audio/wav", inputs=inputs, limits=Limits(),
                                max_bytes=2**20, consent=consent)


def test_consent_is_capped_in_bytes_not_characters(stores: Services) -> None:
    """2,000 emoji are 2,000 characters but 8,000 bytes: refused (413), not stored past Cloud Storage's 8 KiB."""
    with pytest.raises(uploads.UploadRejected, match="8,000 bytes") as caught:
        put_voice(stores.inputs, "\N{SPEAKING HEAD IN SILHOUETTE}" * 2000)
    assert caught.value.status == 413
    assert stores.inputs.stat("users/alice/voices/v1.wav") is None


def test_the_longest_consent_accepted_fits_the_metadata_limit(stores: Services) -> None:
    statement = "\u00e9" * (uploads.MAX_CONSENT_BYTES // 2)  # two bytes each: exactly the cap
    put_voice(stores.inputs, statement)
    metadata = stores.inputs.stat("users/alice/voices/v1.wav").metadata  # type: ignore[union-attr]
    assert metadata["consent"] == statement
    assert uploads.metadata_bytes(metadata) <= uploads.METADATA_LIMIT_BYTES


# ---- /model/info ----------------------------------------------------------------------------------------


class LoadedEngine:
    """What report_worker reads of an XttsEngine after loading."""

    class config:  # noqa: N801 - mirrors the engine's attribute
        precision = "fp32"
        threads = 3

    class manifest:  # noqa: N801
        model_name = "xtts-tiny"
        model_version = "dev-1"

    loaded = True
    device = "cpu"
    load_seconds = 1.23456

    def languages(self) -> tuple[str, ...]:
        return tuple(LANGUAGES)


def test_model_info_reports_config_facts_and_no_worker_before_one_reports(stores: Services) -> None:
    """Languages come from config.json; 'worker' is null, and the answer says what each part describes."""
    reply = call(context(stores), "GET", "/model/info")
    assert reply.status == 200 and reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    info = reply.body
    assert info["languages"] == LANGUAGES and info["model_type"] == "xtts" and info["sample_rate"] == 24000
    assert info["worker"] is None and set(info["describes"]) == {"model", "worker"}
    assert "loaded" not in info and "device" not in info  # those describe a worker, not this process


def test_model_info_returns_the_workers_own_report(stores: Services) -> None:
    """After the worker writes service/worker, /model/info shows it: loaded, device, precision, threads..."""
    now = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    report_worker(stores.docs, LoadedEngine(), instance="worker-7", now=now)

    worker = call(context(stores), "GET", "/model/info").body["worker"]

    assert worker == {"model_name": "xtts-tiny", "model_version": "dev-1", "languages": LANGUAGES,
                      "loaded": True, "device": "cpu", "precision": "fp32", "threads": 3,
                      "load_seconds": 1.235, "instance": "worker-7", "reported_at": now.isoformat()}
    assert read_worker_report(stores.docs) == worker and stores.docs.get(WORKER_REPORT)["reported_at"] == now


def test_model_info_still_answers_when_the_report_cannot_be_read(stores: Services) -> None:
    class Down:
        def get(self, path: str) -> None:
            raise TransientError("Firestore unavailable (read)")

    down = replace(stores, docs=Down())
    info = call(context(stores, stores=lambda: down), "GET", "/model/info").body
    assert info["success"] is True and info["languages"] == LANGUAGES
    assert info["worker"] is None and "could not be read" in info["worker_error"]


def test_model_info_without_a_model_folder_is_503(stores: Services, tmp_path: Path) -> None:
    web = context(stores, model=lambda: model_facts(tmp_path / "nowhere"))
    reply = call(web, "GET", "/model/info")
    assert reply.status == 503 and "is not a folder" in reply.body["error"] and reply.body["worker"] is None


# ---- the Auth emulator next to real Google services -----------------------------------------------------

GCP = {"VOICECLONING_BACKEND": "gcp", "VOICECLONING_INPUT_BUCKET": "in", "VOICECLONING_OUTPUT_BUCKET": "out"}


@pytest.mark.parametrize("extra", [
    {},
    {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080"},
    {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9023",
     "K_SERVICE": "voices-api"},
])
def test_the_gcp_backend_refuses_the_auth_emulator(extra: dict[str, str]) -> None:
    """FIREBASE_AUTH_EMULATOR_HOST with real Firestore, Cloud Storage or on Cloud Run: start-up fails."""
    with pytest.raises(ConfigurationError, match="FIREBASE_AUTH_EMULATOR_HOST.*unsigned ID tokens"):
        Settings.from_env({**GCP, "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099", **extra})


def test_the_auth_emulator_is_allowed_with_every_google_service_emulated_or_locally() -> None:
    emulated = {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9023"}
    auth = {"FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"}
    assert Settings.from_env({**GCP, **auth, **emulated}).web.auth_emulator_host == "127.0.0.1:9099"
    assert Settings.from_env(auth).backend == "local"
    assert Settings.from_env(GCP).web.auth_emulator_host is None

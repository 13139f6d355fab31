"""Fixtures of the reliability suite: structured-log capture, an injectable clock, the embedded
stores (folder + SQLite) around the real dev-model engine, and restartable emulators.

Everything here starts at most what it stops, on loopback, by process group.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cloudevents.http import CloudEvent

from tests.conftest import INPUT_BUCKET, PROJECT, TEST_THREADS
from tests.support import cloud
from tests.support.clips import speech_clip
from tests.support.servers import Server, firestore_emulator, free_port
from voicecloning.events import StorageEvent
from voicecloning.local import event_for
from voicecloning.logs import JsonFormatter
from voicecloning.services import Services, build_services
from voicecloning.settings import Settings
from voicecloning.stores.queue import InlineTaskQueue

BURST_TOKENS = "4"  # audio tokens per segment for bursts: each job is a fraction of a second of noise


# ---- structured logs ----------------------------------------------------------------


class _ListHandler(logging.Handler):
    """Formats every record with the service's JsonFormatter and keeps the parsed object."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_logs() -> Iterator[list[dict[str, Any]]]:
    """The JSON objects the service logs during the test (exactly what it writes to stdout)."""
    handler = _ListHandler()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(previous)


def log_file_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines a server subprocess wrote to ``path`` (other output is skipped)."""
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
    return lines


def matching(lines: list[dict[str, Any]], message: str, **fields: Any) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("message") == message
            and all(line.get(k) == v for k, v in fields.items())]


# ---- time -------------------------------------------------------------------------


class FakeClock:
    """``Services.clock`` that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# ---- the embedded stores around the real engine ---------------------------------------------


@pytest.fixture(scope="session")
def clip_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """About 8 s of espeak-ng speech as WAV bytes."""
    return speech_clip(tmp_path_factory.mktemp("reliability-clips") / "ref.wav", seconds=8).read_bytes()


def local_services(data_dir: Path, engine: Any, clock: Callable[[], datetime] | None = None,
                   **env: str) -> Services:
    """The embedded default's stores under ``data_dir``, the given engine, settings from ``env``."""
    settings = Settings.from_env({"VOICECLONING_DATA_DIR": str(data_dir), "VOICECLONING_PRECISION": "fp32", **env})
    services = build_services(settings, engine=engine, tasks=InlineTaskQueue())
    if clock is not None:
        services.clock = clock
    return services


def put(services: Services, name: str, data: bytes, content_type: str = "application/octet-stream",
        *, when: datetime | None = None) -> StorageEvent:
    """Upload ``data`` to the input folder; the event Cloud Storage would send for it."""
    info = services.inputs.write(name, data, content_type)
    event = event_for(info, services.inputs.bucket, services.clock)
    if when is not None:
        event = StorageEvent(**{**event.__dict__, "time": when})
    return event


def request_bytes(**body: Any) -> bytes:
    return json.dumps(body).encode()


# ---- restartable emulators -----------------------------------------------------------------


def disk_storage_emulator(log_dir: Path, base: Path, port: int | None = None) -> Server:
    """gcp-storage-emulator keeping objects on disk under ``base``: they survive a restart."""
    port = port or free_port()
    argv = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host=127.0.0.1", f"--port={port}",
            f"--default-bucket={INPUT_BUCKET}"]
    return Server("storage-emulator-disk", argv, port, env={"STORAGE_BASE": str(base)},
                  log_path=log_dir / f"storage-disk-{port}.log")


@dataclass
class DurableFirestore:
    """The Firestore emulator, made to keep its data across a crash (as Cloud Firestore does).

    The emulator holds documents in memory; ``crash`` exports them immediately before
    the kill and ``restart`` imports them on the same port.
    """

    server: Server
    export_dir: Path

    def crash(self) -> None:
        self.export_dir.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"database": f"projects/{PROJECT}/databases/(default)",
                           "export_directory": str(self.export_dir)}).encode()
        req = urllib.request.Request(f"{self.server.url}/emulator/v1/projects/{PROJECT}:export", data=body,
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30):
            pass
        self.server.kill()

    def restart(self) -> None:
        exports = sorted(self.export_dir.rglob("*.overall_export_metadata"), key=lambda p: p.stat().st_mtime)
        base = [a for a in self.server.argv if not a.startswith("--import-data=")]
        self.server = Server(self.server.name, [*base, f"--import-data={exports[-1]}"], self.server.port,
                             log_path=self.server.log_path)
        self.server.start()


@pytest.fixture(scope="module")
def durable_firestore(tmp_path_factory: pytest.TempPathFactory, logs_dir: Path) -> Iterator[DurableFirestore]:
    store = DurableFirestore(firestore_emulator(logs_dir, project=PROJECT).start(),
                             tmp_path_factory.mktemp("firestore-export"))
    yield store
    store.server.stop()


# ---- delivering like Eventarc -----------------------------------------------------------


def deliver_patiently(url: str, event: CloudEvent, *, within: float = 120.0, mode: str = "binary") -> list[int]:
    """Redeliver while the function answers 5xx (or cannot be reached), with backoff up to ``within`` s."""
    codes: list[int] = []
    delay, deadline = 0.25, time.monotonic() + within
    while True:
        try:
            code = cloud.post_event(url, event, mode, timeout=within).status_code
        except requests.ConnectionError:
            code = 599  # nobody listening (a worker restarting): Eventarc retries this too
        codes.append(code)
        if code < 500 or time.monotonic() > deadline:
            return codes
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def set_env(values: dict[str, str]) -> dict[str, str]:
    """Apply ``values`` to os.environ; what it was, for restoring."""
    saved = dict(os.environ)
    os.environ.update(values)
    return saved


@pytest.fixture(scope="session")
def quick_engine(dev_model_dir: Path) -> Any:
    """The dev-model engine capped at ``BURST_TOKENS`` audio tokens per segment (cheap jobs)."""
    from voicecloning.engine.xtts import EngineConfig, XttsEngine

    return XttsEngine(EngineConfig(model_dir=dev_model_dir, max_audio_tokens=int(BURST_TOKENS), precision="fp32",
                                   threads=TEST_THREADS))

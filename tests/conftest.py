"""Shared fixtures: the tiny dev model, the real emulators, functions-framework servers.

Every server is started here on a free loopback port and stopped here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import ROOT, Server, firestore_emulator, free_port, storage_emulator

PROJECT = "demo-voicecloning"
INPUT_BUCKET = "voicecloning-input"
OUTPUT_BUCKET = "voicecloning-output"
TEST_TOKENS = "24"  # random weights never emit the stop token: cap generated audio tokens
TEST_THREADS = 1
# Every engine of the test run, in this process and in each server it starts, computes on one thread:
# several of them share the machine's cores at once, and OpenMP threads of two processes on the same
# two cores wait on each other at every barrier (measured: a 4-token HiFiGAN decode took 5.6 s at two
# threads beside one other busy process, 0.37 s at one). A deployed instance owns its vCPUs instead.
os.environ.setdefault("VOICECLONING_THREADS", str(TEST_THREADS))


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Each test sees (and leaves) the process environment as it was."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def dev_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight XTTS-v2 checkpoint of the real architecture (its audio is noise)."""
    from voicecloning.engine.devmodel import build_dev_model

    return build_dev_model(tmp_path_factory.mktemp("dev-model") / "xtts-tiny")


@pytest.fixture(scope="session")
def engine(dev_model_dir: Path):  # type: ignore[no-untyped-def]
    """One loaded engine on the dev model for in-process tests."""
    from voicecloning.engine.xtts import EngineConfig, XttsEngine

    return XttsEngine(EngineConfig(model_dir=dev_model_dir, max_audio_tokens=int(TEST_TOKENS), precision="fp32",
                                   threads=TEST_THREADS))


@pytest.fixture(scope="session")
def firestore_server(logs_dir: Path) -> Iterator[Server]:
    server = firestore_emulator(logs_dir, project=PROJECT).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def storage_server(logs_dir: Path) -> Iterator[Server]:
    server = storage_emulator(logs_dir).start()
    yield server
    server.stop()


# Modules that use these define their own ``env`` fixture (the worker's environment).
@pytest.fixture(scope="module")
def worker(env: dict[str, str], logs_dir: Path) -> Iterator[Server]:
    """functions-framework serving ``on_object_finalized`` with the module's ``env``."""
    server = functions_server("on_object_finalized", env, logs_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def clients(env: dict[str, str]) -> tuple[Any, Any]:
    """(storage, firestore) clients for the emulators of the module's ``env``; the buckets exist."""
    from tests.support import cloud

    return cloud.emulator_clients(env, PROJECT, (INPUT_BUCKET, OUTPUT_BUCKET))


@pytest.fixture(scope="module")
def gcs(clients: tuple[Any, Any]) -> Any:
    return clients[0]


@pytest.fixture(scope="module")
def db(clients: tuple[Any, Any]) -> Any:
    return clients[1]


def gcp_env(firestore: Server, storage: Server, model_dir: Path, **extra: str) -> dict[str, str]:
    """The environment a deployed worker gets, pointed at the emulators."""
    return {
        "VOICECLONING_BACKEND": "gcp",
        "VOICECLONING_INPUT_BUCKET": INPUT_BUCKET,
        "VOICECLONING_OUTPUT_BUCKET": OUTPUT_BUCKET,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "FIRESTORE_EMULATOR_HOST": firestore.host,
        "STORAGE_EMULATOR_HOST": storage.url,
        "VOICECLONING_MODEL_DIR": str(model_dir),
        "VOICECLONING_MAX_AUDIO_TOKENS": TEST_TOKENS,
        "VOICECLONING_PRECISION": "fp32",
        "VOICECLONING_VOICE_POLL_SECONDS": "2",
        **extra,
    }


def functions_server(target: str, env: dict[str, str], logs_dir: Path, port: int | None = None) -> Server:
    """functions-framework serving ``main.py``'s ``target`` on loopback."""
    port = port or free_port()
    argv = [
        sys.executable, "-m", "functions_framework",
        f"--target={target}", f"--source={ROOT / 'main.py'}", "--host=127.0.0.1", f"--port={port}",
    ]
    return Server(f"functions-{target}", argv, port, env={**env, "PYTHONPATH": str(ROOT)},
                  log_path=logs_dir / f"{target}-{port}.log")


@pytest.fixture(scope="session")
def pubsub_server(logs_dir: Path) -> Iterator[Server]:
    """The official Pub/Sub emulator on a free loopback port (its process group is stopped at the end)."""
    from tests.support.servers import pubsub_emulator

    server = pubsub_emulator(logs_dir, project=PROJECT).start()
    yield server
    server.stop()

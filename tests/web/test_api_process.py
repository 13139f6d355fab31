"""The HTTP API as a real functions-framework process (embedded stores, no emulators): it never imports torch,
and it answers a huge or endless upload at once, without reading (or buffering) the body it refuses."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import functions_server
from tests.support.servers import Server, free_port

pytestmark = pytest.mark.integration

ORIGIN = "http://127.0.0.1:5000"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder as the API reads it (config, vocab, a weights file it never opens)."""
    folder = tmp_path_factory.mktemp("model")
    (folder / "config.json").write_text(json.dumps({"model": "xtts", "languages": ["en", "fr"],
                                                    "audio": {"output_sample_rate": 24000}}))
    (folder / "vocab.json").write_text("{}")
    (folder / "model.pth").write_bytes(b"not loaded by the API")
    return folder


@pytest.fixture(scope="module")
def api(model_folder: Path, tmp_path_factory: pytest.TempPathFactory, logs_dir: Path) -> Iterator[Server]:
    """http_api on the embedded backend, every import it makes written to its log (PYTHONPROFILEIMPORTTIME)."""
    env = {
        "VOICECLONING_BACKEND": "local",
        "VOICECLONING_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "VOICECLONING_MODEL_DIR": str(model_folder),
        "VOICECLONING_CORS_ORIGINS": ORIGIN,
        "GOOGLE_CLOUD_PROJECT": "demo-voicecloning",
        "FIREBASE_AUTH_EMULATOR_HOST": f"127.0.0.1:{free_port()}",  # nothing listens: tokens never get that far
        "PYTHONPROFILEIMPORTTIME": "1",
    }
    server = functions_server("http_api", env, logs_dir).start(ready_path="/health")
    yield server
    server.stop()


def raw_request(server: Server, head: str, body_part: bytes, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` and only ``body_part`` of the body the head announces, then read the answer.

    A server that waits for (or buffers) the rest of the body never answers: the read times out.
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n" + body_part)
        data = b""
        while b"\r\n\r\n" not in data or not _complete(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    header_block, _, payload = rest.partition(b"\r\n\r\n")
    headers = dict(line.decode().split(": ", 1) for line in header_block.split(b"\r\n") if b": " in line)
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        payload = _dechunk(payload)
    return int(status_line.split()[1]), headers, payload


def _complete(data: bytes) -> bool:
    head, _, payload = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)content-length: (\d+)", head)
    if match:
        return len(payload) >= int(match.group(1))
    return payload.endswith(b"0\r\n\r\n")


def _dechunk(payload: bytes) -> bytes:
    out = b""
    while payload:
        size_line, _, payload = payload.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, payload = out + payload[:size], payload[size + 2:]
    return out


def test_the_api_process_never_imports_torch_or_the_engine(api: Server) -> None:
    """After health, model info, preflight and refused uploads, the process has not imported torch."""
    assert requests.get(api.url + "/health", timeout=30).status_code == 200
    info = requests.get(api.url + "/model/info", timeout=30).json()
    assert info["languages"] == ["en", "fr"] and info["worker"] is None
    assert requests.options(api.url + "/jobs", headers={"Origin": ORIGIN}, timeout=30).status_code == 204
    bad = {"Authorization": "Bearer not-a-token"}
    assert requests.put(api.url + "/voices/v1.wav", data=b"RIFF", headers=bad, timeout=30).status_code == 401
    assert requests.post(api.url + "/jobs", data=b"{}", headers=bad, timeout=30).status_code == 401
    assert requests.get(api.url + "/outputs/j1.wav", headers=bad, timeout=30).status_code == 401

    imported = [line.rsplit("|", 1)[-1].strip() for line in api.log_path.read_text().splitlines()  # type: ignore[union-attr]
                if line.startswith("import time:")]
    assert "handlers.api" in imported and "firebase_admin.auth" in imported  # the log really lists imports
    assert "torch" not in imported and "voicecloning.engine.xtts" not in imported
    assert not [name for name in imported if name.startswith(("torch.", "TTS"))]


def test_a_huge_declared_upload_is_answered_without_reading_its_body(api: Server) -> None:
    """PUT with Content-Length: 1 GB and only 64 KiB sent: the 401 comes back at once, JSON with CORS."""
    head = (f"PUT /voices/v1.wav HTTP/1.1\r\nHost: {api.host}\r\nOrigin: {ORIGIN}\r\n"
            "Content-Type: audio/wav\r\nContent-Length: 1000000000\r\n")
    status, headers, payload = raw_request(api, head, b"\0" * 65536)
    assert status == 401, payload
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "sign in" in json.loads(payload)["error"]


def test_an_endless_chunked_upload_is_answered_without_reading_to_its_end(api: Server) -> None:
    """A chunked body that never ends: the answer comes anyway (the body is not drained into memory)."""
    head = (f"POST /jobs HTTP/1.1\r\nHost: {api.host}\r\nOrigin: {ORIGIN}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")
    status, headers, payload = raw_request(api, head, b"10000\r\n" + b" " * 0x10000 + b"\r\n")
    assert status == 401 and json.loads(payload)["success"] is False
    assert headers["Access-Control-Allow-Origin"] == ORIGIN

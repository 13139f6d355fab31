"""Servers for the web page's tests: the Auth emulator (firebase-tools), the HTTP function with
authentication, Firestore with the real security rules loaded, and helpers to create users.

Everything is started here on free loopback ports and stopped here.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import INPUT_BUCKET, OUTPUT_BUCKET, PROJECT, functions_server, gcp_env
from tests.support import cloud
from tests.support.servers import ROOT, Server, free_port

WEB = ROOT / "web"
FIREBASE_CLI = WEB / "node_modules" / "firebase-tools" / "lib" / "bin" / "firebase.js"
RULES = ROOT / "terraform" / "firestore.rules"
API_KEY = "fake-api-key"  # the Auth emulator accepts any key
PASSWORD = "correct-horse-battery"


def need(path: Path, what: str) -> None:
    if not path.exists():
        pytest.fail(f"{what} is missing ({path}); run: bash scripts/setup-web.sh", pytrace=False)


@dataclass(frozen=True)
class User:
    email: str
    uid: str
    token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class AuthEmulator:
    """Talks to the Auth emulator's REST API the way the Firebase SDKs do."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = server.url

    def _post(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = requests.post(f"{self.url}/identitytoolkit.googleapis.com/v1/accounts:{method}?key={API_KEY}",
                             json=body, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def create_user(self, name: str) -> User:
        """A new user (a unique email each time) and a fresh ID token for it."""
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        body = self._post("signUp", {"email": email, "password": PASSWORD, "returnSecureToken": True})
        return User(email, body["localId"], body["idToken"])


@pytest.fixture(scope="session")
def auth_emulator(logs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthEmulator]:
    """firebase-tools' Auth emulator, run as `node firebase.js` so the PID we hold is the server."""
    need(FIREBASE_CLI, "firebase-tools")
    folder = tmp_path_factory.mktemp("firebase")
    port = free_port()
    (folder / "firebase.json").write_text(json.dumps({"emulators": {
        "auth": {"host": "127.0.0.1", "port": port},
        "hub": {"host": "127.0.0.1", "port": free_port()},
        "logging": {"host": "127.0.0.1", "port": free_port()},
        "ui": {"enabled": False},
        "singleProjectMode": True,
    }}))
    argv = [shutil.which("node") or "node", str(FIREBASE_CLI), "emulators:start", "--only", "auth",
            "--project", PROJECT, "--config", str(folder / "firebase.json")]
    env = {"HOME": str(folder), "NO_UPDATE_NOTIFIER": "1", "FIREBASE_CLI_DISABLE_UPDATE_CHECK": "true",
           "CI": "true", "FORCE_COLOR": "0"}
    server = Server("auth-emulator", argv, port, env=env, log_path=logs_dir / f"auth-{port}.log")
    server.start(timeout=120)
    try:
        yield AuthEmulator(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def secured_firestore(firestore_server: Server) -> Server:
    """The Firestore emulator with terraform/firestore.rules loaded: web clients are subject to them."""
    need(RULES, "terraform/firestore.rules")
    body = {"rules": {"files": [{"name": "firestore.rules", "content": RULES.read_text()}]}}
    resp = requests.put(f"{firestore_server.url}/emulator/v1/projects/{PROJECT}:securityRules", json=body, timeout=30)
    assert resp.status_code == 200, f"the emulator refused terraform/firestore.rules: {resp.text}"
    return firestore_server


@pytest.fixture(scope="session")
def web_origin() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def web_env(secured_firestore: Server, storage_server: Server, dev_model_dir: Path,
            auth_emulator: AuthEmulator, web_origin: str) -> dict[str, str]:
    """The environment of both functions: the emulators, the Auth emulator, the page's origin."""
    return gcp_env(secured_firestore, storage_server, dev_model_dir,
                   FIREBASE_AUTH_EMULATOR_HOST=auth_emulator.server.host,
                   VOICECLONING_CORS_ORIGINS=web_origin,
                   VOICECLONING_PROGRESS_INTERVAL_SECONDS="0.1")


@pytest.fixture(scope="session")
def web_api(web_env: dict[str, str], logs_dir: Path) -> Iterator[Server]:
    server = functions_server("http_api", web_env, logs_dir).start(ready_path="/health")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs(web_env: dict[str, str]) -> Any:
    os.environ["STORAGE_EMULATOR_HOST"] = web_env["STORAGE_EMULATOR_HOST"]
    client = cloud.storage_client(web_env["STORAGE_EMULATOR_HOST"], PROJECT)
    cloud.ensure_bucket(client, INPUT_BUCKET)
    cloud.ensure_bucket(client, OUTPUT_BUCKET)
    return client


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Kept after the run (screenshots): test-artifacts/web/ at the repository root (git-ignored)."""
    folder = ROOT / "test-artifacts" / "web"
    folder.mkdir(parents=True, exist_ok=True)
    return folder

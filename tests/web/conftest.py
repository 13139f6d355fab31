"""Servers for the web page's tests: the Auth emulator (firebase-tools), the HTTP function with
authentication, Firestore with the real security rules loaded, and helpers to create users; for the
browser tests (tests/web/test_page*.py) the worker, the development bridge, the static site and the one
browser session whose JSON result they all assert on.

Everything is started here on free loopback ports and stopped here.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import INPUT_BUCKET, OUTPUT_BUCKET, PROJECT, functions_server, gcp_env
from tests.support import cloud
from tests.support.clips import silence, speech_clip
from tests.support.servers import ROOT, Server, free_port
from tests.web.pagekit import StreamedJob, browse
from voicecloning.devbridge import Bridge

WEB = ROOT / "web"
FIREBASE_CLI = WEB / "node_modules" / "firebase-tools" / "lib" / "bin" / "firebase.js"
RULES = ROOT / "terraform" / "firestore.rules"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "web-screenshot.png"
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


@pytest.fixture(scope="session")
def page_worker(web_env: dict[str, str], logs_dir: Path) -> Iterator[Server]:
    server = functions_server("on_object_finalized", web_env, logs_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def page_bridge(gcs: Any, page_worker: Server) -> Iterator[Bridge]:
    """The local stand-in for Eventarc: new input objects become CloudEvents for the worker."""
    running = Bridge(gcs, INPUT_BUCKET, page_worker.url, interval=0.25, backoff=0.5, max_backoff=4).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def page_site(tmp_path_factory: pytest.TempPathFactory, web_origin: str, web_api: Server, auth_emulator: AuthEmulator,
              web_env: dict[str, str], logs_dir: Path) -> Iterator[Server]:
    """web/public served as a static site, with a config.json that points at the emulators."""
    need(WEB / "public" / "app.js", "the page bundle")
    folder = tmp_path_factory.mktemp("site") / "public"
    shutil.copytree(WEB / "public", folder)
    (folder / "config.json").write_text(json.dumps({
        "apiKey": API_KEY,
        "authDomain": f"{PROJECT}.firebaseapp.com",
        "projectId": PROJECT,
        "functionsBaseUrl": web_api.url,
        "emulators": {"auth": auth_emulator.url, "firestore": web_env["FIRESTORE_EMULATOR_HOST"]},
    }))
    port = int(web_origin.rsplit(":", 1)[1])
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)]
    server = Server("web-site", argv, port, log_path=logs_dir / f"site-{port}.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser_session(page_site: Server, web_api: Server, page_bridge: Bridge, auth_emulator: AuthEmulator,
                    web_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
                    artifacts_dir: Path) -> dict[str, Any]:
    """One browser session (web/tests/e2e.mjs) for every browser test: user A enrolls a voice and gets
    audio; user B sees none of it; user C plays a long job part by part while it renders, then its captions."""
    need(CHROMIUM, "Debian's chromium")
    need(WEB / "node_modules" / "playwright-core", "playwright-core")
    clips = tmp_path_factory.mktemp("web-clips")
    user_c = auth_emulator.create_user("web-c")
    env = {
        "WEB_URL": page_site.url + "/", "API_URL": web_api.url, "AUTH_URL": auth_emulator.url, "API_KEY": API_KEY,
        "USER_A": auth_emulator.create_user("web-a").email, "USER_B": auth_emulator.create_user("web-b").email,
        "PASSWORD": PASSWORD, "USER_C": user_c.email,
        "CLIP": str(speech_clip(clips / "reference.wav", seconds=8)),
        "SILENCE": str(silence(clips / "quiet.wav", seconds=5)),
        "OUT_DIR": str(artifacts_dir), "CHROMIUM": str(CHROMIUM),
        "PATH": "/usr/bin:/bin", "HOME": str(clips),
    }
    streamed = StreamedJob(web_env, user_c.uid)
    env |= streamed.seeded()
    stderr = artifacts_dir / "e2e.stderr.log"
    returncode, lines = browse(env, streamed, stderr)
    assert returncode == 0 and lines, f"e2e.mjs exited {returncode}: {stderr.read_text()[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    (artifacts_dir / "e2e.json").write_text(json.dumps(result, indent=2))
    assert result["ok"], f"{result.get('error')}\nsteps: {result['steps']}\nbridge: {page_bridge.delivered}"
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":  # refresh the README's picture on purpose only
        shutil.copyfile(result["screenshot"], SCREENSHOT)
    return result

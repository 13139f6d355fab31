"""terraform/firestore.rules, loaded into the official Firestore emulator, as web clients see it.

Clients are signed in with unsigned ID tokens (alg "none"), which the emulator
accepts; seeding uses the emulator's "owner" token, which bypasses the rules
like the worker's service account does in the cloud.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.servers import Server, firestore_emulator

PROJECT = "demo-voicecloning"
RULES = Path(__file__).resolve().parents[2] / "terraform" / "firestore.rules"
OWNER = {"Authorization": "Bearer owner"}
SEEDED = ["users/u1/jobs/j1", "users/u1/voices/v1", "users/u2/jobs/j2", "jobs/j1", "voices/v1",
          "users/u1/jobs/j1/parts/0", "users/u1/jobs/j1/parts/1", "users/u2/jobs/j2/parts/0", "jobs/j1/parts/0"]


def id_token(uid: str) -> dict[str, str]:
    def b64(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "sub": uid,
        "user_id": uid,
        "firebase": {"sign_in_provider": "custom", "identities": {}},
    }
    return {"Authorization": f"Bearer {b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = firestore_emulator(tmp_path_factory.mktemp("firestore"), project=PROJECT).start()
    try:
        loaded = requests.put(
            f"{server.url}/emulator/v1/projects/{PROJECT}:securityRules",
            json={"rules": {"files": [{"name": "firestore.rules", "content": RULES.read_text()}]}},
            timeout=30,
        )
        assert loaded.status_code == 200, f"the emulator refused the rules: {loaded.text}"
        for path in SEEDED:
            seeded = requests.patch(
                f"{docs_url(server)}/{path}",
                json={"fields": {"status": {"stringValue": "done"}, "created_at": {"integerValue": "1"}}},
                headers=OWNER,
                timeout=10,
            )
            assert seeded.status_code == 200, seeded.text
        yield server
    finally:
        server.stop()


def docs_url(server: Server) -> str:
    return f"{server.url}/v1/projects/{PROJECT}/databases/(default)/documents"


def get(server: Server, path: str, headers: dict[str, str] | None = None) -> int:
    return requests.get(f"{docs_url(server)}/{path}", headers=headers or {}, timeout=10).status_code


def test_owner_token_sees_seeded_documents(emulator: Server) -> None:
    """Sanity: the seeded documents exist, so the 403s below are the rules, not missing data."""
    for path in SEEDED:
        assert get(emulator, path, OWNER) == 200


@pytest.mark.parametrize("path", ["users/u1/jobs/j1", "users/u1/voices/v1", "users/u1/jobs/j1/parts/0"])
def test_user_reads_own_jobs_and_voices(emulator: Server, path: str) -> None:
    assert get(emulator, path, id_token("u1")) == 200


def test_user_lists_own_jobs(emulator: Server) -> None:
    response = requests.get(f"{docs_url(emulator)}/users/u1/jobs", headers=id_token("u1"), timeout=10)
    assert response.status_code == 200
    assert [d["name"].rsplit("/", 1)[1] for d in response.json()["documents"]] == ["j1"]


def test_user_lists_the_parts_of_own_job(emulator: Server) -> None:
    """The page listens to users/<uid>/jobs/<job_id>/parts while a long job renders."""
    response = requests.get(f"{docs_url(emulator)}/users/u1/jobs/j1/parts", headers=id_token("u1"), timeout=10)
    assert response.status_code == 200
    assert sorted(d["name"].rsplit("/", 1)[1] for d in response.json()["documents"]) == ["0", "1"]


def test_user_cannot_list_the_parts_of_another_users_job(emulator: Server) -> None:
    for path, uid in [("users/u2/jobs/j2/parts", "u1"), ("users/u1/jobs/j1/parts", "u2"), ("jobs/j1/parts", "u1")]:
        response = requests.get(f"{docs_url(emulator)}/{path}", headers=id_token(uid), timeout=10)
        assert response.status_code == 403, path
    assert requests.get(f"{docs_url(emulator)}/users/u1/jobs/j1/parts", timeout=10).status_code == 403


@pytest.mark.parametrize("path", ["users/u2/jobs/j2", "users/u1/jobs/j1", "users/u2/jobs/j2/parts/0",
                                  "users/u1/jobs/j1/parts/0"])
def test_user_cannot_read_another_users_documents(emulator: Server, path: str) -> None:
    other = "u1" if path.startswith("users/u2") else "u2"
    assert get(emulator, path, id_token(other)) == 403


def test_user_cannot_list_another_users_jobs(emulator: Server) -> None:
    response = requests.get(f"{docs_url(emulator)}/users/u2/jobs", headers=id_token("u1"), timeout=10)
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["users/u1/jobs/j1", "users/u1/voices/v1", "jobs/j1"])
def test_unauthenticated_clients_read_nothing(emulator: Server, path: str) -> None:
    assert get(emulator, path) == 403


@pytest.mark.parametrize("path", ["jobs/j1", "voices/v1", "jobs/j1/parts/0"])
def test_top_level_documents_are_server_only(emulator: Server, path: str) -> None:
    assert get(emulator, path, id_token("u1")) == 403


@pytest.mark.parametrize("auth", ["u1", None], ids=["owner-of-path", "anonymous"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("create", "users/u1/jobs/new"),
        ("update", "users/u1/jobs/j1"),
        ("delete", "users/u1/jobs/j1"),
        ("create", "users/u1/voices/new"),
        ("update", "users/u1/voices/v1"),
        ("delete", "users/u1/voices/v1"),
        ("create", "users/u1/jobs/j1/parts/9"),
        ("update", "users/u1/jobs/j1/parts/0"),
        ("delete", "users/u1/jobs/j1/parts/1"),
        ("create", "jobs/new"),
        ("update", "jobs/j1"),
        ("delete", "voices/v1"),
        ("create", "users/u1"),
    ],
)
def test_no_client_writes_anywhere(emulator: Server, method: str, path: str, auth: str | None) -> None:
    headers = id_token(auth) if auth else {}
    url = f"{docs_url(emulator)}/{path}"
    body = {"fields": {"status": {"stringValue": "hacked"}}}
    if method == "create":
        parent, doc_id = url.rsplit("/", 1)
        response = requests.post(parent, params={"documentId": doc_id}, json=body, headers=headers, timeout=10)
    elif method == "update":
        response = requests.patch(
            url, params={"currentDocument.exists": "true"}, json=body, headers=headers, timeout=10
        )
    else:
        response = requests.delete(url, headers=headers, timeout=10)
    assert response.status_code == 403, response.text
    if method != "create":
        after = requests.get(url, headers=OWNER, timeout=10).json()
        assert after["fields"]["status"] == {"stringValue": "done"}

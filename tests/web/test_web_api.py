"""The HTTP function's helpers for the page: a signed-in user writes and reads only under users/<own uid>/,
and the Firestore rules show a web client only its own documents.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.conftest import INPUT_BUCKET, OUTPUT_BUCKET, PROJECT
from tests.support.servers import Server
from tests.web.conftest import AuthEmulator, User
from tests.web.test_api_process import raw_request

pytestmark = pytest.mark.integration

REQUEST = {"text": "Hello there.", "voice_id": "v1", "language": "en", "format": "wav"}


@pytest.fixture(scope="module")
def alice(auth_emulator: AuthEmulator) -> User:
    return auth_emulator.create_user("alice")


@pytest.fixture(scope="module")
def bob(auth_emulator: AuthEmulator) -> User:
    return auth_emulator.create_user("bob")


def names(gcs: Any, bucket: str, prefix: str) -> list[str]:
    return sorted(b.name for b in gcs.list_blobs(bucket, prefix=prefix))


def test_health_and_model_info_stay_public(web_api: Server) -> None:
    """/health and /model/info need no sign-in and keep their fields."""
    health = requests.get(web_api.url + "/health", timeout=30)
    assert health.status_code == 200 and set(health.json()) >= {"status", "timestamp"}
    info = requests.get(web_api.url + "/model/info", timeout=60).json()
    assert info["success"] is True and "en" in info["languages"]
    assert "worker" in info and set(info["describes"]) == {"model", "worker"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}])
def test_uploads_without_a_valid_token_are_refused(web_api: Server, gcs: Any, headers: dict[str, str]) -> None:
    """No token, a forged token or another scheme: 401, and nothing is written."""
    before = names(gcs, INPUT_BUCKET, "users/")
    resp = requests.put(web_api.url + "/voices/v1.wav", data=b"RIFF", headers=headers, timeout=30)
    assert resp.status_code == 401 and "sign" in resp.json()["error"].lower()
    assert requests.post(web_api.url + "/jobs", json=REQUEST, headers=headers, timeout=30).status_code == 401
    assert requests.get(web_api.url + "/outputs/j1.wav", headers=headers, timeout=30).status_code == 401
    assert names(gcs, INPUT_BUCKET, "users/") == before


def test_a_clip_is_stored_under_the_callers_own_prefix(web_api: Server, gcs: Any, alice: User) -> None:
    """PUT /voices/<id>.<ext> writes exactly users/<uid>/voices/<id>.<ext> with the bytes and consent sent."""
    consent = "I, Zoë, agree that my voice may be cloned for audiobooks."
    resp = requests.put(web_api.url + "/voices/my-voice.wav", data=b"RIFF-clip-bytes", timeout=30,
                        headers={**alice.bearer, "Content-Type": "audio/wav", "X-Voice-Consent": quote(consent)})
    assert resp.status_code == 201, resp.text
    assert resp.json()["object"] == f"users/{alice.uid}/voices/my-voice.wav"
    blob = gcs.bucket(INPUT_BUCKET).get_blob(f"users/{alice.uid}/voices/my-voice.wav")
    assert blob.download_as_bytes() == b"RIFF-clip-bytes" and blob.content_type == "audio/wav"
    assert blob.metadata["consent"] == consent


def test_a_job_is_checked_and_stored_as_a_new_request(web_api: Server, gcs: Any, alice: User) -> None:
    """POST /jobs stores users/<uid>/requests/<new job id>.json; a bad request is refused with its reason."""
    resp = requests.post(web_api.url + "/jobs", json=REQUEST, headers=alice.bearer, timeout=30)
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["job_id"]
    assert names(gcs, INPUT_BUCKET, f"users/{alice.uid}/requests/") == [f"users/{alice.uid}/requests/{job_id}.json"]
    bad = requests.post(web_api.url + "/jobs", json={**REQUEST, "format": "aiff"}, headers=alice.bearer, timeout=30)
    assert bad.status_code == 400 and "'format'" in bad.json()["error"]
    assert len(names(gcs, INPUT_BUCKET, f"users/{alice.uid}/requests/")) == 1


@pytest.mark.parametrize("name", [
    "..%2F..%2Fvoices%2Fx.wav",
    "..%2F{other}%2Fvoices%2Fx.wav",
    "x.exe",
    "a%20b.wav",
])
def test_a_name_cannot_reach_outside_the_callers_prefix(
    web_api: Server, gcs: Any, alice: User, bob: User, name: str
) -> None:
    """Names with slashes, dots, spaces or unknown extensions are refused; no other prefix is touched."""
    before = names(gcs, INPUT_BUCKET, "")
    url = f"{web_api.url}/voices/{name.format(other=alice.uid)}"
    resp = requests.put(url, data=b"RIFF", headers=bob.bearer, timeout=30)
    assert resp.status_code in (400, 404, 415), resp.text
    assert names(gcs, INPUT_BUCKET, "") == before


def test_a_user_reads_only_their_own_outputs(web_api: Server, gcs: Any, alice: User, bob: User) -> None:
    """Alice downloads users/<alice>/outputs/j1.wav; Bob asking for j1.wav gets 404, not Alice's audio."""
    gcs.bucket(OUTPUT_BUCKET).blob(f"users/{alice.uid}/outputs/j1.wav").upload_from_string(
        b"RIFF-alice-audio", content_type="audio/wav")
    mine = requests.get(web_api.url + "/outputs/j1.wav", headers=alice.bearer, timeout=30)
    assert mine.status_code == 200 and mine.content == b"RIFF-alice-audio"
    assert mine.headers["Content-Type"].startswith("audio/wav")
    assert mine.headers["Cache-Control"] == "private, no-store"
    theirs = requests.get(web_api.url + "/outputs/j1.wav", headers=bob.bearer, timeout=30)
    assert theirs.status_code == 404 and b"RIFF" not in theirs.content


def test_a_user_reads_only_their_own_parts(web_api: Server, gcs: Any, alice: User, bob: User) -> None:
    """A rendered part users/<uid>/outputs/<job>/parts/<n>.wav is readable by its owner only, while the job renders;
    names that are not <job_id>/parts/<n>.wav are refused without touching storage."""
    gcs.bucket(OUTPUT_BUCKET).blob(f"users/{alice.uid}/outputs/j2/parts/0.wav").upload_from_string(
        b"RIFF-alice-part-0", content_type="audio/wav")
    mine = requests.get(web_api.url + "/outputs/j2/parts/0.wav", headers=alice.bearer, timeout=30)
    assert mine.status_code == 200 and mine.content == b"RIFF-alice-part-0"
    assert mine.headers["Content-Type"].startswith("audio/wav")
    assert mine.headers["Cache-Control"] == "private, no-store"
    assert requests.get(web_api.url + "/outputs/j2/parts/0.wav", headers=bob.bearer, timeout=30).status_code == 404
    assert requests.get(web_api.url + "/outputs/j2/parts/1.wav", headers=alice.bearer, timeout=30).status_code == 404
    for name, status in [("j2/parts/x.wav", 400), ("j2/parts/-1.wav", 400), ("j2/parts/0.mp3", 415),
                         ("..%2Fj2/parts/0.wav", 400), (f"j2/parts/0.wav%2F..%2F..%2F{alice.uid}", 400)]:
        resp = requests.get(f"{web_api.url}/outputs/{name}", headers=bob.bearer, timeout=30)
        assert resp.status_code == status, (name, resp.text)


def test_cors_allows_only_the_pages_origin(web_api: Server, web_origin: str) -> None:
    """A preflight from the page's origin is answered with CORS headers; another origin gets none."""
    ok = requests.options(web_api.url + "/jobs", timeout=30, headers={
        "Origin": web_origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == web_origin
    assert "authorization" in ok.headers["Access-Control-Allow-Headers"].lower()
    other = requests.options(web_api.url + "/jobs", headers={"Origin": "https://evil.example"}, timeout=30)
    assert other.status_code == 403 and "Access-Control-Allow-Origin" not in other.headers
    assert requests.get(web_api.url + "/health", headers={"Origin": web_origin}, timeout=30).headers[
        "Access-Control-Allow-Origin"] == web_origin


def test_firestore_rules_show_a_web_client_only_its_own_documents(
    secured_firestore: Server, alice: User, bob: User
) -> None:
    """With the deployed rules loaded, Bob's token cannot read Alice's voice; Alice's can; nobody can write."""
    base = f"{secured_firestore.url}/v1/projects/{PROJECT}/databases/(default)/documents"
    path = f"users/{alice.uid}/voices/ruled"
    seed = requests.patch(f"{base}/{path}", headers={"Authorization": "Bearer owner"}, timeout=30,
                          json={"fields": {"status": {"stringValue": "ready"}}})
    assert seed.status_code == 200, seed.text
    assert requests.get(f"{base}/{path}", headers=alice.bearer, timeout=30).status_code == 200
    assert requests.get(f"{base}/{path}", headers=bob.bearer, timeout=30).status_code == 403
    write = requests.patch(f"{base}/{path}", headers=alice.bearer, timeout=30,
                           json={"fields": {"status": {"stringValue": "hacked"}}})
    assert write.status_code == 403


def admin_update(auth_emulator: AuthEmulator, uid: str, **fields: Any) -> None:
    """Change a user as the Admin SDK would (the emulator takes 'Bearer owner' as an admin)."""
    resp = requests.post(f"{auth_emulator.url}/identitytoolkit.googleapis.com/v1/projects/{PROJECT}/accounts:update",
                         json={"localId": uid, **fields}, headers={"Authorization": "Bearer owner"}, timeout=30)
    assert resp.status_code == 200, resp.text


def test_a_revoked_sign_in_is_refused(web_api: Server, auth_emulator: AuthEmulator) -> None:
    """A token issued before its user's sessions were revoked is refused (verify_id_token(check_revoked=True))."""
    carol = auth_emulator.create_user("carol")
    assert requests.post(web_api.url + "/jobs", json=REQUEST, headers=carol.bearer, timeout=30).status_code == 201
    issued_at = json.loads(base64.urlsafe_b64decode(carol.token.split(".")[1] + "=="))["auth_time"]
    admin_update(auth_emulator, carol.uid, validSince=str(issued_at + 1))  # as revoke_refresh_tokens does

    resp = requests.post(web_api.url + "/jobs", json=REQUEST, headers=carol.bearer, timeout=30)
    assert resp.status_code == 401 and "revoked" in resp.json()["error"]


def test_a_disabled_account_is_refused(web_api: Server, auth_emulator: AuthEmulator) -> None:
    """A still-valid token of a disabled account gets 403, not access."""
    dave = auth_emulator.create_user("dave")
    admin_update(auth_emulator, dave.uid, disableUser=True)

    resp = requests.put(web_api.url + "/voices/v1.wav", data=b"RIFF", headers=dave.bearer, timeout=30)
    assert resp.status_code == 403 and "disabled" in resp.json()["error"]


def test_an_oversize_upload_is_refused_413_early_with_cors(web_api: Server, alice: User, web_origin: str) -> None:
    """Signed in: a declared 1 GB clip and an endless chunked job are both answered 413 without their ends."""
    auth = f"Authorization: Bearer {alice.token}\r\nOrigin: {web_origin}\r\n"
    head = f"PUT /voices/big.wav HTTP/1.1\r\nHost: {web_api.host}\r\n{auth}Content-Length: 1000000000\r\n"
    status, headers, payload = raw_request(web_api, head, b"\0" * 65536)
    assert status == 413 and "1,000,000,000 bytes" in json.loads(payload)["error"]
    assert headers["Access-Control-Allow-Origin"] == web_origin

    head = f"POST /jobs HTTP/1.1\r\nHost: {web_api.host}\r\n{auth}Transfer-Encoding: chunked\r\n"
    chunks = b"".join(b"10000\r\n" + b" " * 0x10000 + b"\r\n" for _ in range(65))  # 4 MiB + 64 KiB, no end
    status, headers, payload = raw_request(web_api, head, chunks)
    assert status == 413 and "the limit is 4,194,304" in json.loads(payload)["error"]
    assert headers["Access-Control-Allow-Origin"] == web_origin


def test_a_consent_over_the_byte_limit_is_refused(web_api: Server, gcs: Any, alice: User) -> None:
    """800 CJK characters are 2,400 bytes (7,200 once URL-encoded): refused with the reason, nothing stored."""
    resp = requests.put(web_api.url + "/voices/cjk.wav", data=b"RIFF", timeout=30,
                        headers={**alice.bearer, "X-Voice-Consent": quote("\u540c" * 800)})
    assert resp.status_code == 413 and "2,400 bytes" in resp.json()["error"]
    assert gcs.bucket(INPUT_BUCKET).get_blob(f"users/{alice.uid}/voices/cjk.wav") is None


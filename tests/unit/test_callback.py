"""Job callbacks: one attempt per call, recorded on the job in the embedded store, retried on purpose."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers.callback import MAX_ATTEMPTS, CallbackRetry, send_callback, summary
from tests.support.receiver import receiver
from voicecloning import webhooks
from voicecloning.errors import InvalidRequest
from voicecloning.settings import Product, Settings
from voicecloning.stores.documents import SqliteDocumentStore
from voicecloning.webhooks import HEADER, WebhookUnreachable, verify

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PATH = "users/u1/jobs/j1"
SETTINGS = dataclasses.replace(Settings(), product=Product(webhook_secret="s3cret", webhook_allow_hosts=("127.0.0.1",)))


@pytest.fixture
def docs(tmp_path: Path) -> SqliteDocumentStore:
    return SqliteDocumentStore(tmp_path / "documents.sqlite3")


def put_job(docs: SqliteDocumentStore, url: str = "https://hooks.example.com/in", **changes: Any) -> None:
    docs.update(PATH, {"job_id": "j1", "owner": "u1", "status": "done", "source": {"generation": "7"},
                       "callback_url": url, "output_uri": "file:///x.wav", "text": "private", **changes})


def fake_post(*codes: int | Exception) -> Any:
    calls: list[dict[str, Any]] = []

    def post(url: str, body: bytes, secret: str, timeout: float, **kw: Any) -> int:
        calls.append({"url": url, "body": body, "secret": secret, **kw})
        answer = codes[min(len(calls), len(codes)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    post.calls = calls  # type: ignore[attr-defined]
    return post


def send(docs: SqliteDocumentStore, post: Any, generation: int | str = 7, settings: Settings = SETTINGS) -> str:
    return send_callback(PATH, generation, docs=docs, settings=settings, clock=lambda: NOW, post=post)


def test_a_real_receiver_gets_the_signed_summary_and_the_job_records_delivery(docs: SqliteDocumentStore) -> None:
    """Over real HTTP to an allowed loopback receiver: the body verifies and carries no text."""
    with receiver([200]) as rx:
        put_job(docs, url=rx.url)
        assert send(docs, post=webhooks.post) == "delivered"
    (got,) = rx.received
    body = json.loads(got.body)
    assert body["job_id"] == "j1" and body["status"] == "done" and "text" not in body
    assert verify("s3cret", got.headers[HEADER], got.body)
    assert docs.get(PATH)["callback"] == {"status": "delivered", "attempts": 1, "last_code": 200,  # type: ignore[index]
                                          "last_attempt_at": NOW, "last_error": None}


@pytest.mark.parametrize("code", [500, 502, 503, 408, 429])
def test_server_errors_and_throttling_are_retried(docs: SqliteDocumentStore, code: int) -> None:
    put_job(docs)
    with pytest.raises(CallbackRetry):
        send(docs, fake_post(code))
    cb = docs.get(PATH)["callback"]  # type: ignore[index]
    assert (cb["status"], cb["attempts"], cb["last_code"]) == ("retrying", 1, code)


def test_transport_failures_are_retried(docs: SqliteDocumentStore) -> None:
    put_job(docs)
    with pytest.raises(CallbackRetry):
        send(docs, fake_post(WebhookUnreachable("connection refused")))
    cb = docs.get(PATH)["callback"]  # type: ignore[index]
    assert cb["status"] == "retrying" and cb["last_code"] is None and "connection refused" in cb["last_error"]


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410, 301])
def test_client_errors_and_redirects_fail_for_good(docs: SqliteDocumentStore, code: int) -> None:
    put_job(docs)
    assert send(docs, fake_post(code)) == "failed"
    cb = docs.get(PATH)["callback"]  # type: ignore[index]
    assert (cb["status"], cb["attempts"], cb["last_error"]) == ("failed", 1, f"the receiver answered HTTP {code}")


def test_a_retried_callback_is_delivered_on_a_later_attempt_and_then_skipped(docs: SqliteDocumentStore) -> None:
    put_job(docs)
    post = fake_post(503, 200)
    with pytest.raises(CallbackRetry):
        send(docs, post)
    assert send(docs, post) == "delivered"
    assert send(docs, post) == "skipped"  # a redelivered task after success posts nothing
    assert len(post.calls) == 2 and docs.get(PATH)["callback"]["attempts"] == 2  # type: ignore[index]


def test_it_gives_up_after_the_maximum_attempts(docs: SqliteDocumentStore) -> None:
    put_job(docs)
    post = fake_post(503)
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(CallbackRetry):
            send(docs, post)
    assert send(docs, post) == "failed"
    cb = docs.get(PATH)["callback"]  # type: ignore[index]
    assert cb["attempts"] == MAX_ATTEMPTS and cb["last_error"].startswith(f"gave up after {MAX_ATTEMPTS} attempts")
    assert send(docs, post) == "skipped" and len(post.calls) == MAX_ATTEMPTS


def test_a_url_that_is_no_longer_allowed_fails_without_retry(docs: SqliteDocumentStore) -> None:
    put_job(docs)
    assert send(docs, fake_post(InvalidRequest("'callback_url' resolves to 10.0.0.1, a private address"))) == "failed"
    assert "10.0.0.1" in docs.get(PATH)["callback"]["last_error"]  # type: ignore[index]


def test_without_a_secret_nothing_is_sent_unsigned(docs: SqliteDocumentStore) -> None:
    put_job(docs)
    post = fake_post(200)
    assert send(docs, post, settings=Settings()) == "failed"
    assert post.calls == [] and "VOICECLONING_WEBHOOK_SECRET" in docs.get(PATH)["callback"]["last_error"]  # type: ignore[index]


@pytest.mark.parametrize(("changes", "generation"), [
    ({}, 6),  # a newer upload replaced the job
    ({"status": "processing"}, 7),  # not finished
    ({"callback_url": None}, 7),  # nobody to call
])
def test_callbacks_that_are_not_due_are_skipped(docs: SqliteDocumentStore, changes: dict[str, Any],
                                                generation: int) -> None:
    put_job(docs, **changes)
    post = fake_post(200)
    assert send(docs, post, generation=generation) == "skipped"
    assert post.calls == [] and "callback" not in docs.get(PATH)  # type: ignore[operator]


def test_failed_jobs_are_called_back_too_with_their_error(docs: SqliteDocumentStore) -> None:
    put_job(docs, status="failed", error="Voice 'x' does not exist.", output_uri=None)
    post = fake_post(204)
    assert send(docs, post) == "delivered"
    body = json.loads(post.calls[0]["body"])
    assert body["status"] == "failed" and body["error"] == "Voice 'x' does not exist."
    assert post.calls[0]["allow_hosts"] == ("127.0.0.1",) and len(post.calls[0]["event_id"]) == 32


def test_the_summary_is_the_public_view_of_the_job() -> None:
    assert summary({"job_id": "j", "status": "done", "text": "t", "lease": {}, "source": {"generation": 3}}) == {
        "job_id": "j", "status": "done", "generation": "3"}

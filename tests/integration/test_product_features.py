"""Product features through the real handler path (dispatch -> synthesize -> parts -> assembly -> terminal),
on the embedded stores, the dev engine and the embedded events table: lexicons and markup, quotas and
usage, events (and ``python -m voicecloning events``), signed callbacks, retention, batch manifests."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.clips import speech_clip
from tests.support.harness import Harness
from tests.support.receiver import receiver
from voicecloning import cli, usage, webhooks
from voicecloning.notify import EmbeddedNotifier
from voicecloning.part_records import tally
from voicecloning.retention import sweep_local

pytestmark = pytest.mark.integration
SECRET = "test-secret"
TECH = {"rules": [{"match": "SQL", "say": "sequel", "case_sensitive": True},
                  {"match": "nginx", "say": "engine x"}]}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speech_clip(tmp_path_factory.mktemp("clips") / "ref.wav", seconds=7).read_bytes()


@pytest.fixture
def h(tmp_path: Path, engine: Any, clip: bytes) -> Harness:
    harness = Harness(tmp_path, engine)
    harness.put("voices/v1.wav", clip)
    assert harness.doc("voices/v1")["status"] == "ready"
    return harness


def product(h: Harness, **changes: Any) -> Harness:
    return h.with_settings(product=replace(h.services.settings.product, **changes))


def segments(h: Harness, path: str) -> list[dict[str, Any]]:
    job = h.doc(path)
    counted = tally(h.services.docs, path, int(job["source"]["generation"]), int(job["parts_total"]))
    return [s for i in range(counted.total) for s in counted.parts[i]["segments"]]


def events(h: Harness) -> list[dict[str, Any]]:
    notifier = h.services.notifier
    assert isinstance(notifier, EmbeddedNotifier)
    return notifier.list()


def test_lexicons_and_markup_shape_what_is_spoken(h: Harness) -> None:
    """Rules apply to the spoken text (shared lexicon, then the user's own first), <sub> speaks its alias,
    <break> becomes the pause before the next words, and the job records the lexicon versions."""
    shared = h.services.inputs.write("lexicons/tech.json", json.dumps(TECH).encode(), "application/json")
    text = ('We run SQL behind nginx. <break time="700ms"/> The <sub alias="World Health Organization">WHO</sub> '
            'agrees.')
    doc = h.request("lex", text=text, voice_id="v1", lexicons=["tech"])
    assert doc["status"] == "done", doc.get("error")
    assert doc["lexicons_used"] == [{"name": "tech", "object": "lexicons/tech.json",
                                     "generation": str(shared.generation)}]
    spoken = segments(h, "jobs/lex")
    assert [s["text"] for s in spoken] == ["We run sequel behind engine x.", "The World Health Organization agrees."]
    assert [s["pause_before_s"] for s in spoken] == [0.0, 0.7]

    own = {"rules": [{"match": "SQL", "say": "S Q L", "case_sensitive": True}]}
    h.services.inputs.write("users/u1/lexicons/tech.json", json.dumps(own).encode(), "application/json")
    mine = h.request("lex", prefix="users/u1/", text="SQL now.", voice_id="v1", lexicons=["tech"])
    assert mine["status"] == "done", mine.get("error")
    assert mine["lexicons_used"][0]["object"] == "users/u1/lexicons/tech.json"
    assert [s["text"] for s in segments(h, "users/u1/jobs/lex")] == ["S Q L now."]


@pytest.mark.parametrize(("body", "reason"), [
    ({"text": "Hello.", "lexicons": ["missing"]}, "Lexicon 'missing' does not exist; upload it as lexicons/missing.json"),
    ({"text": 'Say <prosody rate="slow">this</prosody>.'}, "is not supported; only <break"),
    ({"text": "Pause <break time=\"20s\"/> here."}, "a pause must be more than 0 and at most 10 s"),
])
def test_refused_lexicons_and_markup_fail_the_job_before_any_synthesis(
    h: Harness, body: dict[str, Any], reason: str
) -> None:
    doc = h.request("refused", voice_id="v1", **body)
    assert doc["status"] == "failed" and reason in doc["error"], doc.get("error")
    assert doc["parts_total"] is None and not h.services.docs.children("jobs/refused/parts")
    assert [e["status"] for e in events(h) if e["kind"] == "job"] == ["failed"]


def test_usage_is_recorded_and_a_quota_refuses_a_job_before_synthesis(h: Harness) -> None:
    product(h, quota_chars_per_day=40)
    first = h.request("u1", text="Hello there, friend.", voice_id="v1")
    assert first["status"] == "done", first.get("error")
    used = first["usage"]
    assert used["chars"] == len("Hello there, friend.") and used["audio_s"] == first["duration_s"]
    assert used["compute_s"] > 0
    day = usage.day_of(first["finished_at"])
    assert usage.totals(h.services.docs, None, day).chars == used["chars"]
    assert h.doc(usage.total_path(None, day))["chars"] == used["chars"]  # the readable total
    h.deliver("requests/u1.json")  # a redelivery counts nothing twice
    assert usage.totals(h.services.docs, None, day).jobs == 1

    over = h.request("u2", text="This sentence needs more than the rest.", voice_id="v1")
    assert over["status"] == "failed"
    assert "daily character quota is 40 characters; 20 are used today and this request needs 39" in over["error"]
    assert "resets at" in over["error"] and over["parts_total"] is None


def test_terminal_events_reach_the_events_table_and_the_cli_prints_them(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Voice ready, job done, job failed: one event each, stable ids, repeats dropped; ``events`` prints them."""
    done = h.request("ev-ok", text="Events work.", voice_id="v1")
    failed = h.request("ev-bad", text="No such voice.", voice_id="nobody")
    assert done["status"] == "done" and failed["status"] == "failed"
    h.deliver("requests/ev-ok.json")  # redelivered: the same event id, no new row
    h.deliver("voices/v1.wav")
    capsys.readouterr()
    assert cli.main(["events", "--data", str(tmp_path)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["kind"], e["id"], e["status"]) for e in printed] == [
        ("voice", "v1", "ready"), ("job", "ev-ok", "done"), ("job", "ev-bad", "failed")]
    job = printed[1]["data"]
    assert job["output_uri"] == done["output_uri"] and job["path"] == "jobs/ev-ok" and "text" not in job
    assert job["usage"] == h.doc("jobs/ev-ok")["usage"]
    assert "Voice 'nobody' does not exist" in printed[2]["data"]["error"]


def test_a_signed_callback_is_retried_and_its_outcome_recorded(h: Harness) -> None:
    product(h, webhook_secret=SECRET, webhook_allow_hosts=("127.0.0.1",))
    with receiver([503]) as hook:
        doc = h.request("cb", text="Call me back.", voice_id="v1", callback_url=hook.url)
    assert doc["status"] == "done", doc.get("error")
    assert doc["callback"]["status"] == "delivered" and doc["callback"]["attempts"] == 2
    assert doc["callback"]["last_code"] == 200
    assert len(hook.received) == 2 and hook.received[0].body == hook.received[1].body
    post = hook.received[1]
    assert webhooks.verify(SECRET, post.headers[webhooks.HEADER], post.body)
    body = json.loads(post.body)
    assert body["job_id"] == "cb" and body["status"] == "done" and body["output_uri"] == doc["output_uri"]
    event_id = next(e["event_id"] for e in events(h) if e["id"] == "cb")
    assert post.headers[webhooks.EVENT_HEADER] == event_id


def test_a_callback_url_that_may_not_be_called_fails_the_job_at_once(h: Harness) -> None:
    doc = h.request("cb-private", text="Hello.", voice_id="v1", callback_url="https://127.0.0.1/hook")
    assert doc["status"] == "failed" and "private or reserved address" in doc["error"]


def test_retain_text_false_scrubs_every_document_and_retention_expires_it(h: Harness) -> None:
    product(h, retention_days=30)
    doc = h.request("secret", text="Words nobody keeps.", voice_id="v1", retain_text=False)
    assert doc["status"] == "done", doc.get("error")
    assert doc["text_removed"] is True and doc["expire_at"] == doc["finished_at"] + timedelta(days=30)
    for _key, part in h.services.docs.children("jobs/secret/parts"):
        assert part["text_removed"] is True and all("text" not in s for s in part["segments"])
        assert part["expire_at"] == doc["expire_at"]
    assert "Words nobody keeps" not in json.dumps(h.services.docs.list("jobs/secret"), default=str)
    assert h.output(doc)  # the audio is kept
    counts = sweep_local(h.services.outputs, h.services.docs, doc["expire_at"] + timedelta(seconds=1), 0)
    assert counts["documents"] >= 2 and h.services.docs.get("jobs/secret") is None


def test_a_batch_manifest_makes_one_job_per_line_and_one_batch_event(h: Harness) -> None:
    manifest = "\n".join([
        json.dumps({"text": "Chapter one.", "voice_id": "v1"}),
        json.dumps({"text": "Chapter two.", "voice_id": "v1", "job_id": "ch-2"}),
        '{"text": "Chapter three", "voice_id": }',
    ]).encode()
    h.put("batches/chapters.jsonl", manifest)
    batch = h.doc("batches/chapters")
    assert (batch["status"], batch["total"], batch["done"], batch["failed"]) == ("done", 3, 2, 1)
    assert batch["jobs"] == {"chapters-1": "done", "ch-2": "done", "chapters-3": "failed"}
    one, two, bad = h.doc("jobs/chapters-1"), h.doc("jobs/ch-2"), h.doc("jobs/chapters-3")
    assert one["status"] == two["status"] == "done" and one["batch_id"] == "chapters"
    assert one["source"]["name"] == "batches/chapters.jsonl" and one["source"]["line"] == 1
    assert bad["status"] == "failed" and "Line 3 is not valid JSON" in bad["error"]
    assert [e["status"] for e in events(h) if e["kind"] == "batch"] == ["done"]

    h.put("batches/chapters.jsonl", json.dumps({"text": "A new first chapter.", "voice_id": "v1"}).encode())
    again = h.doc("batches/chapters")
    assert again["total"] == 1 and again["status"] == "done" and again["source"] != batch["source"]
    assert h.doc("jobs/chapters-1")["source"]["generation"] == again["source"]["generation"]
    assert len([e for e in events(h) if e["kind"] == "batch"]) == 2


def test_an_unusable_manifest_fails_the_batch_with_its_reason(h: Harness) -> None:
    h.put("batches/empty.jsonl", b"\n\n")
    batch = h.doc("batches/empty")
    assert batch["status"] == "failed" and "no lines" in batch["error"] and batch["total"] == 0
    assert [(e["kind"], e["status"]) for e in events(h) if e["kind"] == "batch"] == [("batch", "failed")]

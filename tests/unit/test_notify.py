"""Terminal events: stable ids, public summaries, and the embedded events table."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from voicecloning.notify import EmbeddedNotifier, summary, terminal_event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def job(**changes: object) -> dict[str, object]:
    return {"job_id": "j1", "owner": "u1", "status": "done", "source": {"generation": "5", "name": "x"},
            "output_uri": "file:///o.wav", "finished_at": NOW, "text": "private", "lease": {"token": "t"},
            "attempts": 2, "callback_url": "https://example.com/h", **changes}


def test_attributes_name_the_kind_id_owner_and_status() -> None:
    data, attrs = terminal_event("job", "users/u1/jobs/j1", job())
    assert {k: attrs[k] for k in ("kind", "id", "owner", "status")} == {"kind": "job", "id": "j1", "owner": "u1",
                                                                       "status": "done"}
    assert data["path"] == "users/u1/jobs/j1" and data["job_id"] == "j1"
    assert all(isinstance(v, str) for v in attrs.values())


def test_the_event_id_is_stable_across_redeliveries_and_changes_with_the_outcome() -> None:
    first = terminal_event("job", "jobs/j1", job())[1]["event_id"]
    assert terminal_event("job", "jobs/j1", job(finished_at=datetime(2027, 1, 1, tzinfo=UTC)))[1]["event_id"] == first
    assert terminal_event("job", "jobs/j1", job(status="failed"))[1]["event_id"] != first
    assert terminal_event("job", "jobs/j1", job(source={"generation": "6"}))[1]["event_id"] != first
    assert terminal_event("job", "users/u2/jobs/j1", job())[1]["event_id"] != first


def test_the_summary_carries_public_fields_only() -> None:
    """No text, lease, attempts or callback URL; datetimes as ISO strings; the generation as a string."""
    s = summary(job())
    assert s == {"job_id": "j1", "owner": "u1", "status": "done", "output_uri": "file:///o.wav",
                 "finished_at": NOW.isoformat(), "generation": "5"}


def test_unowned_documents_have_an_empty_owner_attribute() -> None:
    _data, attrs = terminal_event("voice", "voices/alice", {"voice_id": "alice", "owner": None, "status": "ready"})
    assert attrs["owner"] == "" and attrs["id"] == "alice"


def test_batch_events_carry_the_counts() -> None:
    data, attrs = terminal_event("batch", "batches/b1", {"batch_id": "b1", "status": "done", "total": 3, "done": 2,
                                                         "failed": 1, "jobs": {"b1-1": "done"}})
    assert (data["total"], data["done"], data["failed"]) == (3, 2, 1) and "jobs" not in data
    assert attrs["kind"] == "batch"


def test_unknown_kinds_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        terminal_event("user", "users/u1", {})


def test_the_embedded_table_keeps_one_row_per_event_id(tmp_path: Path) -> None:
    """A redelivered event adds nothing; events list in the order first published."""
    notifier = EmbeddedNotifier(tmp_path / "documents.sqlite3")
    a = terminal_event("job", "jobs/j1", job())
    b = terminal_event("voice", "voices/alice", {"voice_id": "alice", "status": "ready", "source": {"generation": 1}})
    for data, attrs in (a, b, a, a):
        notifier.publish(data, attrs)
    rows = EmbeddedNotifier(tmp_path / "documents.sqlite3").list()  # another process would see the same
    assert [(r["kind"], r["id"], r["status"]) for r in rows] == [("job", "j1", "done"), ("voice", "alice", "ready")]
    assert rows[0]["event_id"] == a[1]["event_id"] and rows[0]["data"]["job_id"] == "j1"
    assert rows[0]["published_at"].endswith("+00:00")


def test_concurrent_redeliveries_still_leave_one_row(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    EmbeddedNotifier(path)
    data, attrs = terminal_event("job", "jobs/j1", job())
    threads = [threading.Thread(target=lambda: EmbeddedNotifier(path).publish(data, attrs)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(EmbeddedNotifier(path).list()) == 1


def test_the_events_command_prints_the_embedded_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m voicecloning events` prints one JSON line per event, oldest first."""
    import json

    from voicecloning.cli import main

    notifier = EmbeddedNotifier(tmp_path / "documents.sqlite3")
    notifier.publish(*terminal_event("job", "jobs/j1", job()))
    notifier.publish(*terminal_event("batch", "batches/b1", {"batch_id": "b1", "status": "done", "total": 1}))
    assert main(["events", "--data", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["kind"], e["id"]) for e in lines] == [("job", "j1"), ("batch", "b1")]
    assert main(["events", "--data", str(tmp_path / "nowhere")]) == 2

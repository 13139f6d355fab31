"""Terminal events through the official Pub/Sub emulator: a subscriber receives exactly the expected events."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import PROJECT
from tests.support.servers import Server, free_port
from voicecloning.errors import TransientError
from voicecloning.notify import PubSubNotifier, terminal_event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
JOB = {"job_id": "j1", "owner": "u1", "status": "done", "source": {"generation": "17"}, "output_uri": "gs://o/x.wav",
       "duration_s": 1.5, "finished_at": NOW, "text": "secret words", "lease": None, "attempts": 1}
VOICE = {"voice_id": "alice", "owner": None, "status": "failed", "error": "Too short.", "source": {"generation": "3"}}
BATCH = {"batch_id": "b1", "owner": "u1", "status": "done", "total": 2, "done": 1, "failed": 1,
         "source": {"generation": "9"}}


@pytest.fixture
def topic(pubsub_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str, Any]]:
    """A fresh topic and pull subscription on the emulator: (topic id, subscription path, subscriber)."""
    from google.cloud import pubsub_v1

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_server.host)
    suffix = f"{time.monotonic_ns()}"
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic_path = publisher.topic_path(PROJECT, f"job-events-{suffix}")
    sub_path = subscriber.subscription_path(PROJECT, f"reader-{suffix}")
    publisher.create_topic(request={"name": topic_path}, timeout=30)
    subscriber.create_subscription(request={"name": sub_path, "topic": topic_path, "ack_deadline_seconds": 60},
                                   timeout=30)
    yield topic_path.rsplit("/", 1)[-1], sub_path, subscriber
    subscriber.close()


def pull(subscriber: Any, sub_path: str, count: int) -> list[Any]:
    """Pull until ``count`` messages arrived (bounded), acknowledging them."""
    got: list[Any] = []
    deadline = time.monotonic() + 60
    while len(got) < count and time.monotonic() < deadline:
        response = subscriber.pull(request={"subscription": sub_path, "max_messages": 10}, timeout=10)
        if response.received_messages:
            subscriber.acknowledge(request={"subscription": sub_path,
                                            "ack_ids": [m.ack_id for m in response.received_messages]})
        got += [m.message for m in response.received_messages]
    return got


def test_a_subscriber_receives_exactly_the_expected_events(topic: tuple[str, str, Any]) -> None:
    """Job, voice and batch events arrive with their attributes; a redelivered event keeps its id."""
    topic_id, sub_path, subscriber = topic
    notifier = PubSubNotifier.create(PROJECT, topic_id)
    events = [terminal_event("job", "users/u1/jobs/j1", JOB), terminal_event("voice", "voices/alice", VOICE),
              terminal_event("batch", "users/u1/batches/b1", BATCH)]
    for data, attributes in [*events, events[0]]:  # the job's event is published twice (a redelivery)
        notifier.publish(data, attributes)
    messages = pull(subscriber, sub_path, 4)
    assert len(messages) == 4
    unique = {m.attributes["event_id"]: m for m in messages}  # what a subscriber does with duplicates
    assert set(unique) == {attrs["event_id"] for _data, attrs in events}
    by_kind = {m.attributes["kind"]: m for m in unique.values()}
    job = by_kind["job"]
    assert dict(job.attributes) == {"kind": "job", "id": "j1", "owner": "u1", "status": "done",
                                    "event_id": events[0][1]["event_id"]}
    body = json.loads(job.data)
    assert body["job_id"] == "j1" and body["generation"] == "17" and body["finished_at"] == NOW.isoformat()
    assert "text" not in body and "lease" not in body
    assert dict(by_kind["voice"].attributes)["owner"] == "" and json.loads(by_kind["voice"].data)["error"] == "Too short."
    assert json.loads(by_kind["batch"].data)["failed"] == 1


def test_an_unreachable_pubsub_is_a_transient_error_within_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens on the port: the publish fails as TransientError (the caller retries), not hangs."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    notifier = PubSubNotifier.create(PROJECT, "job-events")
    data, attributes = terminal_event("job", "jobs/j1", JOB)
    with pytest.raises(TransientError, match="Pub/Sub publish"):
        notifier.publish(data, attributes)

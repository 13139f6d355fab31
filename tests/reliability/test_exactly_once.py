"""Exactly-once effect over at-least-once delivery, on the embedded stores (folder + SQLite)
with the real handler and the dev-model engine. Time is a FakeClock (``Services.clock``).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.dispatch import handle_storage_event
from handlers.outcome import Outcome
from tests.reliability.conftest import FakeClock, local_services, matching, put, request_bytes
from voicecloning import records
from voicecloning.errors import JobBusy, TransientError, VoiceNotReady
from voicecloning.services import Services
from voicecloning.stores.blobs import BlobInfo

ENV = {"VOICECLONING_MAX_ATTEMPTS": "3", "VOICECLONING_LEASE_SECONDS": "60",
       "VOICECLONING_VOICE_POLL_SECONDS": "0.3", "VOICECLONING_VOICE_WAIT_SECONDS": "120"}


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, quick_engine: Any, clock: FakeClock, clip_bytes: bytes) -> Services:
    """Embedded stores with voice 'v' enrolled."""
    svc = local_services(tmp_path_factory.mktemp("exactly-once"), quick_engine, clock, **ENV)
    assert handle_storage_event(put(svc, "voices/v.wav", clip_bytes, "audio/wav"), svc) is Outcome.DONE
    return svc


def _output(svc: Services, job: str) -> BlobInfo | None:
    return svc.outputs.stat(f"outputs/{job}.wav")


def test_a_duplicate_delivered_later_changes_nothing(services: Services, clock: FakeClock) -> None:
    """The same event again, an hour later: acknowledged as a duplicate; the document and output stay as they were."""
    event = put(services, "requests/dup.json", request_bytes(text="Once only.", voice_id="v"))
    assert handle_storage_event(event, services) is Outcome.DONE
    before, output = services.docs.get("jobs/dup"), _output(services, "dup")
    assert before is not None and before["status"] == "done" and before["attempts"] == 1
    assert output is not None
    clock.advance(3600)
    assert handle_storage_event(event, services) is Outcome.DUPLICATE
    assert services.docs.get("jobs/dup") == before
    assert _output(services, "dup") == output  # same generation: not rewritten


def test_concurrent_duplicates_do_the_work_once(services: Services, json_logs: list[dict[str, Any]]) -> None:
    """Two workers handed the same event at the same moment: one claim, one output, one 'job done'."""
    event = put(services, "requests/race.json", request_bytes(text="Only one of us.", voice_id="v"))
    outcomes: list[Any] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        try:
            outcomes.append(handle_storage_event(event, services))
        except JobBusy as exc:  # HTTP 500: the platform redelivers later
            outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for i, outcome in enumerate(outcomes):  # redeliver what was refused
        if isinstance(outcome, JobBusy):
            outcomes[i] = handle_storage_event(event, services)
    assert sorted(o.value for o in outcomes) == ["done", "duplicate"], outcomes
    doc = services.docs.get("jobs/race")
    assert doc is not None and doc["status"] == "done" and doc["attempts"] == 1
    assert len(matching(json_logs, "job done", job_id="race")) == 1
    assert len(matching(json_logs, "claimed", job_id="race")) == 1


def test_a_dead_workers_lease_expires_and_the_job_is_finished(services: Services, clock: FakeClock) -> None:
    """A worker that claimed the job and died blocks it only until its lease expires."""
    event = put(services, "requests/orphan.json", request_bytes(text="Left behind.", voice_id="v"))
    lease = services.settings.reliability.lease_seconds
    records.open_record(services.docs, "jobs/orphan", generation=event.generation, now=clock(), initial={
        "status": "queued", "job_id": "orphan", "owner": None, "progress": 0.0,
        "source": {"bucket": event.bucket, "name": event.name, "generation": str(event.generation)}})
    dead = records.claim(services.docs, "jobs/orphan", generation=event.generation, now=clock(),
                         lease_seconds=lease, max_attempts=3, working_status="processing")
    assert dead.outcome == "claimed"
    clock.advance(lease / 2)
    with pytest.raises(JobBusy):  # still leased: HTTP 500, redelivered later
        handle_storage_event(event, services)
    assert services.docs.get("jobs/orphan")["status"] == "processing"
    clock.advance(lease / 2 + 1)
    assert handle_storage_event(event, services) is Outcome.DONE
    doc = services.docs.get("jobs/orphan")
    assert doc["status"] == "done" and doc["attempts"] == 2 and doc["lease"] is None
    assert _output(services, "orphan") is not None


def test_a_newer_upload_supersedes_and_a_late_older_event_does_nothing(services: Services) -> None:
    """Generation 2 of requests/twice.json wins; generation 1's event arriving afterwards is acknowledged as stale."""
    first = put(services, "requests/twice.json", request_bytes(text="First version.", voice_id="v"))
    second = put(services, "requests/twice.json", request_bytes(text="The second, longer version.", voice_id="v"))
    assert second.generation > first.generation
    assert handle_storage_event(second, services) is Outcome.DONE
    after_second, output = services.docs.get("jobs/twice"), _output(services, "twice")
    assert after_second["source"]["generation"] == str(second.generation)
    assert after_second["characters"] == len("The second, longer version.")
    assert handle_storage_event(first, services) is Outcome.STALE
    assert services.docs.get("jobs/twice") == after_second
    assert _output(services, "twice") == output


def test_a_newer_upload_resets_a_finished_job(services: Services) -> None:
    """Re-uploading a request after it finished runs it again for the new generation."""
    first = put(services, "requests/again.json", request_bytes(text="One.", voice_id="v"))
    assert handle_storage_event(first, services) is Outcome.DONE
    second = put(services, "requests/again.json", request_bytes(text="One and two.", voice_id="v"))
    assert handle_storage_event(second, services) is Outcome.DONE
    doc = services.docs.get("jobs/again")
    assert doc["source"]["generation"] == str(second.generation) and doc["attempts"] == 1
    assert doc["characters"] == len("One and two.")


def test_an_event_older_than_the_limit_is_dropped_with_a_log_line(
    services: Services, clock: FakeClock, json_logs: list[dict[str, Any]]
) -> None:
    """An event older than max_event_age_seconds is acknowledged, logged at ERROR, and touches nothing."""
    limit = services.settings.reliability.max_event_age_seconds
    event = put(services, "requests/ancient.json", request_bytes(text="Too late.", voice_id="v"),
                when=clock() - timedelta(seconds=limit + 60))
    assert handle_storage_event(event, services) is Outcome.TOO_OLD
    assert services.docs.get("jobs/ancient") is None and _output(services, "ancient") is None
    [line] = matching(json_logs, "dropped: event too old")
    assert line["severity"] == "ERROR" and line["outcome"] == "too_old"
    assert line["event_id"] == event.id and line["object"] == "requests/ancient.json"
    assert line["age_s"] >= limit


class _FlakyEngine:
    """The real engine, except that synthesis times out ``failures`` times."""

    def __init__(self, engine: Any, failures: int) -> None:
        self._engine, self.failures = engine, failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def synthesize(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise TimeoutError("synthesis timed out")
        return self._engine.synthesize(*args, **kwargs)


def test_transient_failures_count_attempts_then_succeed(services: Services) -> None:
    """Each failed delivery raises (HTTP 500) and is counted; the next one that works finishes the job."""
    flaky = Services(**{**services.__dict__, "engine": _FlakyEngine(services.engine, failures=2)})
    event = put(flaky, "requests/flaky.json", request_bytes(text="Third time lucky.", voice_id="v"))
    for attempt in (1, 2):
        with pytest.raises(TimeoutError):
            handle_storage_event(event, flaky)
        doc = flaky.docs.get("jobs/flaky")
        assert doc["status"] == "queued" and doc["attempts"] == attempt and doc["lease"] is None
        assert "TimeoutError: synthesis timed out" in doc["last_error"]
        assert _output(flaky, "flaky") is None
    assert handle_storage_event(event, flaky) is Outcome.DONE
    doc = flaky.docs.get("jobs/flaky")
    assert doc["status"] == "done" and doc["attempts"] == 3 and _output(flaky, "flaky") is not None


def test_after_max_attempts_the_job_fails_with_the_last_error(
    services: Services, json_logs: list[dict[str, Any]]
) -> None:
    """max_attempts failed deliveries, then the next is acknowledged: failed, the last error, no output, a log line."""
    broken = Services(**{**services.__dict__, "engine": _FlakyEngine(services.engine, failures=99)})
    event = put(broken, "requests/doomed.json", request_bytes(text="Never works.", voice_id="v"))
    for _ in range(3):
        with pytest.raises(TimeoutError):
            handle_storage_event(event, broken)
    assert handle_storage_event(event, broken) is Outcome.EXHAUSTED
    doc = broken.docs.get("jobs/doomed")
    assert doc["status"] == "failed" and doc["attempts"] == 3
    assert doc["error"] == "gave up after 3 attempts: internal error (TimeoutError: synthesis timed out)"
    assert _output(broken, "doomed") is None
    [line] = matching(json_logs, "job failed", job_id="doomed")
    assert line["severity"] == "ERROR" and line["attempts"] == 3 and "synthesis timed out" in line["reason"]
    assert handle_storage_event(event, broken) is Outcome.DUPLICATE  # later redeliveries: acknowledged


class _FailingWrites:
    """An output store whose writes fail ``failures`` times with Storage trouble."""

    def __init__(self, store: Any, failures: int) -> None:
        self._store, self.failures = store, failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("Cloud Storage unavailable (upload object): connection refused")
        return self._store.write(*args, **kwargs)


def test_a_failed_output_write_leaves_no_trace_and_is_retried(services: Services) -> None:
    """Storage down at the upload: HTTP 500, job back to queued with no output; redelivery finishes it."""
    svc = Services(**{**services.__dict__, "outputs": _FailingWrites(services.outputs, failures=1)})
    event = put(svc, "requests/upload.json", request_bytes(text="Write me.", voice_id="v"))
    with pytest.raises(TransientError):
        handle_storage_event(event, svc)
    doc = svc.docs.get("jobs/upload")
    assert doc["status"] == "queued" and doc["output_uri"] is None and _output(svc, "upload") is None
    assert "Cloud Storage unavailable" in doc["last_error"]
    assert handle_storage_event(event, svc) is Outcome.DONE
    assert svc.docs.get("jobs/upload")["status"] == "done" and _output(svc, "upload") is not None


def test_a_request_waits_for_a_voice_still_enrolling(services: Services, clock: FakeClock) -> None:
    """A voice in 'processing' makes the request transient (retried), and it runs once the voice is ready."""
    ready = services.docs.get("voices/v")
    services.docs.update("voices/slow", {**ready, "voice_id": "slow", "status": "processing"})
    event = put(services, "requests/patient.json", request_bytes(text="I can wait.", voice_id="slow"))
    with pytest.raises(VoiceNotReady, match="'slow' is still being enrolled"):
        handle_storage_event(event, services)
    assert services.docs.get("jobs/patient")["status"] == "queued"
    services.docs.update("voices/slow", {"status": "ready"})
    assert handle_storage_event(event, services) is Outcome.DONE


def test_a_voice_that_never_finishes_enrolling_fails_the_request_in_bounded_time(
    services: Services, clock: FakeClock
) -> None:
    """Past voice_wait_seconds the request stops waiting: failed, with a reason, no output."""
    ready = services.docs.get("voices/v")
    services.docs.update("voices/stuck", {**ready, "voice_id": "stuck", "status": "processing"})
    event = put(services, "requests/impatient.json", request_bytes(text="Too long.", voice_id="stuck"))
    with pytest.raises(VoiceNotReady):
        handle_storage_event(event, services)
    clock.advance(services.settings.reliability.voice_wait_seconds + 1)
    assert handle_storage_event(event, services) is Outcome.FAILED
    doc = services.docs.get("jobs/impatient")
    assert doc["status"] == "failed" and "'stuck' was still being enrolled" in doc["error"]
    assert _output(services, "impatient") is None


def test_a_job_failing_after_its_claim_leaves_no_output(services: Services) -> None:
    """A voice whose stored latents vanished: the job fails with the reason, and no output object exists."""
    ready = services.docs.get("voices/v")
    services.docs.update("voices/hollow", {**ready, "voice_id": "hollow", "latents_object": "voices/gone.latents"})
    event = put(services, "requests/hollow.json", request_bytes(text="Nothing to say.", voice_id="hollow"))
    assert handle_storage_event(event, services) is Outcome.FAILED
    doc = services.docs.get("jobs/hollow")
    assert doc["status"] == "failed" and "stored data of voice 'hollow' is missing" in doc["error"]
    assert doc["attempts"] == 1 and doc["lease"] is None
    assert _output(services, "hollow") is None


def test_a_voice_reenrolled_while_a_request_waits_is_used_at_its_new_generation(
    services: Services, clip_bytes: bytes, tmp_path: Path
) -> None:
    """Uploading a voice's clip again makes a new generation; requests after it use the new latents object."""
    first = services.docs.get("voices/v")
    assert handle_storage_event(put(services, "voices/v.wav", clip_bytes, "audio/wav"), services) is Outcome.DONE
    second = services.docs.get("voices/v")
    assert second["source"]["generation"] != first["source"]["generation"]
    assert second["latents_object"] != first["latents_object"]
    event = put(services, "requests/fresh.json", request_bytes(text="New voice.", voice_id="v"))
    assert handle_storage_event(event, services) is Outcome.DONE


class _FailingReads:
    """An input store whose reads fail with Storage trouble (before any claim is made)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def read(self, *args: Any, **kwargs: Any) -> Any:
        raise TransientError("Cloud Storage unavailable (download object): connection refused")


def test_transient_failures_before_the_claim_also_count_and_give_up(services: Services) -> None:
    """Storage down while the request is read: each delivery is counted; after max_attempts the job fails, acked."""
    svc = Services(**{**services.__dict__, "inputs": _FailingReads(services.inputs)})
    event = put(services, "requests/unreadable.json", request_bytes(text="Can't read me.", voice_id="v"))
    for attempt in (1, 2):
        with pytest.raises(TransientError):
            handle_storage_event(event, svc)
        doc = svc.docs.get("jobs/unreadable")
        assert doc["status"] == "queued" and doc["attempts"] == attempt and "Cloud Storage" in doc["last_error"]
    assert handle_storage_event(event, svc) is Outcome.EXHAUSTED
    doc = svc.docs.get("jobs/unreadable")
    assert doc["status"] == "failed" and doc["error"].startswith("gave up after 3 attempts: Cloud Storage unavailable")


class _SupersedingEngine:
    """Synthesizes, and meanwhile a newer upload of the same request arrives (opens a newer generation)."""

    def __init__(self, engine: Any, on_synthesize: Any) -> None:
        self._engine, self._hook = engine, on_synthesize

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def synthesize(self, *args: Any, **kwargs: Any) -> Any:
        self._hook()
        return self._engine.synthesize(*args, **kwargs)


def test_a_run_superseded_mid_synthesis_writes_no_output(services: Services) -> None:
    """The older generation's run, overtaken while rendering, never writes over the output name."""
    path = "jobs/overtaken"
    event = put(services, "requests/overtaken.json", request_bytes(text="Old words.", voice_id="v"))

    def newer_upload() -> None:
        records.open_record(services.docs, path, generation=event.generation + 1,
                            initial={"status": "queued", "source": {"generation": str(event.generation + 1)}},
                            now=services.clock())

    svc = Services(**{**services.__dict__, "engine": _SupersedingEngine(services.engine, newer_upload)})
    assert handle_storage_event(event, svc) is Outcome.STALE
    assert _output(services, "overtaken") is None
    assert services.docs.get(path)["source"]["generation"] == str(event.generation + 1)


def test_a_long_job_renews_its_lease(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """While segments finish, the worker pushes its lease forward, so no one takes over a live job."""
    from dataclasses import replace

    rel = replace(services.settings.reliability, lease_seconds=0.06)
    svc = Services(**{**services.__dict__, "settings": replace(services.settings, reliability=rel)})
    renewals: list[Any] = []
    real_renew = records.renew

    def spy(*args: Any, **kwargs: Any) -> bool:
        renewals.append(kwargs["now"])
        return real_renew(*args, **kwargs)

    monkeypatch.setattr(records, "renew", spy)
    event = put(svc, "requests/long.json", request_bytes(text="One sentence here. " * 40, voice_id="v"))
    assert handle_storage_event(event, svc) is Outcome.DONE
    assert renewals, "the lease was never renewed"
    assert services.docs.get("jobs/long")["attempts"] == 1  # nobody took it over


def test_log_lines_after_the_claim_name_the_attempt(services: Services, json_logs: list[dict[str, Any]]) -> None:
    """Every line of a delivery after its claim carries event id, object, job id and attempt."""
    flaky = Services(**{**services.__dict__, "engine": _FlakyEngine(services.engine, failures=1)})
    event = put(flaky, "requests/logged.json", request_bytes(text="Say which attempt.", voice_id="v"))
    with pytest.raises(TimeoutError):
        handle_storage_event(event, flaky)
    assert handle_storage_event(event, flaky) is Outcome.DONE
    [retry] = matching(json_logs, "will retry", job_id="logged")
    [done] = matching(json_logs, "job done", job_id="logged")
    assert retry["attempt"] == 1 and done["attempt"] == 2
    assert done["event_id"] == event.id and done["object"] == "requests/logged.json" and done["severity"] == "INFO"

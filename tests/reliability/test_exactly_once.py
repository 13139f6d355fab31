"""Exactly-once effect over at-least-once delivery, on the embedded stores (folder + SQLite)
with the real handler and the dev-model engine. Time is a FakeClock (``Services.clock``).

A job's storage event plans it into parts; with the in-process task queue the part and
assembly tasks run in the same delivery, so ``Outcome.PLANNED`` is followed by a
finished (or failed) job document. A failed task fails the delivery: the redelivered
event queues the parts nobody holds again (``Outcome.DUPLICATE``) and they finish the job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.dispatch import handle_storage_event
from handlers.outcome import Outcome
from handlers.tasks import handle_task
from tests.reliability.conftest import FakeClock, local_services, matching, put, request_bytes
from voicecloning import records
from voicecloning.errors import JobBusy, TransientError, VoiceNotReady
from voicecloning.services import Services
from voicecloning.stores.blobs import BlobInfo
from voicecloning.stores.queue import Task

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


def _part(svc: Services, job: str, index: int = 0) -> dict[str, Any] | None:
    return svc.docs.get(f"jobs/{job}/parts/{index}")


def _with(services: Services, **changes: Any) -> Services:
    return Services(**{**services.__dict__, **changes})


class _HeldTasks:
    """A task queue that keeps what is published, for the test to deliver when it chooses."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []

    def publish(self, tasks: Sequence[Task]) -> None:
        self.tasks.extend(tasks)

    def flush(self, run: Callable[[Task], object]) -> None:
        return None


def test_a_duplicate_delivered_later_changes_nothing(services: Services, clock: FakeClock) -> None:
    """The same event again, an hour later: acknowledged as a duplicate; the document and output stay as they were."""
    event = put(services, "requests/dup.json", request_bytes(text="Once only.", voice_id="v"))
    assert handle_storage_event(event, services) is Outcome.PLANNED
    before, output, part = services.docs.get("jobs/dup"), _output(services, "dup"), _part(services, "dup")
    assert before is not None and before["status"] == "done" and before["parts_total"] == 1
    assert part is not None and part["status"] == "done" and part["attempts"] == 1
    assert output is not None
    clock.advance(3600)
    assert handle_storage_event(event, services) is Outcome.DUPLICATE
    assert services.docs.get("jobs/dup") == before
    assert _part(services, "dup") == part
    assert _output(services, "dup") == output  # same generation: not rewritten


def test_concurrent_duplicates_do_the_work_once(services: Services, json_logs: list[dict[str, Any]]) -> None:
    """Two workers handed the same event at the same moment: one plan, one render, one output, one 'job done'."""
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
    # Which delivery planned it, and whether a planner was itself asked to retry (its part was taken by
    # the other delivery's resume), varies; what happened to the job does not.
    assert {o.value for o in outcomes} <= {"duplicate", "planned"}, outcomes
    doc = services.docs.get("jobs/race")
    assert doc is not None and doc["status"] == "done" and _output(services, "race") is not None
    assert _part(services, "race")["attempts"] == 1
    assert len(matching(json_logs, "job planned", job_id="race")) == 1
    assert len(matching(json_logs, "claimed", path="jobs/race/parts/0")) == 1
    assert len(matching(json_logs, "job done", job="jobs/race")) == 1


class _ReadHook:
    """An input store that runs ``hook`` once, when the request is first read."""

    def __init__(self, store: Any, hook: Callable[[], None]) -> None:
        self._store, self._hook = store, [hook]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def read(self, *args: Any, **kwargs: Any) -> Any:
        if self._hook:
            self._hook.pop()()
        return self._store.read(*args, **kwargs)


def test_a_duplicate_that_opened_the_job_before_it_was_planned_does_not_plan_it_again(
    services: Services, json_logs: list[dict[str, Any]]
) -> None:
    """Delivery B opens the job, then (while B reads the request) delivery A plans it: B must not claim
    and plan the job a second time (the deterministic form of the concurrent duplicates above)."""
    held = _HeldTasks()
    event = put(services, "requests/twice-planned.json", request_bytes(text="Plan me once.", voice_id="v"))
    first: list[Outcome] = []
    svc_b = _with(services, inputs=_ReadHook(services.inputs, lambda: first.append(
        handle_storage_event(event, _with(services, tasks=held)))))
    second = handle_storage_event(event, _with(svc_b, tasks=held))
    assert first == [Outcome.PLANNED]
    assert second is Outcome.DUPLICATE
    assert len(matching(json_logs, "job planned", job_id="twice-planned")) == 1
    assert services.docs.get("jobs/twice-planned")["attempts"] == 1
    assert len(held.tasks) == 1


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
    assert _part(services, "orphan") is None  # nothing was planned under the dead worker's lease
    clock.advance(lease / 2 + 1)
    assert handle_storage_event(event, services) is Outcome.PLANNED
    doc = services.docs.get("jobs/orphan")
    assert doc["status"] == "done" and doc["lease"] is None and doc["planned"] is True
    assert _output(services, "orphan") is not None


def test_a_dead_part_workers_lease_expires_and_the_redelivery_finishes_the_job(
    services: Services, clock: FakeClock
) -> None:
    """A worker that claimed a part and died (tasks run in the event's delivery): the redelivered event
    is refused (HTTP 500, retried) while the part's lease lasts, since acknowledging it would leave no
    delivery to finish the job; once the lease has run out the redelivery renders the part and finishes."""
    held = _HeldTasks()
    event = put(services, "requests/orphan-part.json", request_bytes(text="Part left behind.", voice_id="v"))
    assert handle_storage_event(event, _with(services, tasks=held)) is Outcome.PLANNED
    [task] = held.tasks  # the render task of part 0, lost with its worker after the claim
    lease = services.settings.reliability.lease_seconds
    dead = records.claim(services.docs, "jobs/orphan-part/parts/0", generation=event.generation, now=clock(),
                         lease_seconds=lease, max_attempts=3, working_status="processing")
    assert dead.outcome == "claimed" and task.body["part"] == 0
    with pytest.raises(JobBusy):  # the part is leased: redelivered later, not acknowledged
        handle_storage_event(event, services)
    assert services.docs.get("jobs/orphan-part")["status"] == "processing"
    assert _output(services, "orphan-part") is None
    clock.advance(lease + 1)
    assert handle_storage_event(event, services) is Outcome.DUPLICATE  # queued again, rendered, assembled
    assert services.docs.get("jobs/orphan-part")["status"] == "done"
    part = _part(services, "orphan-part")
    assert part["status"] == "done" and part["attempts"] == 2 and part["lease"] is None
    assert _output(services, "orphan-part") is not None


def test_a_newer_upload_supersedes_and_a_late_older_event_does_nothing(services: Services) -> None:
    """Generation 2 of requests/twice.json wins; generation 1's event arriving afterwards is acknowledged as stale."""
    first = put(services, "requests/twice.json", request_bytes(text="First version.", voice_id="v"))
    second = put(services, "requests/twice.json", request_bytes(text="The second, longer version.", voice_id="v"))
    assert second.generation > first.generation
    assert handle_storage_event(second, services) is Outcome.PLANNED
    after_second, output = services.docs.get("jobs/twice"), _output(services, "twice")
    assert after_second["status"] == "done"
    assert after_second["source"]["generation"] == str(second.generation)
    assert after_second["characters"] == len("The second, longer version.")
    assert handle_storage_event(first, services) is Outcome.STALE
    assert services.docs.get("jobs/twice") == after_second
    assert _output(services, "twice") == output


def test_a_newer_upload_resets_a_finished_job(services: Services) -> None:
    """Re-uploading a request after it finished runs it again for the new generation."""
    first = put(services, "requests/again.json", request_bytes(text="One.", voice_id="v"))
    assert handle_storage_event(first, services) is Outcome.PLANNED
    assert services.docs.get("jobs/again")["status"] == "done"
    first_output = _output(services, "again")
    second = put(services, "requests/again.json", request_bytes(text="One and two.", voice_id="v"))
    assert handle_storage_event(second, services) is Outcome.PLANNED
    doc = services.docs.get("jobs/again")
    assert doc["status"] == "done" and doc["source"]["generation"] == str(second.generation)
    assert doc["characters"] == len("One and two.")
    part = _part(services, "again")
    assert part["source"]["generation"] == str(second.generation) and part["attempts"] == 1
    output = _output(services, "again")
    assert output is not None and output.generation != first_output.generation
    assert output.metadata["job_generation"] == str(second.generation)


def test_an_event_older_than_the_limit_is_dropped_with_a_log_line(
    services: Services, clock: FakeClock, json_logs: list[dict[str, Any]]
) -> None:
    """An event older than max_event_age_seconds is acknowledged, logged at ERROR, recorded as failed with
    the reason, and not processed (no parts, no output)."""
    limit = services.settings.reliability.max_event_age_seconds
    event = put(services, "requests/ancient.json", request_bytes(text="Too late.", voice_id="v"),
                when=clock() - timedelta(seconds=limit + 60))
    assert handle_storage_event(event, services) is Outcome.TOO_OLD
    doc = services.docs.get("jobs/ancient")
    assert doc["status"] == "failed" and "late and was not processed" in doc["error"]
    assert doc["source"]["generation"] == str(event.generation)
    assert _part(services, "ancient") is None and _output(services, "ancient") is None
    [line] = matching(json_logs, "dropped: event too old")
    assert line["severity"] == "ERROR" and line["outcome"] == "too_old"
    assert line["event_id"] == event.id and line["object"] == "requests/ancient.json"
    assert line["age_s"] >= limit


class _FlakyEngine:
    """The real engine, except that rendering a part times out ``failures`` times (transient trouble)."""

    def __init__(self, engine: Any, failures: int) -> None:
        self._engine, self.failures = engine, failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def render(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("synthesis timed out")
        return self._engine.render(*args, **kwargs)


def test_transient_failures_count_attempts_then_succeed(services: Services) -> None:
    """Each failed delivery raises (HTTP 500) and is counted; the next one that works finishes the job."""
    flaky = _with(services, engine=_FlakyEngine(services.engine, failures=2))
    event = put(flaky, "requests/flaky.json", request_bytes(text="Third time lucky.", voice_id="v"))
    for attempt in (1, 2):
        with pytest.raises(TransientError, match="synthesis timed out"):
            handle_storage_event(event, flaky)
        part = _part(flaky, "flaky")
        assert part["status"] == "queued" and part["attempts"] == attempt and part["lease"] is None
        assert part["last_error"] == "synthesis timed out"
        assert flaky.docs.get("jobs/flaky")["status"] == "processing"
        assert _output(flaky, "flaky") is None
    assert handle_storage_event(event, flaky) is Outcome.DUPLICATE  # planned already: its part is queued again
    doc, part = flaky.docs.get("jobs/flaky"), _part(flaky, "flaky")
    assert doc["status"] == "done" and part["attempts"] == 3 and _output(flaky, "flaky") is not None


def test_a_bug_while_rendering_fails_the_job_at_once(services: Services) -> None:
    """An exception that is neither bad input nor transient trouble is a bug: the job fails with the
    reason on the first delivery (acknowledged, not retried), and no output exists."""
    class _Broken(_FlakyEngine):
        def render(self, *args: Any, **kwargs: Any) -> Any:
            raise ZeroDivisionError("division by zero")

    broken = _with(services, engine=_Broken(services.engine, failures=0))
    event = put(broken, "requests/buggy.json", request_bytes(text="A bug.", voice_id="v"))
    assert handle_storage_event(event, broken) is Outcome.PLANNED
    doc = broken.docs.get("jobs/buggy")
    assert doc["status"] == "failed" and doc["error"].startswith("Internal error (ZeroDivisionError: division by zero)")
    assert _part(broken, "buggy")["status"] == "failed" and _part(broken, "buggy")["attempts"] == 1
    assert _output(broken, "buggy") is None
    assert handle_storage_event(event, broken) is Outcome.DUPLICATE


def test_after_max_attempts_the_job_fails_with_the_last_error(
    services: Services, json_logs: list[dict[str, Any]]
) -> None:
    """max_attempts failed deliveries, then the next is acknowledged: failed, the last error, no output, a log line."""
    broken = _with(services, engine=_FlakyEngine(services.engine, failures=99))
    event = put(broken, "requests/doomed.json", request_bytes(text="Never works.", voice_id="v"))
    for _ in range(3):
        with pytest.raises(TransientError):
            handle_storage_event(event, broken)
    assert handle_storage_event(event, broken) is Outcome.DUPLICATE  # acknowledged: its part gave up
    doc, part = broken.docs.get("jobs/doomed"), _part(broken, "doomed")
    assert part["status"] == "failed" and part["attempts"] == 3
    assert part["error"] == "gave up after 3 attempts: synthesis timed out"
    assert doc["status"] == "failed"
    assert doc["error"] == "Part 0 could not be rendered: gave up after 3 attempts: synthesis timed out."
    assert _output(broken, "doomed") is None
    [line] = [x for x in matching(json_logs, "job failed", job="jobs/doomed") if x["severity"] == "ERROR"]
    assert "synthesis timed out" in line["reason"] and line["status"] == "failed"
    [part_line] = [x for x in matching(json_logs, "part failed", job="jobs/doomed") if x["severity"] == "ERROR"]
    assert part_line["attempts"] == 3 and "status" not in part_line  # the failed-jobs metric counts the job once
    assert handle_storage_event(event, broken) is Outcome.DUPLICATE  # later redeliveries: acknowledged


class _FailingWrites:
    """An output store whose first part write and first final-file write fail with Storage trouble."""

    def __init__(self, store: Any) -> None:
        self._store, self.failures = store, {"write": 1, "write_file": 1}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _fail(self, kind: str) -> None:
        if self.failures[kind] > 0:
            self.failures[kind] -= 1
            raise TransientError("Cloud Storage unavailable (upload object): connection refused")

    def write(self, *args: Any, **kwargs: Any) -> Any:
        self._fail("write")
        return self._store.write(*args, **kwargs)

    def write_file(self, *args: Any, **kwargs: Any) -> Any:
        self._fail("write_file")
        return self._store.write_file(*args, **kwargs)


def test_a_failed_output_write_leaves_no_trace_and_is_retried(services: Services) -> None:
    """Storage down at the upload of a part, then of the final file: HTTP 500 each time, the work goes back
    to the queue with no output and the error noted; the redeliveries finish the job."""
    svc = _with(services, outputs=_FailingWrites(services.outputs))
    event = put(svc, "requests/upload.json", request_bytes(text="Write me.", voice_id="v"))
    with pytest.raises(TransientError):  # the part's audio could not be written
        handle_storage_event(event, svc)
    part, doc = _part(svc, "upload"), svc.docs.get("jobs/upload")
    assert part["status"] == "queued" and part["output_object"] is None and "Cloud Storage unavailable" in part["last_error"]
    assert svc.outputs.stat("outputs/upload/parts/0.wav") is None
    assert doc["status"] == "processing" and doc["output_uri"] is None and _output(svc, "upload") is None
    with pytest.raises(TransientError):  # the part is written now; the final file could not be
        handle_storage_event(event, svc)
    doc = svc.docs.get("jobs/upload")
    assert _part(svc, "upload")["status"] == "done"
    assembly = svc.docs.get("jobs/upload/assembly/final")
    assert doc["status"] == "processing" and doc["lease"] is None
    assert assembly["lease"] is None and "Cloud Storage unavailable" in assembly["last_error"]
    assert doc["output_uri"] is None and _output(svc, "upload") is None
    assert handle_storage_event(event, svc) is Outcome.DUPLICATE
    assert svc.docs.get("jobs/upload")["status"] == "done" and _output(svc, "upload") is not None
    assert svc.outputs.stat("outputs/upload/parts/0.wav") is None  # parts are deleted after assembly


def test_a_request_waits_for_a_voice_still_enrolling(services: Services, clock: FakeClock) -> None:
    """A voice in 'processing' makes the request transient (retried), and it runs once the voice is ready."""
    ready = services.docs.get("voices/v")
    services.docs.update("voices/slow", {**ready, "voice_id": "slow", "status": "processing"})
    event = put(services, "requests/patient.json", request_bytes(text="I can wait.", voice_id="slow"))
    with pytest.raises(VoiceNotReady, match="'slow' is still being enrolled"):
        handle_storage_event(event, services)
    assert services.docs.get("jobs/patient")["status"] == "queued"
    assert _part(services, "patient") is None
    services.docs.update("voices/slow", {"status": "ready"})
    assert handle_storage_event(event, services) is Outcome.PLANNED
    assert services.docs.get("jobs/patient")["status"] == "done"


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
    assert handle_storage_event(event, services) is Outcome.PLANNED  # the part finds the latents missing
    doc = services.docs.get("jobs/hollow")
    assert doc["status"] == "failed" and "stored data of voice 'hollow' is missing" in doc["error"]
    assert doc["attempts"] == 1 and doc["lease"] is None
    part = _part(services, "hollow")
    assert part["status"] == "failed" and part["attempts"] == 1
    assert _output(services, "hollow") is None and services.outputs.stat("outputs/hollow/parts/0.wav") is None
    assert handle_storage_event(event, services) is Outcome.DUPLICATE


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
    assert handle_storage_event(event, services) is Outcome.PLANNED
    doc = services.docs.get("jobs/fresh")
    assert doc["status"] == "done" and doc["voices"] == {"v": second["latents_object"]}


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
    svc = _with(services, inputs=_FailingReads(services.inputs))
    event = put(services, "requests/unreadable.json", request_bytes(text="Can't read me.", voice_id="v"))
    for attempt in (1, 2):
        with pytest.raises(TransientError):
            handle_storage_event(event, svc)
        doc = svc.docs.get("jobs/unreadable")
        assert doc["status"] == "queued" and doc["attempts"] == attempt and "Cloud Storage" in doc["last_error"]
    assert handle_storage_event(event, svc) is Outcome.EXHAUSTED
    doc = svc.docs.get("jobs/unreadable")
    assert doc["status"] == "failed" and doc["error"].startswith("gave up after 3 attempts: Cloud Storage unavailable")
    assert _part(svc, "unreadable") is None


def test_transient_failures_before_the_claim_then_a_working_delivery_finishes_the_job(services: Services) -> None:
    """Storage down while the request is read, max_attempts - 1 times: the delivery after that claims the
    job with the last attempt it has, and the job is done (planning, rendering and assembly all succeed)."""
    class _FlakyReads(_FailingReads):
        failures = 2

        def read(self, *args: Any, **kwargs: Any) -> Any:
            if self.failures > 0:
                self.failures -= 1
                return super().read(*args, **kwargs)
            return self._store.read(*args, **kwargs)

    svc = _with(services, inputs=_FlakyReads(services.inputs))
    event = put(services, "requests/late-read.json", request_bytes(text="Read me at last.", voice_id="v"))
    for _ in range(2):
        with pytest.raises(TransientError):
            handle_storage_event(event, svc)
    assert handle_storage_event(event, svc) is Outcome.PLANNED
    doc = svc.docs.get("jobs/late-read")
    assert doc["status"] == "done", f"the job did not finish: {doc['status']}: {doc.get('error')}"
    assert _output(svc, "late-read") is not None


class _SupersedingEngine:
    """Splits text into one segment per sentence; when rendering starts, a newer upload of the same
    request arrives (and is planned), and then the first segment is reported finished."""

    def __init__(self, engine: Any, on_render: Callable[[], None]) -> None:
        self._engine, self._hook, self.rendered = engine, on_render, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def char_limit(self, language: str) -> int:
        return 12

    def render(self, latents: Any, segments: Sequence[str], language: str, options: Any,
               on_segment: Callable[[int, int], None]) -> Any:
        self._hook()
        on_segment(1, len(segments))  # raises Overtaken: the part is no longer ours
        self.rendered += 1
        return self._engine.render(latents, segments, language, options, on_segment)


def _superseding(services: Services, held: _HeldTasks, newer_upload: Callable[[], None]) -> tuple[Services, Any]:
    engine = _SupersedingEngine(services.engine, newer_upload)
    fast = replace(services.settings.reliability, progress_interval_seconds=0.0)  # report after every segment
    return _with(services, engine=engine, tasks=held, settings=replace(services.settings, reliability=fast)), engine


def test_a_run_superseded_mid_synthesis_writes_no_output(services: Services) -> None:
    """A newer upload of the request arrives while the older generation's part renders (its job document
    is opened for the newer generation): the older run stops at its next report and writes nothing."""
    held = _HeldTasks()
    path = "jobs/overtaken"
    event = put(services, "requests/overtaken.json", request_bytes(text="Old words. Said slowly. Said again.",
                                                                   voice_id="v"))
    newer: list[Any] = []

    def newer_upload() -> None:
        newer.append(put(services, "requests/overtaken.json", request_bytes(text="New words.", voice_id="v")))
        records.open_record(services.docs, path, generation=newer[0].generation, now=services.clock(),
                            initial={"status": "queued", "source": {"generation": str(newer[0].generation)}})

    svc, engine = _superseding(services, held, newer_upload)
    assert handle_storage_event(event, svc) is Outcome.PLANNED
    [old_task] = held.tasks
    assert handle_task(old_task, svc) is Outcome.STALE
    assert engine.rendered == 0  # stopped at the first report, before rendering on
    assert services.outputs.stat("outputs/overtaken/parts/0.wav") is None and _output(services, "overtaken") is None
    assert services.docs.get(path)["source"]["generation"] == str(newer[0].generation)


def test_a_run_superseded_by_a_planned_newer_upload_stops_and_the_newer_one_finishes(services: Services) -> None:
    """The newer upload is planned while the older part renders: the older run stops and writes nothing;
    the newer generation's part and assembly finish the job with the newer output."""
    held = _HeldTasks()
    event = put(services, "requests/replanned.json", request_bytes(text="Old words. Said slowly. Said again.",
                                                                   voice_id="v"))
    newer: list[Any] = []

    def newer_upload() -> None:
        newer.append(put(services, "requests/replanned.json", request_bytes(text="New words.", voice_id="v")))
        assert handle_storage_event(newer[0], _with(services, tasks=held)) is Outcome.PLANNED

    svc, engine = _superseding(services, held, newer_upload)
    assert handle_storage_event(event, svc) is Outcome.PLANNED
    [old_task] = held.tasks
    held.tasks.clear()
    assert len(services.docs.get("jobs/replanned/parts/0")["segments"]) == 3
    assert handle_task(old_task, svc) is Outcome.STALE
    assert engine.rendered == 0  # stopped at the first report, before rendering on
    assert services.outputs.stat("outputs/replanned/parts/0.wav") is None and _output(services, "replanned") is None
    job, part = services.docs.get("jobs/replanned"), _part(services, "replanned")
    assert job["source"]["generation"] == str(newer[0].generation) and job["status"] == "processing"
    assert part["source"]["generation"] == str(newer[0].generation) and part["status"] == "queued"
    assert [t.kind for t in held.tasks] == ["render"]
    for task in held.tasks:  # the newer upload's part (it queues the assembly: run inline)
        assert handle_task(task, services) is Outcome.DONE
    assert services.docs.get("jobs/replanned")["status"] == "done"
    assert _output(services, "replanned").metadata["job_generation"] == str(newer[0].generation)


class _TimedEngine:
    """One segment per sentence; time passes (the FakeClock) while each segment is spoken, and the
    lease of the part being rendered is read after each report."""

    def __init__(self, engine: Any, clock: FakeClock, step_s: float, lease_of: Callable[[], Any]) -> None:
        self._engine, self.clock, self.step_s, self.lease_of = engine, clock, step_s, lease_of
        self.leases: list[tuple[Any, Any]] = []  # (clock time, lease expiry) after each report

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def char_limit(self, language: str) -> int:
        return 20

    def render(self, latents: Any, segments: Sequence[str], language: str, options: Any,
               on_segment: Callable[[int, int], None]) -> Any:
        def timed(done: int, count: int) -> None:
            self.clock.advance(self.step_s)
            on_segment(done, count)
            self.leases.append((self.clock(), self.lease_of()["expires_at"]))

        return self._engine.render(latents, segments, language, options, timed)


def test_a_long_job_renews_its_lease(services: Services, clock: FakeClock) -> None:
    """While segments finish, the worker pushes its part's lease forward, so no one takes over a live part."""
    lease = services.settings.reliability.lease_seconds
    path = "jobs/long/parts/0"
    engine = _TimedEngine(services.engine, clock, lease / 2, lambda: services.docs.get(path)["lease"])
    rel = replace(services.settings.reliability, progress_interval_seconds=0.0)
    one_part = replace(services.settings.parts, first_part_audio_seconds=600.0)
    svc = _with(services, engine=engine, settings=replace(services.settings, reliability=rel, parts=one_part))
    claimed_at = clock()
    event = put(svc, "requests/long.json", request_bytes(text="One sentence here. " * 6, voice_id="v"))
    assert handle_storage_event(event, svc) is Outcome.PLANNED
    assert services.docs.get("jobs/long")["parts_total"] == 1
    original_expiry = claimed_at + timedelta(seconds=lease)
    assert len(engine.leases) == 6
    renewed = engine.leases[:-1]  # the last segment's report is not a renewal (the write's check is)
    assert all(expires == at + timedelta(seconds=lease) for at, expires in renewed)
    assert max(at for at, _ in renewed) > original_expiry  # rendering went on past the first lease...
    assert all(expires > at for at, expires in renewed)  # ...and the lease never ran out meanwhile
    part = services.docs.get(path)
    assert part["status"] == "done" and part["attempts"] == 1  # nobody took it over
    assert services.docs.get("jobs/long")["status"] == "done"


def test_log_lines_after_the_claim_name_the_attempt(services: Services, json_logs: list[dict[str, Any]]) -> None:
    """Every line of a delivery after its claim carries event id, object, job id and attempt."""
    flaky = _with(services, engine=_FlakyEngine(services.engine, failures=1))
    event = put(flaky, "requests/logged.json", request_bytes(text="Say which attempt.", voice_id="v"))
    with pytest.raises(TransientError):
        handle_storage_event(event, flaky)
    assert handle_storage_event(event, flaky) is Outcome.DUPLICATE
    [retry] = matching(json_logs, "will retry", job="jobs/logged")
    [part_done] = matching(json_logs, "part done", job="jobs/logged")
    [done] = matching(json_logs, "job done", job="jobs/logged")
    assert retry["attempt"] == 1 and part_done["attempt"] == 2
    assert done["severity"] == "INFO" and isinstance(done["attempt"], int)
    for line in (retry, part_done, done):
        assert line["event_id"] == event.id and line["object"] == "requests/logged.json"
        assert line.get("job_id") == "logged", f"{line['message']!r} does not name the job id: {line}"

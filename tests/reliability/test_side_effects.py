"""Exactly-once for the side effects: outputs fenced by generation, overtaken runs stop, failed
progress writes are best effort, every failure reaches its document. The real handlers on the
embedded stores (folder + SQLite, which enforce generation preconditions) and the dev engine."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.dispatch import handle_storage_event
from handlers.outcome import Outcome
from handlers.tasks import handle_task
from tests.reliability.conftest import FakeClock, local_services, put, request_bytes
from voicecloning.errors import ConfigurationError, TransientError
from voicecloning.services import Services
from voicecloning.stores.fenced import delete_owned, write_owned
from voicecloning.stores.folder import LocalBlobStore
from voicecloning.stores.queue import EmbeddedTaskQueue

ENV = {"VOICECLONING_MAX_ATTEMPTS": "3", "VOICECLONING_LEASE_SECONDS": "60",
       "VOICECLONING_PROGRESS_INTERVAL_SECONDS": "0.000001", "VOICECLONING_KEEP_PARTS": "true",
       "VOICECLONING_FIRST_PART_AUDIO_SECONDS": "120"}  # one part of three segments
LONG = "word " * 30
TEXT = f"First sentence has many words {LONG}here. Second sentence follows {LONG}it. Third one {LONG}closes."


@pytest.fixture
def svc(tmp_path: Path, quick_engine: Any, clip_bytes: bytes) -> Services:
    services = local_services(tmp_path, quick_engine, FakeClock(), **ENV)
    assert handle_storage_event(put(services, "voices/v.wav", clip_bytes, "audio/wav"), services) is Outcome.DONE
    return services


def _with(services: Services, **changes: Any) -> Services:
    return Services(**{**services.__dict__, **changes})


class _Engine:
    """The real engine; ``on_render(segment_index)`` runs after each rendered segment."""

    def __init__(self, inner: Any, on_segment: Any = None, fail: BaseException | None = None) -> None:
        self.inner, self.on_segment, self.fail, self.segments = inner, on_segment, fail, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def render(self, latents: Any, segments: Any, language: str, options: Any, on_segment: Any = None) -> Any:
        if self.fail is not None:
            raise self.fail

        def each(done: int, total: int) -> None:
            self.segments += 1
            if self.on_segment is not None:
                self.on_segment(self.segments)
            if on_segment is not None:
                on_segment(done, total)

        return self.inner.render(latents, segments, language, options, each)


def test_an_older_write_paused_between_its_check_and_its_write_cannot_replace_a_newer_output(tmp_path: Path) -> None:
    """Generation 1 checks, pauses; generation 2 writes; generation 1's write fails its precondition,
    looks again, finds the newer owner and stops. A delete by generation 1 leaves generation 2's object."""
    store = LocalBlobStore(tmp_path / "out")
    release = threading.Event()
    checked = threading.Event()
    result: list[Any] = []

    def pause() -> None:
        if not checked.is_set():
            checked.set()
            release.wait(10)

    older = threading.Thread(target=lambda: result.append(
        write_owned(store, "outputs/j.wav", 1, "audio/wav", {}, data=b"old", before_write=pause)))
    older.start()
    assert checked.wait(10)
    assert write_owned(store, "outputs/j.wav", 2, "audio/wav", {}, data=b"new") is not None
    release.set()
    older.join(10)
    assert result == [None]
    assert store.read("outputs/j.wav") == b"new"
    assert not delete_owned(store, "outputs/j.wav", 1)
    assert store.read("outputs/j.wav") == b"new"
    assert delete_owned(store, "outputs/j.wav", 2) and store.stat("outputs/j.wav") is None


def test_a_run_superseded_while_it_renders_stops_and_writes_nothing(svc: Services) -> None:
    """A newer upload arrives while part 0 renders: the old run stops at its next segment (Outcome.STALE
    for its task), renders nothing more, and the job ends done with the newer generation's output only."""
    tasks = EmbeddedTaskQueue(Path(str(svc.settings.data_dir)) / "t.sqlite3")
    base = _with(svc, tasks=tasks)
    event = put(base, "requests/sup.json", request_bytes(text=TEXT, voice_id="v"))
    assert handle_storage_event(event, base) is Outcome.PLANNED
    newer: list[Any] = []

    def supersede(count: int) -> None:
        if count == 1:  # after the first segment of the old run
            newer.append(put(svc, "requests/sup.json", request_bytes(text="The newer text.", voice_id="v")))
            assert handle_storage_event(newer[0], svc) is Outcome.PLANNED  # inline: done at once

    engine = _Engine(svc.engine, supersede)
    delivery = tasks.lease(60)
    assert delivery is not None and delivery.task.kind == "render"
    assert handle_task(delivery.task, _with(base, engine=engine)) is Outcome.STALE
    assert engine.segments == 1, "the overtaken run rendered on"
    job = svc.docs.get("jobs/sup")
    assert job is not None and job["status"] == "done" and job["source"]["generation"] == str(newer[0].generation)
    info = svc.outputs.stat(job["output_object"])
    assert info is not None and info.metadata["job_generation"] == str(newer[0].generation)
    for key, part in svc.docs.children("jobs/sup/parts"):
        assert part["source"]["generation"] == str(newer[0].generation), key


def test_a_run_whose_lease_was_taken_over_stops_at_its_next_segment(svc: Services) -> None:
    """Another worker took the part after its lease expired: the first run's next progress report finds
    the lease gone and it stops; the part is finished once, by the run that holds it."""
    tasks = EmbeddedTaskQueue(Path(str(svc.settings.data_dir)) / "t.sqlite3")
    base = _with(svc, tasks=tasks)
    assert handle_storage_event(put(base, "requests/over.json", request_bytes(text=TEXT, voice_id="v")), base) \
        is Outcome.PLANNED

    def take_over(count: int) -> None:
        if count == 1:
            svc.docs.update("jobs/over/parts/0", {"lease": {"token": "someone-else",
                                                            "expires_at": svc.clock() + timedelta(seconds=60)}})

    engine = _Engine(svc.engine, take_over)
    delivery = tasks.lease(60)
    assert delivery is not None
    assert handle_task(delivery.task, _with(base, engine=engine)) is Outcome.STALE
    assert engine.segments == 1
    part = svc.docs.get("jobs/over/parts/0")
    assert part is not None and part["status"] == "processing" and part["output_object"] is None
    assert svc.outputs.stat("outputs/over/parts/0.wav") is None


def test_a_lease_is_renewed_while_the_clock_moves_during_rendering(svc: Services) -> None:
    """The part's lease expiry moves forward with the clock as segments finish (one guarded write each)."""
    clock: FakeClock = svc.clock  # type: ignore[assignment]
    expiries: list[Any] = []

    def tick(_count: int) -> None:
        clock.advance(30)
        part = svc.docs.get("jobs/renew/parts/0") or {}
        expiries.append((part.get("lease") or {}).get("expires_at"))

    engine = _Engine(svc.engine, tick)
    assert handle_storage_event(put(svc, "requests/renew.json", request_bytes(text=TEXT, voice_id="v")),
                                _with(svc, engine=engine)) is Outcome.PLANNED
    assert svc.docs.get("jobs/renew")["status"] == "done"  # type: ignore[index]
    assert engine.segments >= 2
    seen = [e for e in expiries if e is not None]
    assert len(seen) >= 2 and seen[-1] > seen[0], expiries


class _FlakyDocs:
    """The document store, failing the first ``n`` transactions whose mutation matches ``when``."""

    def __init__(self, inner: Any, when: Any, n: int = 1) -> None:
        self.inner, self.when, self.left = inner, when, n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transact(self, path: str, fn: Any) -> Any:
        def probe(doc: Any) -> Any:
            new, result = fn(doc)
            if self.left and self.when(path, doc, new):
                self.left -= 1
                raise TransientError("Firestore unavailable (commit): injected")
            return new, result

        return self.inner.transact(path, probe)


def test_a_failed_progress_write_does_not_abort_a_healthy_part(svc: Services) -> None:
    """A progress report that cannot be written is best effort: the part and the job still finish, once."""
    docs = _FlakyDocs(svc.docs, lambda path, _d, new: "/parts/" in path and new and new.get("progress", 0) < 1.0
                      and new.get("status") == "processing" and "progress" in new and new["progress"] > 0)
    assert handle_storage_event(put(svc, "requests/prog.json", request_bytes(text=TEXT, voice_id="v")),
                                _with(svc, docs=docs)) is Outcome.PLANNED
    job = svc.docs.get("jobs/prog")
    assert job is not None and job["status"] == "done" and docs.left == 0


def test_a_done_that_could_not_be_recorded_is_finished_on_redelivery_without_rendering_again(svc: Services) -> None:
    """The part's audio was written but recording `done` failed: the redelivery finds this generation's
    audio and finishes the part without rendering it again."""
    docs = _FlakyDocs(svc.docs, lambda path, _d, new: path.endswith("/parts/0") and new and new.get("status") == "done")
    engine = _Engine(svc.engine)
    flaky = _with(svc, docs=docs, engine=engine)
    event = put(svc, "requests/redo.json", request_bytes(text="Only one sentence here.", voice_id="v"))
    with pytest.raises(TransientError):
        handle_storage_event(event, flaky)
    rendered = engine.segments
    part = svc.docs.get("jobs/redo/parts/0")
    assert part is not None and part["lease"] is None and part["status"] == "queued"  # released, not held
    assert handle_storage_event(event, flaky) is Outcome.DUPLICATE  # planned: re-queues the idle part
    assert engine.segments == rendered, "the part was rendered again"
    assert svc.docs.get("jobs/redo")["status"] == "done"  # type: ignore[index]


def test_a_bug_after_the_claim_fails_the_job_once_with_its_reason(svc: Services) -> None:
    """An unexpected exception is not retried five times: the job fails at once, saying so."""
    engine = _Engine(svc.engine, fail=RuntimeError("boom"))
    event = put(svc, "requests/bug.json", request_bytes(text=TEXT, voice_id="v"))
    assert handle_storage_event(event, _with(svc, engine=engine)) is Outcome.PLANNED
    job = svc.docs.get("jobs/bug")
    assert job is not None and job["status"] == "failed" and "internal error (runtimeerror: boom" in job["error"].lower()
    assert handle_storage_event(event, svc) is Outcome.DUPLICATE


def test_a_configuration_error_before_the_claim_is_counted_and_then_fails_the_job(svc: Services) -> None:
    """A misconfigured worker is retried (the operator may fix it), counted, and given up on with the reason."""

    class Broken(_Engine):
        def check_language(self, language: str) -> str:
            raise ConfigurationError("no model configured")

    broken = _with(svc, engine=Broken(svc.engine))
    event = put(svc, "requests/conf.json", request_bytes(text=TEXT, voice_id="v"))
    for attempt in (1, 2):
        with pytest.raises(ConfigurationError):
            handle_storage_event(event, broken)
        assert svc.docs.get("jobs/conf")["attempts"] == attempt  # type: ignore[index]
    assert handle_storage_event(event, broken) is Outcome.EXHAUSTED
    job = svc.docs.get("jobs/conf")
    assert job is not None and job["status"] == "failed" and "no model configured" in job["error"]


def test_an_event_too_old_to_run_marks_its_job_failed_with_why(svc: Services) -> None:
    """A day-old delivery is not processed, and the job says so instead of staying queued forever."""
    event = put(svc, "requests/old.json", request_bytes(text=TEXT, voice_id="v"))
    late = replace(event, time=event.time - timedelta(days=2))
    assert handle_storage_event(late, svc) is Outcome.TOO_OLD
    job = svc.docs.get("jobs/old")
    assert job is not None and job["status"] == "failed" and "late" in job["error"] and "upload it again" in job["error"]


def test_a_job_planned_before_its_voice_was_re_enrolled_still_renders(svc: Services, clip_bytes: bytes) -> None:
    """The latents pinned at planning survive one re-enrollment; the job finishes with them."""
    tasks = EmbeddedTaskQueue(Path(str(svc.settings.data_dir)) / "t.sqlite3")
    base = _with(svc, tasks=tasks)
    assert handle_storage_event(put(base, "requests/pin.json", request_bytes(text=TEXT, voice_id="v")), base) \
        is Outcome.PLANNED
    pinned = svc.docs.get("jobs/pin")["voices"]["v"]  # type: ignore[index]
    assert handle_storage_event(put(svc, "voices/v.wav", clip_bytes, "audio/wav"), svc) is Outcome.DONE
    assert svc.docs.get("voices/v")["latents_object"] != pinned  # type: ignore[index]
    while (delivery := tasks.lease(60)) is not None:
        handle_task(delivery.task, base)
        tasks.ack(delivery.id)
    job = svc.docs.get("jobs/pin")
    assert job is not None and job["status"] == "done", job.get("error")


def test_a_cold_instance_loads_its_model_before_it_claims_a_part(svc: Services) -> None:
    """While the model loads (seconds on a cold instance) the part is still queued and unleased."""
    tasks = EmbeddedTaskQueue(Path(str(svc.settings.data_dir)) / "t.sqlite3")
    base = _with(svc, tasks=tasks)
    assert handle_storage_event(put(base, "requests/cold.json", request_bytes(text=TEXT, voice_id="v")), base) \
        is Outcome.PLANNED
    seen: list[Any] = []
    engine = _Engine(svc.engine)
    engine.model = lambda: seen.append(svc.docs.get("jobs/cold/parts/0")) or svc.engine.model()  # type: ignore
    delivery = tasks.lease(60)
    assert delivery is not None and handle_task(delivery.task, _with(base, engine=engine)) is Outcome.DONE
    assert seen and seen[0]["status"] == "queued" and seen[0]["lease"] is None and seen[0]["attempts"] == 0

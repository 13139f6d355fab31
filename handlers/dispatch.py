"""Route one storage event to the handler for its object, after the checks every event gets."""

from __future__ import annotations

import logging

from handlers.batch import handle_batch
from handlers.enroll import enroll_voice
from handlers.outcome import Outcome, record_too_old
from handlers.synthesize import synthesize_job
from handlers.tasks import handle_task
from handlers.terminal import after_delivery
from voicecloning.events import FINALIZED, StorageEvent
from voicecloning.logs import fields, log_context
from voicecloning.routes import Route, route
from voicecloning.selfreport import report_once
from voicecloning.services import Services

log = logging.getLogger(__name__)
ID_FIELDS = {"request": "job_id", "voice": "voice_id", "batch": "batch_id"}
FOLLOW_UP_KINDS = {"request": "job", "voice": "voice", "batch": "batch"}


def handle_storage_event(event: StorageEvent, services: Services) -> Outcome:
    """Handle one delivery of an "object finalized" event.

    Returns normally (acknowledge) for finished work, bad input and anything
    ignored; raises for transient trouble so the platform redelivers.
    """
    settings = services.settings
    with log_context(event_id=event.id, bucket=event.bucket, object=event.name, generation=event.generation):
        if event.type != FINALIZED:
            log.info("ignored: not an object-finalized event", extra=fields(outcome="ignored", type=event.type))
            return Outcome.IGNORED
        if settings.input_bucket and event.bucket != settings.input_bucket:
            log.warning("ignored: event from a bucket this service does not watch", extra=fields(outcome="ignored"))
            return Outcome.IGNORED
        target = route(event.name)
        if target is None or target.kind == "consent":
            # Consent sidecars are read when their voice's clip is enrolled.
            log.info("ignored: not a voice clip or request", extra=fields(outcome="ignored"))
            return Outcome.IGNORED
        now = services.clock()
        age = (now - event.time).total_seconds()
        if age > settings.reliability.max_event_age_seconds:
            log.error("dropped: event too old", extra=fields(outcome="too_old", age_s=round(age)))
            record_too_old(services.docs, target, event, age, now)
            _follow_up(services, target, event)
            return Outcome.TOO_OLD
        ids = {ID_FIELDS[target.kind]: target.id, "owner": target.owner}
        with log_context(**ids):
            if target.kind == "voice":
                outcome = enroll_voice(event, target, inputs=services.inputs, outputs=services.outputs,
                                       docs=services.docs, engine=services.engine, settings=settings,
                                       clock=services.clock)
            elif target.kind == "batch":
                outcome = handle_batch(event, target, inputs=services.inputs, docs=services.docs,
                                       tasks=services.tasks, settings=settings, clock=services.clock)
            else:
                outcome = synthesize_job(event, target, inputs=services.inputs, docs=services.docs,
                                         tasks=services.tasks, engine=services.engine, settings=settings,
                                         clock=services.clock)
            log.info("handled", extra=fields(outcome=outcome.value))
            if outcome not in (Outcome.STALE, Outcome.IGNORED):
                _follow_up(services, target, event)
        services.tasks.flush(lambda task: handle_task(task, services))
        report_once(services.docs, services.engine, services.worker, services.clock())
        return outcome


def _follow_up(services: Services, target: Route, event: StorageEvent) -> None:
    """Its job, voice or batch has ended (now or before)? Publish, call back, count (handlers/terminal.py)."""
    after_delivery(services, FOLLOW_UP_KINDS[target.kind], target.doc_path, event.generation)

"""Route one task delivery (a part to render, a job to assemble) to its handler."""

from __future__ import annotations

import logging

from handlers.assemble import assemble_job
from handlers.outcome import Outcome
from handlers.render_part import render_part
from voicecloning.logs import fields, log_context
from voicecloning.services import Services
from voicecloning.stores.queue import Task

log = logging.getLogger(__name__)
HANDLERS = {"render": render_part, "assemble": assemble_job}


def handle_task(task: Task, services: Services) -> Outcome:
    """Handle one delivery of ``task``: return to acknowledge, raise (transient trouble) to be redelivered."""
    handler = HANDLERS.get(task.kind)
    with log_context(task=task.kind, job=task.body.get("job"), part=task.body.get("part")):
        if handler is None:
            log.error("ignored: unknown task kind", extra=fields(outcome="ignored"))
            return Outcome.IGNORED
        outcome = handler(task, outputs=services.outputs, docs=services.docs, tasks=services.tasks,
                          engine=services.engine, settings=services.settings, clock=services.clock,
                          worker=services.worker)
        log.info("task handled", extra=fields(outcome=outcome.value))
    services.tasks.flush(lambda t: handle_task(t, services))
    return outcome

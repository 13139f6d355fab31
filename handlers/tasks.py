"""Route one task delivery (a part to render, a job to assemble, a batch line to plan, ...) to its handler.

After a task about a job (render, assemble, plan), ``handlers/terminal.py`` follows up
if the job has ended (its event, callback, usage, batch, retention).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from handlers.assemble import assemble_job
from handlers.batch import plan_line
from handlers.callback import send_callback
from handlers.outcome import Outcome
from handlers.render_part import render_part
from handlers.terminal import after_delivery, refresh_usage
from voicecloning.logs import fields, log_context
from voicecloning.selfreport import report_once
from voicecloning.services import Services
from voicecloning.stores.queue import Task

log = logging.getLogger(__name__)
JOB_TASKS = ("render", "assemble", "plan")  # tasks that can end a job
CALLBACK_OUTCOMES = {"delivered": Outcome.DONE, "failed": Outcome.FAILED, "skipped": Outcome.DUPLICATE}


def _job_task(handler: Callable[..., Outcome]) -> Callable[[Task, Services], Outcome]:
    def run(task: Task, s: Services) -> Outcome:
        return handler(task, outputs=s.outputs, docs=s.docs, tasks=s.tasks, engine=s.engine, settings=s.settings,
                       clock=s.clock, worker=s.worker)

    return run


def _plan(task: Task, s: Services) -> Outcome:
    return plan_line(task, inputs=s.inputs, docs=s.docs, tasks=s.tasks, engine=s.engine, settings=s.settings,
                     clock=s.clock)


def _callback(task: Task, s: Services) -> Outcome:
    """One webhook attempt; ``CallbackRetry`` (a TransientError) is raised to be redelivered with backoff."""
    status = send_callback(task.body["job"], task.body["generation"], docs=s.docs, settings=s.settings,
                           clock=s.clock)
    return CALLBACK_OUTCOMES[status]


def _usage(task: Task, s: Services) -> Outcome:
    refreshed = refresh_usage(s.docs, task.body.get("owner"), str(task.body["day"]), s.clock)
    return Outcome.DONE if refreshed else Outcome.DUPLICATE


HANDLERS: dict[str, Callable[[Task, Services], Outcome]] = {
    "render": _job_task(render_part), "assemble": _job_task(assemble_job), "plan": _plan,
    "callback": _callback, "usage": _usage,
}


def handle_task(task: Task, services: Services) -> Outcome:
    """Handle one delivery of ``task``: return to acknowledge, raise (transient trouble) to be redelivered."""
    handler = HANDLERS.get(task.kind)
    with log_context(task=task.kind, job=task.body.get("job"), part=task.body.get("part"), **_ids(task)):
        if handler is None:
            log.error("ignored: unknown task kind", extra=fields(outcome="ignored"))
            return Outcome.IGNORED
        outcome = handler(task, services)
        log.info("task handled", extra=fields(outcome=outcome.value))
        if task.kind in JOB_TASKS and outcome not in (Outcome.STALE, Outcome.IGNORED):
            after_delivery(services, "job", task.body["job"], int(task.body["generation"]))
    services.tasks.flush(lambda t: handle_task(t, services))
    report_once(services.docs, services.engine, services.worker, services.clock())
    return outcome


def _ids(task: Task) -> dict[str, object]:
    """``job_id`` and ``owner`` from the task's job path, so every line of a job can be found by its id."""
    path = str(task.body.get("job") or "")
    parts = path.split("/")
    if len(parts) == 4 and parts[0] == "users" and parts[2] == "jobs":
        return {"job_id": parts[3], "owner": parts[1]}
    if len(parts) == 2 and parts[0] == "jobs":
        return {"job_id": parts[1], "owner": None}
    return {}

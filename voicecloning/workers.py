"""``serve --workers N``: the embedded default with N worker processes.

The supervisor (this process) watches ``DATA/input`` like the cloud's notifications do and
puts each new object's event on the embedded task queue; N worker processes take tasks
from that queue (storage events, parts to render, jobs to assemble) and run the same
handlers as the cloud. Delivery is at least once: a task a worker holds stays invisible
while the worker renews it; if the worker dies, the task becomes visible again after
``VISIBILITY_SECONDS`` and another worker takes it (its claims decide what is left to do).
A handler that raises is retried with exponential backoff. The supervisor restarts a
worker that dies.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from voicecloning.engine.threads import available_cpus
from voicecloning.events import StorageEvent
from voicecloning.logs import fields
from voicecloning.stores.queue import EmbeddedTaskQueue, Task

log = logging.getLogger(__name__)
VISIBILITY_SECONDS = 30.0  # a dead worker's task is delivered again after this
RENEW_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 60.0
DEFAULT_THREADS_PER_WORKER = 2  # where int8 decoding stops gaining from more threads (docs/PERFORMANCE.md)


def default_workers(threads_per_worker: int | None) -> int:
    """As many workers as the CPUs hold at ``threads_per_worker`` threads each."""
    return max(1, available_cpus() // max(1, threads_per_worker or DEFAULT_THREADS_PER_WORKER))


def storage_task(event: StorageEvent) -> Task:
    return Task("storage", {"id": event.id, "type": event.type, "time": event.time.isoformat(), "data": event.to_data()})


def event_of(task: Task) -> StorageEvent:
    return StorageEvent.from_cloudevent({"id": task.body["id"], "type": task.body["type"], "time": task.body["time"]},
                                        task.body["data"])


def work(services: Any, queue: EmbeddedTaskQueue, stop: threading.Event, idle_wait: float = 0.2) -> None:
    """One worker: take a task, handle it, acknowledge it or schedule its retry; until ``stop``."""
    from handlers.dispatch import handle_storage_event
    from handlers.tasks import handle_task

    while not stop.is_set():
        delivery = queue.lease(VISIBILITY_SECONDS)
        if delivery is None:
            stop.wait(idle_wait)
            continue
        holding = threading.Event()
        keeper = threading.Thread(target=_keep_invisible, args=(queue, delivery.id, holding), daemon=True)
        keeper.start()
        try:
            if delivery.task.kind == "storage":
                handle_storage_event(event_of(delivery.task), services)
            else:
                handle_task(delivery.task, services)
        except Exception as exc:  # noqa: BLE001 -- the platform's contract: an exception means "redeliver"
            delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (delivery.attempt - 1))
            log.warning("redelivering later", extra=fields(task=delivery.task.kind, delay_s=delay,
                                                              delivery=delivery.attempt, error=str(exc)[:300]))
            holding.set()
            keeper.join()
            queue.retry(delivery.id, delay)
            continue
        holding.set()
        keeper.join()
        queue.ack(delivery.id)


def _keep_invisible(queue: EmbeddedTaskQueue, delivery_id: str, done: threading.Event) -> None:
    while not done.wait(RENEW_SECONDS):
        queue.retry(delivery_id, VISIBILITY_SECONDS)


class Supervisor:
    """Start ``count`` worker processes on ``data`` and keep them running."""

    def __init__(self, data: Path, count: int, threads: int | None) -> None:
        self.data = data
        self.count = count
        self.threads = threads or DEFAULT_THREADS_PER_WORKER
        self.procs: list[subprocess.Popen[bytes]] = []
        self.restarts = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "VOICECLONING_THREADS": str(self.threads)}
        proc = subprocess.Popen([sys.executable, "-m", "voicecloning", "work", "--data", str(self.data)], env=env)
        log.info("worker started", extra=fields(pid=proc.pid))
        return proc

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.count)]
        self._write_pids()

    def check(self) -> None:
        """Restart every worker that has exited."""
        for n, proc in enumerate(self.procs):
            if proc.poll() is not None:
                log.error("worker died; restarting it", extra=fields(pid=proc.pid, code=proc.returncode))
                self.procs[n] = self._spawn()
                self.restarts += 1
                self._write_pids()

    def _write_pids(self) -> None:
        """``DATA/workers.pid``: one pid a line (operators and tests)."""
        (self.data / "workers.pid").write_text("".join(f"{p.pid}\n" for p in self.procs))

    def stop(self, timeout: float = 10.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

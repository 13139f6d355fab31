"""The worker's report on itself: the document ``service/worker``, read by ``GET /model/info``.

The HTTP API never loads the model, so only the worker can say whether it is
loaded, on which device, in which precision and how long loading took. It
writes that here when its engine has finished loading::

    report_worker(services.docs, engine, instance=..., now=services.clock())

Fields: ``model_name``, ``model_version``, ``languages``, ``loaded``,
``device``, ``precision`` (the mode in use, e.g. ``fast``), ``threads``,
``load_seconds``, ``instance`` (which worker wrote it) and ``reported_at``.
With several worker instances the latest report wins; ``reported_at`` says
how old it is. Nothing here imports torch: the API imports this module too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from voicecloning.engine.threads import available_cpus
from voicecloning.stores.documents import DocumentStore

WORKER_REPORT = "service/worker"


def worker_report(engine: Any, instance: str, now: datetime) -> dict[str, Any]:
    """The report of ``engine`` (an ``XttsEngine``; its weights are loaded by now, or ``loaded`` says not)."""
    config = engine.config
    return {
        "model_name": engine.manifest.model_name,
        "model_version": engine.manifest.model_version,
        "languages": list(engine.languages()),
        "loaded": bool(engine.loaded),
        "device": engine.device,
        "precision": _precision(config.precision, engine.device),
        "threads": config.threads or available_cpus(),
        "load_seconds": None if engine.load_seconds is None else round(float(engine.load_seconds), 3),
        "instance": instance,
        "reported_at": now,
    }


def report_worker(docs: DocumentStore, engine: Any, instance: str, now: datetime) -> dict[str, Any]:
    """Write ``engine``'s report as ``service/worker`` (replacing the previous one) and return it."""
    report = worker_report(engine, instance, now)
    docs.transact(WORKER_REPORT, lambda _previous: (report, None))
    return report


def read_worker_report(docs: DocumentStore) -> dict[str, Any] | None:
    """The latest report as JSON-able values (``reported_at`` in ISO 8601), or None if no worker wrote one."""
    report = docs.get(WORKER_REPORT)
    if report is None:
        return None
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in report.items()}


def _precision(configured: str, device: str) -> str:
    """The concrete mode (``auto`` resolved); the precision module is the worker's and imports torch."""
    from voicecloning.engine.precision import resolve_precision

    return resolve_precision(configured, device)


_reported: set[int] = set()


def report_once(docs: DocumentStore, engine: Any, instance: str, now: datetime) -> bool:
    """Write the report the first time this process sees its engine loaded (after a delivery); True if written.
    A transient failure is left for the next delivery to try again."""
    from voicecloning.errors import TransientError

    if id(engine) in _reported or not getattr(engine, "loaded", False) or not hasattr(engine, "config"):
        return False
    try:
        report_worker(docs, engine, instance, now)
    except TransientError:
        return False
    _reported.add(id(engine))
    return True

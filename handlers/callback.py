"""Deliver a finished job's webhook: one attempt per call, the outcome recorded on the job.

Called from a task (the lead's task queue) enqueued when a job with a
``callback_url`` reaches ``done`` or ``failed``; the job's own delivery is never
held by it. Each call makes at most one POST and records
``callback: {status, attempts, last_code, last_attempt_at, last_error}``:

* 2xx                          -> ``delivered``
* 4xx other than 408 / 429,    -> ``failed`` (permanent: the receiver refuses it)
  3xx (redirects are not followed), a URL that is no longer allowed, no secret configured
* 5xx, 408, 429, transport     -> ``retrying``; raises ``CallbackRetry`` so the queue
  redelivers with backoff, until ``MAX_ATTEMPTS`` attempts, then ``failed``.

A job whose generation is no longer current, that is not terminal, has no
``callback_url`` or whose callback is already settled is ``skipped``.
Delivery is at least once: receivers drop repeats by ``X-Voicecloning-Event-Id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from voicecloning import notify, webhooks
from voicecloning.errors import InvalidRequest, TransientError
from voicecloning.logs import fields
from voicecloning.settings import Settings
from voicecloning.stores.documents import DocumentStore

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
TIMEOUT_S = webhooks.TIMEOUT_S
RETRIED_CODES = {408, 429}
SETTLED = {"delivered", "failed"}


class CallbackRetry(TransientError):
    """The receiver could not take the callback yet; redeliver the task with backoff."""


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The body of a job's callback: its public fields (never its text)."""
    return notify.summary(doc, "job")


def send_callback(
    job_path: str,
    generation: int | str,
    *,
    docs: DocumentStore,
    settings: Settings,
    clock: Callable[[], datetime],
    post: Callable[..., int] = webhooks.post,
) -> str:
    """One delivery attempt: "delivered", "failed" or "skipped"; raises ``CallbackRetry`` to be retried."""
    doc = docs.get(job_path)
    if not _due(doc, generation):
        return "skipped"
    assert doc is not None
    secret = settings.product.webhook_secret
    code: int | None = None
    error: str | None = None
    retry = False
    if not secret:
        error = "callbacks are not configured on this service (VOICECLONING_WEBHOOK_SECRET is not set)"
    else:
        body = notify.encode(summary(doc))
        ident = notify.event_id("job", job_path, generation, str(doc.get("status")))
        try:
            code = post(doc["callback_url"], body, secret, TIMEOUT_S,
                        allow_hosts=settings.product.webhook_allow_hosts, event_id=ident)
        except InvalidRequest as exc:
            error = str(exc)
        except TransientError as exc:
            error, retry = str(exc)[:500], True
        else:
            retry = code >= 500 or code in RETRIED_CODES
            if not 200 <= code < 300:
                error = f"the receiver answered HTTP {code}"
    delivered = code is not None and 200 <= code < 300
    status = _record(docs, job_path, generation, delivered=delivered, retry=retry, code=code, error=error,
                     now=clock())
    log.info("callback", extra=fields(path=job_path, callback=status, code=code, reason=error))
    if status == "retrying":
        raise CallbackRetry(f"callback for {job_path} will be retried: {error}")
    return status if status in SETTLED else "skipped"


def _generation(doc: dict[str, Any]) -> str:
    return str((doc.get("source") or {}).get("generation", ""))


def _due(doc: dict[str, Any] | None, generation: int | str) -> bool:
    return bool(
        doc is not None
        and _generation(doc) == str(generation)
        and doc.get("status") in ("done", "failed")
        and doc.get("callback_url")
        and (doc.get("callback") or {}).get("status") not in SETTLED
    )


def _record(
    docs: DocumentStore, path: str, generation: int | str, *, delivered: bool, retry: bool, code: int | None,
    error: str | None, now: datetime,
) -> str:
    """Count the attempt and settle the status, guarded by generation; the status as recorded."""

    def fn(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
        if doc is None or _generation(doc) != str(generation):
            return None, "skipped"
        current = doc.get("callback") or {}
        if current.get("status") in SETTLED:
            return None, "skipped"  # another attempt settled it meanwhile
        attempts = int(current.get("attempts") or 0) + 1
        if delivered:
            status = "delivered"
        elif retry and attempts < MAX_ATTEMPTS:
            status = "retrying"
        else:
            status = "failed"
        reason = error if status != "failed" or not retry else f"gave up after {attempts} attempts: {error}"
        callback = {"status": status, "attempts": attempts, "last_code": code, "last_attempt_at": now,
                    "last_error": reason}
        return {**doc, "callback": callback, "updated_at": now}, status

    return docs.transact(path, fn)

"""Which failures of Google's clients are transient: turned into ``TransientError`` (retry the event)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def _retryable() -> tuple[type[BaseException], ...]:
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import TransportError
    from requests import exceptions as rexc

    return (
        gexc.ServiceUnavailable, gexc.InternalServerError, gexc.DeadlineExceeded, gexc.Aborted,
        gexc.TooManyRequests, gexc.GatewayTimeout, gexc.BadGateway, gexc.RetryError, gexc.Unknown,
        TransportError, rexc.ConnectionError, rexc.Timeout, ConnectionError, TimeoutError,
    )


@contextmanager
def transient(service: str, what: str) -> Iterator[None]:
    """Re-raise transport trouble inside the block as ``TransientError``; anything else unchanged.

    The cause chain is searched too: a Firestore transaction whose begin or commit
    failed raises the rollback's ``ValueError`` ("no transaction ID") chained to
    the transport error underneath.
    """
    from voicecloning.errors import TransientError

    try:
        yield
    except TransientError:
        raise
    except Exception as exc:
        retryable = _retryable()
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, retryable):
                raise TransientError(f"{service} unavailable ({what}): {cause}") from exc
            cause = cause.__cause__ or cause.__context__
        text = str(exc).lower()
        if isinstance(exc, ValueError) and ("contention" in text or "failed to commit transaction" in text):
            raise TransientError(f"{service} transaction contention ({what}): {exc}") from exc
        raise

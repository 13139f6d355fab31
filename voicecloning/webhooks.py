"""Signed webhooks: which URLs may be called, how a body is signed, and one POST.

* ``check_url`` -- HTTPS only; every address the host resolves to must be public
  (not private, loopback, link-local, multicast, reserved, unspecified or shared
  carrier space) unless the host is in ``allow_hosts``
  (``VOICECLONING_WEBHOOK_ALLOW_HOSTS``), where plain ``http`` is allowed too.
* ``signature`` / ``verify`` -- ``X-Voicecloning-Signature: t=<unix seconds>,v1=<hex>``,
  the hex HMAC-SHA256 of ``f"{t}."`` + body under ``VOICECLONING_WEBHOOK_SECRET``.
* ``post`` -- one POST to the address that was checked (the connection is pinned to
  it, so a DNS answer that changes between check and connect cannot redirect it
  inward); redirects are not followed. Transport failures raise ``WebhookUnreachable``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from voicecloning.errors import InvalidRequest, TransientError

HEADER = "X-Voicecloning-Signature"
EVENT_HEADER = "X-Voicecloning-Event-Id"
MAX_URL_CHARS = 2048
TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 64 * 1024  # read and discarded
USER_AGENT = "voicecloning-webhooks/1"

Resolver = Callable[..., list[tuple[Any, ...]]]


class WebhookUnreachable(TransientError):
    """The receiver could not be reached (DNS, connect, TLS, timeout): retried with backoff."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query
    address: str  # the checked address the connection goes to


def check_syntax(url: Any) -> str:
    """The URL if it is shaped like a callback URL (no network); ``InvalidRequest`` otherwise."""
    if not isinstance(url, str) or not url:
        raise InvalidRequest("'callback_url' must be a URL string such as \"https://example.com/hooks/tts\".")
    if len(url) > MAX_URL_CHARS:
        raise InvalidRequest(f"'callback_url' is {len(url):,} characters; at most {MAX_URL_CHARS:,} are allowed.")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidRequest("'callback_url' must be an https:// URL with a host name.")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("'callback_url' must not carry a user name or password; verify the signature instead.")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise InvalidRequest("'callback_url' must not contain spaces or control characters.")
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        raise InvalidRequest("'callback_url' has an invalid port.") from None
    return url


def check_url(url: str, allow_hosts: Collection[str], resolve: Resolver = socket.getaddrinfo) -> None:
    """``InvalidRequest`` unless ``url`` may receive callbacks (see the module docstring)."""
    target(url, allow_hosts, resolve)


def target(url: str, allow_hosts: Collection[str], resolve: Resolver = socket.getaddrinfo) -> Target:
    """The checked destination of ``url``: scheme, host, port, path and the address to connect to."""
    check_syntax(url)
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    allowed = host in {h.lower() for h in allow_hosts}
    if parts.scheme != "https" and not allowed:
        raise InvalidRequest(f"'callback_url' must use https:// (host '{host}' is not in VOICECLONING_WEBHOOK_ALLOW_HOSTS).")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidRequest(f"the host '{host}' of 'callback_url' cannot be resolved ({exc}).") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise InvalidRequest(f"the host '{host}' of 'callback_url' has no addresses.")
    if not allowed:
        for address in addresses:
            if not _public(address):
                raise InvalidRequest(
                    f"'callback_url' resolves to {address}, a private or reserved address; callbacks go to public "
                    "hosts only (an operator may allow a host with VOICECLONING_WEBHOOK_ALLOW_HOSTS)."
                )
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return Target(parts.scheme, host, port, path, addresses[0])


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bad = (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
           or ip.is_unspecified or not ip.is_global)
    return not bad


def signature(secret: str, body: bytes, t: int) -> str:
    """The signature header value for ``body`` sent at unix time ``t``."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """The receiver's check: a ``v1`` matches and ``t`` is within ``tolerance_s`` of ``now``."""
    now = time.time() if now is None else now
    t: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            t = int(value)
        elif key == "v1":
            macs.append(value)
    if t is None or abs(now - t) > tolerance_s:
        return False
    expected = signature(secret, body, t).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, mac) for mac in macs)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with SNI and certificate checks for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


def post(
    url: str, body: bytes, secret: str, timeout: float = TIMEOUT_S, *, allow_hosts: Collection[str] = (),
    event_id: str | None = None, resolve: Resolver = socket.getaddrinfo, context: ssl.SSLContext | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """POST ``body`` (JSON) signed with ``secret``; the HTTP status code.

    ``InvalidRequest`` if the URL is not allowed (checked again here: DNS may have
    changed since the request was accepted); ``WebhookUnreachable`` on transport failure.
    """
    dest = target(url, allow_hosts, resolve)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               HEADER: signature(secret, body, int(now())), "Host": _host_header(dest)}
    if event_id:
        headers[EVENT_HEADER] = event_id
    conn: http.client.HTTPConnection
    if dest.scheme == "https":
        conn = _PinnedHTTPS(dest.host, dest.port, dest.address, timeout, context or ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(dest.address, dest.port, timeout=timeout)
    try:
        conn.request("POST", dest.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return int(response.status)
    except (OSError, http.client.HTTPException) as exc:  # socket, TLS, timeout, malformed answer
        raise WebhookUnreachable(f"callback to {dest.host} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()


def _host_header(dest: Target) -> str:
    default = 443 if dest.scheme == "https" else 80
    host = f"[{dest.host}]" if ":" in dest.host else dest.host
    return host if dest.port == default else f"{host}:{dest.port}"

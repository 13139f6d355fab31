"""Webhooks: which URLs are allowed, the signature a receiver checks, and one real POST."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support.receiver import receiver, self_signed
from voicecloning.errors import InvalidRequest, TransientError
from voicecloning.webhooks import HEADER, WebhookUnreachable, check_syntax, check_url, post, signature, verify

SECRET = "whsec_test"


def resolver(*addresses: str) -> Any:
    def resolve(host: str, port: int, **_kw: Any) -> list[tuple[Any, ...]]:
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


def test_a_public_https_url_is_allowed() -> None:
    check_url("https://hooks.example.com/tts?x=1", (), resolver("93.184.216.34"))


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.5", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::",
])
def test_an_inward_address_is_refused(address: str) -> None:
    """Private, loopback, link-local (cloud metadata), shared, multicast and reserved addresses never get callbacks."""
    with pytest.raises(InvalidRequest, match=f"resolves to {address}, a private or reserved address"):
        check_url("https://hooks.example.com/", (), resolver(address))


def test_one_inward_address_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(InvalidRequest, match="10.0.0.7"):
        check_url("https://hooks.example.com/", (), resolver("93.184.216.34", "10.0.0.7"))


def test_plain_http_is_refused_unless_the_host_is_allowed() -> None:
    with pytest.raises(InvalidRequest, match="must use https://"):
        check_url("http://hooks.example.com/", (), resolver("93.184.216.34"))
    check_url("http://127.0.0.1:8080/", ("127.0.0.1",), resolver("127.0.0.1"))
    check_url("http://Receiver.Local/", ("receiver.local",), resolver("10.0.0.2"))


@pytest.mark.parametrize(("url", "fragment"), [
    ("ftp://example.com/", "must be an https:// URL"),
    ("https:///path", "must be an https:// URL"),
    ("https://user:pw@example.com/", "must not carry a user name"),
    ("https://example.com/a b", "must not contain spaces"),
    ("https://example.com:99999/", "invalid port"),
    ("https://example.com/" + "x" * 2100, "at most 2,048"),
    (42, "must be a URL string"),
])
def test_malformed_urls_are_refused_before_any_lookup(url: Any, fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        check_syntax(url)


def test_an_unresolvable_host_is_refused() -> None:
    def fail(*_a: Any, **_kw: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(InvalidRequest, match="cannot be resolved"):
        check_url("https://nowhere.invalid/", (), fail)


def test_the_signature_is_hmac_sha256_of_t_dot_body() -> None:
    """Known answer: HMAC-SHA256('whsec_test', '1700000000.{"a":1}')."""
    import hashlib
    import hmac

    expected = hmac.new(b"whsec_test", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert signature(SECRET, b'{"a":1}', 1700000000) == f"t=1700000000,v1={expected}"


def test_a_receiver_accepts_a_fresh_signature_and_rejects_tampering() -> None:
    body = b'{"job_id":"j1","status":"done"}'
    header = signature(SECRET, body, 1000)
    assert verify(SECRET, header, body, tolerance_s=300, now=1100)
    assert not verify(SECRET, header, body + b" ", tolerance_s=300, now=1100)
    assert not verify("other", header, body, tolerance_s=300, now=1100)
    assert not verify(SECRET, header, body, tolerance_s=300, now=1400)  # replayed too late
    assert not verify(SECRET, "v1=abc", body, now=1000)
    assert verify(SECRET, f"{header},v1=deadbeef", body, now=1000)  # any listed v1 may match (key rotation)


def test_post_delivers_a_signed_body_the_receiver_can_verify() -> None:
    """A real HTTP POST to an allowed loopback receiver; the signature verifies on the received bytes."""
    body = b'{"job_id":"j1","status":"done"}'
    with receiver([202]) as rx:
        code = post(rx.url, body, SECRET, 5.0, allow_hosts=("127.0.0.1",), event_id="ev1", now=lambda: 1234)
    assert code == 202
    (got,) = rx.received
    assert got.body == body and got.path == "/hooks/tts?src=test"
    assert got.headers["Content-Type"] == "application/json" and got.headers["X-Voicecloning-Event-Id"] == "ev1"
    assert verify(SECRET, got.headers[HEADER], got.body, now=1234)


def test_post_returns_error_statuses_without_raising() -> None:
    with receiver([500, 404]) as rx:
        codes = [post(rx.url, b"{}", SECRET, allow_hosts=("127.0.0.1",)) for _ in range(2)]
    assert codes == [500, 404]


def test_post_to_a_closed_port_is_a_transient_error() -> None:
    with receiver() as rx:
        url = rx.url
    with pytest.raises(WebhookUnreachable) as info:
        post(url, b"{}", SECRET, 2.0, allow_hosts=("127.0.0.1",))
    assert isinstance(info.value, TransientError)


def test_post_refuses_a_url_that_now_resolves_inward() -> None:
    with pytest.raises(InvalidRequest, match="private or reserved"):
        post("https://hooks.example.com/", b"{}", SECRET, resolve=resolver("127.0.0.1"))


def test_https_goes_to_the_checked_address_with_the_host_name_verified(tmp_path: Path) -> None:
    """The connection is pinned to the resolved address, while TLS checks the certificate of the host name."""
    server_ctx, client_ctx = self_signed("hooks.example.test", tmp_path)
    with receiver(tls=server_ctx) as rx:
        url = f"https://hooks.example.test:{rx.port}/in"
        code = post(url, b"{}", SECRET, 5.0, allow_hosts=("hooks.example.test",), resolve=resolver("127.0.0.1"),
                    context=client_ctx)
        assert code == 200 and rx.received[0].headers["Host"] == f"hooks.example.test:{rx.port}"
        with pytest.raises(WebhookUnreachable, match="SSL|certificate"):
            post(url, b"{}", SECRET, 5.0, allow_hosts=("hooks.example.test",), resolve=resolver("127.0.0.1"))

"""A stand-in for Cloud Run's front end: one URL, several single-request instances behind it.

Pub/Sub pushes to one endpoint; Cloud Run hands each request to an idle instance
(concurrency 1) and answers 429 when every instance is busy, which Pub/Sub counts
as a failed delivery and retries. This proxy does exactly that for the workers the
test started, on loopback, and counts what each worker was given.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.servers import free_port


class Balancer:
    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.busy = [False] * len(backends)
        self.handled = [0] * len(backends)
        self.refused = 0
        self.last = -1
        self.lock = threading.Lock()
        self.port = free_port()
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                index = balancer._take()
                if index is None:
                    self._answer(429, b"busy")
                    return
                try:
                    request = urllib.request.Request(balancer.backends[index] + self.path, data=body, method="POST",
                                                     headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=600) as reply:
                        self._answer(reply.status, reply.read())
                except urllib.error.HTTPError as exc:
                    self._answer(exc.code, exc.read())
                except OSError:
                    self._answer(503, b"instance unreachable")  # a crashed instance
                finally:
                    balancer._give(index)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _take(self) -> int | None:
        """The next idle instance after the one taken last (round robin), or None when all are busy."""
        with self.lock:
            count = len(self.busy)
            for i in ((self.last + 1 + n) % count for n in range(count)):
                if not self.busy[i]:
                    self.busy[i] = True
                    self.handled[i] += 1
                    self.last = i
                    return i
            self.refused += 1
            return None

    def _give(self, index: int) -> None:
        with self.lock:
            self.busy[index] = False

    def start(self) -> Balancer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

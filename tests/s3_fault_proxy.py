"""A small HTTP proxy of ours in front of the S3 server, on loopback: the clients under test talk
to it as their endpoint, and it forwards every request to moto unchanged, except where a test
asks for a fault.

- ``throttle(n, method, contains)``: the next ``n`` matching requests get ``503 SlowDown``, the
  answer S3 gives when a prefix is hot.
- ``deny(contains)``: matching requests get ``403 AccessDenied`` until ``allow()``.
- ``hold(method, contains)``: matching requests wait (the client sees a slow PUT) until
  ``release()``, after which they are dropped unanswered: a publish caught mid-flight.
- ``restart(down_s)``: the listening socket closes, connections are refused for ``down_s``
  seconds, then it listens again on the same port: what a client sees while an endpoint
  restarts (moto itself keeps its buckets, which a real restart of moto would lose).

It also counts what passed: requests per method and the response bytes of each GET, by key, so
a test can measure bytes fetched per block.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from .s3_server import S3, client_env

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "content-length"}

_SLOW_DOWN = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
              b"<Message>Please reduce your request rate.</Message></Error>")
_ACCESS_DENIED = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
                  b"<Message>Access Denied</Message></Error>")


@dataclass
class _Rule:
    remaining: int          # -1: until removed
    method: str             # "" matches every method
    contains: str           # substring of the path
    status: int
    body: bytes
    hits: int = 0


@dataclass
class ProxyStats:
    requests: Counter = field(default_factory=Counter)   # by method
    get_bytes: Counter = field(default_factory=Counter)  # by path (bucket/key)
    faults: Counter = field(default_factory=Counter)     # by status injected
    puts: list = field(default_factory=list)             # keys written, in the order answered


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.stats = ProxyStats()
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._hold: tuple[str, str] | None = None
        self._released = threading.Event()
        self.held = threading.Event()  # set when a request is being held
        self.port = 0

    # ------------------------------------------------------------------ faults
    def throttle(self, n: int, method: str = "", contains: str = "") -> None:
        with self._lock:
            self._rules.append(_Rule(n, method, contains, 503, _SLOW_DOWN))

    def deny(self, contains: str = "", method: str = "") -> None:
        with self._lock:
            self._rules.append(_Rule(-1, method, contains, 403, _ACCESS_DENIED))

    def allow(self) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r.status != 403]

    def hold(self, method: str, contains: str) -> None:
        self._released.clear()
        self.held.clear()
        self._hold = (method, contains)

    def release(self) -> None:
        self._hold = None
        self._released.set()

    def pending_faults(self) -> int:
        with self._lock:
            return sum(max(r.remaining, 0) for r in self._rules)

    def restart(self, down_s: float) -> None:
        """Stop listening (clients get connection refused), wait, listen again."""
        self._stop_server()
        time.sleep(down_s)
        self._start_server(self.port)

    def _fault_for(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining == 0:
                    continue
                if (not rule.method or rule.method == method) and rule.contains in path:
                    if rule.remaining > 0:
                        rule.remaining -= 1
                    rule.hits += 1
                    self.stats.faults[rule.status] += 1
                    return rule
        return None

    # ------------------------------------------------------------------ serving
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:  # quiet
                return

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _relay(self) -> None:
                body = self._body()
                path = self.path.split("?", 1)[0]
                with proxy._lock:
                    proxy.stats.requests[self.command] += 1
                hold = proxy._hold
                if hold is not None and self.command == hold[0] and hold[1] in path:
                    proxy.held.set()
                    proxy._released.wait(timeout=120)
                    self.close_connection = True  # dropped: the client never hears back
                    return
                rule = proxy._fault_for(self.command, path)
                if rule is not None:
                    self._answer(rule.status, {"Content-Type": "application/xml"}, rule.body,
                                 head=self.command == "HEAD")
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in _HOP_BY_HOP}
                    headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    out_headers = {k: v for k, v in resp.getheaders()
                                   if k.lower() not in _HOP_BY_HOP}
                finally:
                    conn.close()
                key = unquote(re.sub(r"^/+", "", path))
                with proxy._lock:
                    if self.command == "GET":
                        proxy.stats.get_bytes[key] += len(data)
                    elif self.command == "PUT" and resp.status == 200:
                        proxy.stats.puts.append(key)
                self._answer(resp.status, out_headers, data, head=self.command == "HEAD",
                             length=resp.getheader("Content-Length"))

            def _answer(self, status: int, headers: dict[str, str], data: bytes, *,
                        head: bool = False, length: str | None = None) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length",
                                 length if head and length is not None else str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        return Handler

    def _start_server(self, port: int) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def fault_proxy(s3: S3) -> Iterator[tuple[FaultProxy, S3]]:
    """A proxy in front of ``s3``; yields it and an ``S3`` whose endpoint is the proxy."""
    proxy = FaultProxy(s3.endpoint)
    proxy._start_server(0)
    try:
        yield proxy, S3(proxy.endpoint, client_env(proxy.endpoint))
    finally:
        proxy._stop_server()

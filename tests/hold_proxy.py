"""A loopback HTTP proxy that can hold one answer: the request reaches the real server and is applied,
but the client gets no answer until the test releases it. Tests kill the client process in that window
(a crash right after the server accepted a post) without mocking the server.

    proxy = HoldProxy("http://127.0.0.1:3000").start()
    hold = proxy.arm("POST", r"^/issues\\.json")
    ...  # client talks to proxy.url; wait for hold.applied, kill the client, then hold.release.set()
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
HOLD_LIMIT = 300.0  # seconds a held answer waits for the release at most (a forgotten release ends)


@dataclass
class Hold:
    method: str
    path: re.Pattern[str]
    applied: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    fired: bool = False


class HoldProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.holds: list[Hold] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def arm(self, method: str, path: str) -> Hold:
        """Hold the answer to the next request matching ``method`` and the ``path`` regex."""
        hold = Hold(method.upper(), re.compile(path))
        with self._lock:
            self.holds.append(hold)
        return hold

    def _take(self, method: str, path: str) -> Hold | None:
        with self._lock:
            for hold in self.holds:
                if not hold.fired and hold.method == method and hold.path.search(path):
                    hold.fired = True
                    return hold
        return None

    def start(self) -> HoldProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: one line per request drowns test output
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Accept-Encoding"] = "identity"
                answer = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=120,
                )
                hold = proxy._take(self.command, self.path)
                if hold is not None:
                    hold.applied.set()
                    hold.release.wait(timeout=HOLD_LIMIT)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, name="hold-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        for hold in self.holds:
            hold.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

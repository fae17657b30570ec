"""Retries and error mapping of the Redmine HTTP boundary.

Redmine cannot be made to answer 429 or 5xx on demand, so these tests use a small real HTTP server on
loopback that plays scripted answers (status, headers, delay). Nothing in requests or python-redmine is
mocked; sleeping is injected, so the tests never wait.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from redminelib import Redmine

from casebridge.connectors.redmine.http import CasebridgeEngine, OutcomeUnknown, default_policy
from casebridge.errors import AuthenticationFailed, RejectedError, TrackerUnreachable, TransientError


class Scripted(ThreadingHTTPServer):
    def __init__(self, answers: list[tuple[int, dict, bytes, float]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = answers
        self.seen: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        server: Scripted = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        server.seen.append(self.command)
        status, headers, body, delay = server.answers.pop(0) if len(server.answers) > 1 else server.answers[0]
        time.sleep(delay)
        self.send_response(status)
        for k, v in (headers | {"Content-Length": str(len(body))}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve():
    servers = []

    def start(*answers):
        server = Scripted(list(answers))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


OK = (
    200,
    {"Content-Type": "application/json"},
    b'{"issues": [], "total_count": 0, "limit": 25, "offset": 0}',
    0.0,
)


def client(server, sleeps: list[float], *, attempts: int = 4, timeout: float = 5.0) -> Redmine:
    url = f"http://127.0.0.1:{server.server_port}" if server else "http://127.0.0.1:9"
    policy = default_policy(attempts=attempts, ceiling=10.0, sleep=sleeps.append)
    return Redmine(url, key="k" * 40, engine=CasebridgeEngine, retry=policy, timeout=timeout)


def test_429_is_retried_after_retry_after_within_floor_and_ceiling(serve):
    server = serve((429, {"Retry-After": "7"}, b"", 0.0), (429, {"Retry-After": "600"}, b"", 0.0), OK)
    sleeps: list[float] = []
    assert client(server, sleeps).engine.request("get", f"http://127.0.0.1:{server.server_port}/issues.json") == {
        "issues": [],
        "total_count": 0,
        "limit": 25,
        "offset": 0,
    }
    assert sleeps == [7.0, 10.0] and server.seen == ["GET"] * 3


def test_5xx_on_reads_retried_with_jittered_backoff_then_typed_error(serve):
    server = serve((503, {}, b"", 0.0))
    sleeps: list[float] = []
    with pytest.raises(TransientError, match=r"failed on GET /issues.json \(503\)"):
        client(server, sleeps).engine.request("get", f"http://127.0.0.1:{server.server_port}/issues.json")
    assert len(server.seen) == 4 and len(sleeps) == 3 and all(0 <= s <= 10.0 for s in sleeps)


def test_write_that_may_have_succeeded_is_not_retried(serve):
    server = serve((502, {}, b"", 0.0))
    with pytest.raises(OutcomeUnknown):
        client(server, []).engine.request("post", f"http://127.0.0.1:{server.server_port}/issues.json", data={})
    assert server.seen == ["POST"]


def test_write_refused_with_429_is_retried(serve):
    server = serve((429, {}, b"", 0.0), (201, {"Content-Type": "application/json"}, b'{"issue": {"id": 1}}', 0.0))
    got = client(server, []).engine.request("post", f"http://127.0.0.1:{server.server_port}/issues.json", data={})
    assert got == {"issue": {"id": 1}} and server.seen == ["POST", "POST"]


def test_read_timeout_on_a_write_is_outcome_unknown_and_not_repeated(serve):
    server = serve((201, {}, b"{}", 0.5))
    with pytest.raises(OutcomeUnknown, match=r"did not answer POST /issues\.json within 0\.1 s"):
        client(server, [], timeout=0.1).engine.request(
            "post", f"http://127.0.0.1:{server.server_port}/issues.json", data={}
        )
    assert server.seen == ["POST"]


def test_refused_connection_is_retried_then_unreachable():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    redmine = Redmine(
        f"http://127.0.0.1:{port}",
        key="k",
        engine=CasebridgeEngine,
        retry=default_policy(attempts=3, sleep=sleeps.append),
    )
    with pytest.raises(TrackerUnreachable, match=r"cannot connect to Redmine at http://127\.0\.0\.1"):
        redmine.engine.request("get", f"http://127.0.0.1:{port}/issues.json")
    assert len(sleeps) == 2


def test_401_and_422_messages_are_one_line_with_redmines_words(serve):
    errors = json.dumps({"errors": ["Subject cannot be blank", "Sla due is invalid"]}).encode()
    server = serve((422, {"Content-Type": "application/json"}, errors, 0.0))
    with pytest.raises(RejectedError, match="Subject cannot be blank; Sla due is invalid"):
        client(server, []).engine.request("post", f"http://127.0.0.1:{server.server_port}/issues.json", data={})
    server401 = serve((401, {}, b"", 0.0))
    with pytest.raises(AuthenticationFailed) as err:
        client(server401, []).engine.request("get", f"http://127.0.0.1:{server401.server_port}/issues.json")
    assert "\n" not in str(err.value) and "k" * 40 not in str(err.value)


def test_connector_write_checks_before_repeating():
    """RedmineConnector._write: a lost answer is followed by the check, not by a blind second write."""
    from casebridge.connectors.redmine import RedmineConnector
    from casebridge.connectors.redmine.config import RedmineConfig
    from tests.redmine_helpers import load_test_workflow

    conn = RedmineConnector(
        RedmineConfig(url="http://127.0.0.1:9", api_key={"env": "X"}, project="p"),
        load_test_workflow(),
        sleep=lambda s: None,
    )
    calls: list[str] = []

    def attempt():
        calls.append("write")
        raise OutcomeUnknown("lost")

    assert conn._write(attempt, applied=lambda: calls.append("check") or "found") == "found"
    assert calls == ["write", "check"]
    calls.clear()
    with pytest.raises(OutcomeUnknown):
        conn._write(attempt)  # not idempotent and no way to check: never repeated
    assert calls == ["write"]

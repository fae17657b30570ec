"""The one table of HTTP attempt outcomes (connectors.http_outcome), on real sockets on 127.0.0.1, and the
Jira and Redmine boundaries reading it the same way.

Every failure is produced for real by the kernel or a socket server in this process, with one exception:
name resolution. This machine's resolver is a network server, and ``x.invalid`` would be sent to it
(RFC 6761 only asks resolvers to answer NXDOMAIN, it does not keep the query local). So the DNS case
replaces ``socket.getaddrinfo`` for ``.invalid`` names only with the error the C resolver gives
(``EAI_NONAME``); urllib3 then raises its real ``NameResolutionError`` through its real code path.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from redminelib import Redmine

from casebridge.connectors.http_outcome import Outcome, answer_outcome, failure_outcome
from casebridge.connectors.jira.http import JiraHttp
from casebridge.connectors.redmine.http import CasebridgeEngine, OutcomeUnknown, default_policy
from casebridge.connectors.retry import RetryPolicy
from casebridge.errors import TrackerUnreachable

NEVER, MAYBE, ANSWERED = Outcome.NEVER_SENT, Outcome.MAYBE_APPLIED, Outcome.ANSWERED


def outcome(url: str, *, timeout: float = 5.0) -> Outcome:
    """POST once (no retries anywhere) and classify what happened."""
    try:
        response = requests.post(url, json={"issue": {"subject": "x"}}, timeout=timeout)
    except requests.RequestException as exc:
        return failure_outcome(exc)
    return answer_outcome(response.status_code)


# what glibc says for an unknown name, and for a resolver that cannot be reached (no network)
DNS_ERRORS = [
    (socket.EAI_NONAME, "Name or service not known"),
    (socket.EAI_AGAIN, "Temporary failure in name resolution"),
]


@pytest.fixture(params=DNS_ERRORS, ids=["unknown-name", "resolver-unreachable"])
def no_dns_for_invalid(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(*request.param)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A listening port whose accept queue is full: the kernel drops new SYNs, so connecting times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):  # queue connections nobody accepts until one is no longer taken
            filler = socket.socket()
            filler.settimeout(0.2)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.fail("the kernel kept accepting connections into a full backlog")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


@contextlib.contextmanager
def raw_server(after_request: Callable[[socket.socket], None]) -> Iterator[int]:
    """Accepts one connection, reads the whole request (headers and body), then ``after_request(conn)``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    release = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        after_request(conn)
        release.wait(10)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        release.set()
        thread.join(10)
        server.close()


def reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # linger 0: the kernel answers with RST


@pytest.fixture(scope="module")
def answering() -> Iterator[int]:
    """An HTTP server answering ``POST /NNN`` with status NNN."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(int(self.path.strip("/")))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


# -- the table -----------------------------------------------------------------------------------------
def test_connection_refused_was_never_sent() -> None:
    assert outcome(f"http://127.0.0.1:{closed_port()}/issues.json") is NEVER


def test_dns_failure_was_never_sent(no_dns_for_invalid: None) -> None:
    assert outcome("http://tracker.casebridge.invalid/issues.json") is NEVER


def test_connect_timeout_was_never_sent() -> None:
    with full_backlog() as port:
        assert outcome(f"http://127.0.0.1:{port}/issues.json", timeout=0.3) is NEVER


def test_read_timeout_may_have_been_applied() -> None:
    with raw_server(lambda conn: None) as port:
        assert outcome(f"http://127.0.0.1:{port}/issues.json", timeout=0.3) is MAYBE


def test_reset_after_sending_may_have_been_applied() -> None:
    with raw_server(reset) as port:
        assert outcome(f"http://127.0.0.1:{port}/issues.json") is MAYBE


def test_closed_without_an_answer_may_have_been_applied() -> None:
    with raw_server(lambda conn: conn.shutdown(socket.SHUT_RDWR)) as port:
        assert outcome(f"http://127.0.0.1:{port}/issues.json") is MAYBE


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, ANSWERED), (201, ANSWERED), (404, ANSWERED), (422, ANSWERED), (429, ANSWERED), (501, ANSWERED)]
    + [(s, MAYBE) for s in (500, 502, 503, 504)],
)
def test_answers(answering: int, status: int, expected: Outcome) -> None:
    assert outcome(f"http://127.0.0.1:{answering}/{status}") is expected


# -- both boundaries read the table the same way -------------------------------------------------------
def jira_http(url: str, sleeps: list[float]) -> JiraHttp:
    return JiraHttp(requests.Session(), url, "3", policy=RetryPolicy(attempts=3, label="jira"), sleep=sleeps.append)


def test_jira_resends_a_post_that_never_left_without_probing(no_dns_for_invalid: None) -> None:
    sleeps: list[float] = []
    probes: list[int] = []
    http = jira_http("http://jira.casebridge.invalid", sleeps)
    with pytest.raises(TrackerUnreachable, match=r"connection failed \(ConnectionError\).*after 3 attempts"):
        http.call("POST", "issue", json={}, landed=lambda: probes.append(1))
    assert http.requests_sent == 3 and len(sleeps) == 2 and probes == []


def test_jira_probes_before_resending_a_post_that_may_have_landed() -> None:
    sleeps: list[float] = []
    with raw_server(reset) as port:
        http = jira_http(f"http://127.0.0.1:{port}", sleeps)
        assert http.call("POST", "issue", json={}, landed=lambda: {"key": "CASE-1"}) == {"key": "CASE-1"}
    assert http.requests_sent == 1  # the probe found it: not sent again


def redmine(url: str, sleeps: list[float]) -> Redmine:
    policy = default_policy(attempts=3, sleep=sleeps.append)
    return Redmine(url, key="k" * 40, engine=CasebridgeEngine, retry=policy, timeout=5.0)


def test_redmine_retries_a_post_that_never_left(no_dns_for_invalid: None) -> None:
    sleeps: list[float] = []
    client = redmine("http://redmine.casebridge.invalid", sleeps)
    with pytest.raises(TrackerUnreachable, match=r"cannot connect to Redmine at http://redmine\.casebridge\.invalid"):
        client.engine.request("post", "http://redmine.casebridge.invalid/issues.json", data={"issue": {}})
    assert len(sleeps) == 2  # retried: nothing reached the server


def test_redmine_does_not_resend_a_post_that_may_have_landed() -> None:
    sleeps: list[float] = []
    with raw_server(reset) as port:
        client = redmine(f"http://127.0.0.1:{port}", sleeps)
        with pytest.raises(OutcomeUnknown, match=r"connection to Redmine dropped during POST /issues\.json"):
            client.engine.request("post", f"http://127.0.0.1:{port}/issues.json", data={"issue": {}})
    assert sleeps == []  # the connector checks the tracker before writing again

"""The SMTP session as the mail admin sees it (issue 19, mutants of connectors/email.py's ``_Session``
that no test reached): every session ends with QUIT, failed or not; each failure says exactly which
server, what went wrong and which setting to look at; a server that greets with an error is a
rejection (5xx) or a retry (4xx); a silent server times out on implicit TLS too; a password or user
name SMTP cannot carry is refused before any connection. Real SMTP over loopback (aiosmtpd), real TLS."""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from casebridge.errors import AuthenticationFailed, ConfigError, RejectedError, TrackerUnreachable, TransientError
from tests import test_email, test_email_target
from tests.test_email import Sink, escalation, free_port, mailer, silent_port
from tests.test_email_target import KEY, MESSAGE_ID, Replying

cert = test_email.cert
password_env = test_email.password_env
replying = test_email_target.replying


class Quitting(Replying):
    """Counts the QUIT commands the client sends."""

    def __init__(self) -> None:
        super().__init__()
        self.quits = 0

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"


@pytest.fixture
def plain_quitting() -> Iterator[tuple[Quitting, int]]:
    """A loopback server without TLS or AUTH."""
    sink, port = Quitting(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def test_a_sent_escalation_ends_its_session_with_quit(replying: Any, tmp_path: Path, cert) -> None:
    sink = Quitting()
    conn = mailer(replying(sink), tmp_path, cert)
    conn.post_escalation(escalation())
    assert len(sink.messages) == 1 and sink.quits == 1
    conn.close()


def test_a_refused_login_names_the_user_and_the_settings_and_ends_with_quit(
    replying: Any, tmp_path: Path, cert, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = Quitting()
    port = replying(sink)
    monkeypatch.setenv("CB_TEST_SMTP_PASSWORD", "wrong-password-123")
    conn = mailer(port, tmp_path, cert)
    with pytest.raises(AuthenticationFailed) as raised:
        conn.post_escalation(escalation())
    assert str(raised.value) == (
        f"SMTP 127.0.0.1:{port} refused the login of 'liaison' (535); check [liaison] username and password"
    )
    assert sink.quits == 1 and sink.messages == []
    conn.close()


def test_a_server_without_starttls_says_what_to_set_and_ends_with_quit(plain_quitting, tmp_path: Path) -> None:
    sink, port = plain_quitting
    conn = mailer(port, tmp_path, None)
    with pytest.raises(RejectedError) as raised:
        conn.post_escalation(escalation())
    assert str(raised.value) == (
        f'SMTP 127.0.0.1:{port} does not offer STARTTLS; set security = "tls" '
        "if it speaks TLS on connect, or fix the server"
    )
    assert sink.quits == 1 and sink.messages == []


def test_a_server_that_offers_no_login_says_to_check_security_and_username(plain_quitting, tmp_path: Path) -> None:
    sink, port = plain_quitting  # a password over plain SMTP is allowed to a loopback host
    conn = mailer(port, tmp_path, None, security="none")
    with pytest.raises(RejectedError) as raised:
        conn.post_escalation(escalation())
    assert str(raised.value) == (
        f"SMTP 127.0.0.1:{port}: SMTP AUTH extension not supported by server.; check [liaison] security and username"
    )
    assert sink.quits == 1 and sink.messages == [] and conn.find_escalation(KEY) is None


def test_plain_smtp_without_a_login_sends_and_quits(plain_quitting, tmp_path: Path) -> None:
    sink, port = plain_quitting
    conn = mailer(port, tmp_path, None, security="none", username=None, password=None)
    assert conn.post_escalation(escalation()).key == MESSAGE_ID
    assert len(sink.messages) == 1 and sink.quits == 1


@pytest.mark.parametrize("security", ["starttls", "tls"])
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_an_untrusted_certificate_says_which_server_why_and_what_to_set(
    request: pytest.FixtureRequest, tmp_path: Path, security: str
) -> None:
    _, port = request.getfixturevalue(f"{security}_server")
    with pytest.raises(TrackerUnreachable) as raised:
        mailer(port, tmp_path, None, security=security).check_schema()
    assert re.fullmatch(
        rf"SMTP 127\.0\.0\.1:{port}: TLS certificate not trusted \(self.signed certificate\); "
        r"set \[liaison\] ca_file to the server's CA",
        str(raised.value),
    ), str(raised.value)


starttls_server = test_email.starttls_server
tls_server = test_email.tls_server


def test_a_server_that_is_not_there_is_unreachable_with_the_system_reason(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(TrackerUnreachable) as raised:
        mailer(port, tmp_path, None, security="tls", timeout=5).check_schema()
    assert str(raised.value) == f"SMTP 127.0.0.1:{port} could not be reached: [Errno 111] Connection refused"


class Greeter:
    """A raw TCP server that greets every connection with a fixed line and records what the client says."""

    def __init__(self, greeting: str) -> None:
        self.greeting, self.heard = greeting, b""
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        client, _ = self.listener.accept()
        with client:
            client.settimeout(5)
            client.sendall(self.greeting.encode() + b"\r\n")
            try:
                while chunk := client.recv(1024):
                    self.heard += chunk
                    if b"QUIT" in self.heard:
                        client.sendall(b"221 Bye\r\n")
                        break
            except OSError:
                pass

    def close(self) -> None:
        self.thread.join(5)
        self.listener.close()


@pytest.mark.parametrize(
    ("greeting", "error"),
    [("554 5.3.2 no service for you", RejectedError), ("421 4.3.2 too busy, try later", TransientError)],
)
def test_a_server_that_greets_with_an_error_is_a_rejection_or_a_retry_with_its_words(
    tmp_path: Path, greeting: str, error: type[Exception]
) -> None:
    server = Greeter(greeting)
    try:
        conn = mailer(server.port, tmp_path, None, security="none", username=None, password=None)
        with pytest.raises(error) as raised:
            conn.post_escalation(escalation())
    finally:
        server.close()
    code, words = greeting.split(" ", 1)
    assert type(raised.value) is error
    assert str(raised.value) == f"SMTP 127.0.0.1:{server.port} answered {code}: {words}"
    assert conn.find_escalation(KEY) is None


def test_a_silent_server_on_implicit_tls_times_out_as_unreachable(tmp_path: Path) -> None:
    with silent_port() as port:
        conn = mailer(port, tmp_path, None, security="tls", timeout=0.3)
        with pytest.raises(TrackerUnreachable, match=r"could not be reached: .*timed out"):
            conn.post_escalation(escalation())
        conn.close()


def test_a_missing_password_names_the_setting_and_the_variable_before_any_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CB_TEST_SMTP_PASSWORD")
    conn = mailer(free_port(), tmp_path, None)  # nothing listens there: no connection is tried
    with pytest.raises(ConfigError) as raised:
        conn.post_escalation(escalation())
    assert str(raised.value) == (
        "[liaison] password: environment variable CB_TEST_SMTP_PASSWORD is not set; export it or use another pointer"
    )


ASCII_ONLY = (
    "[liaison] password <- SMTP AUTH can only carry ASCII user names and passwords; "
    "set an ASCII password for the mail account"
)


@pytest.mark.parametrize(("username", "password"), [("lïaison", "s3cret-pass-Zx9"), ("liaison", "pässwörd")])
def test_a_non_ascii_user_name_or_password_is_refused_before_any_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, username: str, password: str
) -> None:
    monkeypatch.setenv("CB_TEST_SMTP_PASSWORD", password)
    conn = mailer(free_port(), tmp_path, None, username=username)
    with pytest.raises(ConfigError) as raised:
        conn.post_escalation(escalation())
    assert str(raised.value) == ASCII_ONLY
    assert conn.db.execute("SELECT COUNT(*) FROM sent").fetchone()[0] == 0


def test_the_log_says_which_escalation_went_to_whom_as_which_message(
    replying: Any, tmp_path: Path, cert, caplog: pytest.LogCaptureFixture
) -> None:
    conn = mailer(replying(Sink()), tmp_path, cert)
    with caplog.at_level(logging.INFO, logger="casebridge.connectors.email"):
        conn.post_escalation(escalation())
    assert [r.getMessage() for r in caplog.records if r.name == "casebridge.connectors.email"] == [
        f"escalation {KEY} mailed to ncb-liaison@ncb.example.org, duty@ncb.example.org as {MESSAGE_ID}"
    ]
    conn.close()


def test_closing_a_connector_closes_its_record_and_closing_again_is_harmless(tmp_path: Path) -> None:
    conn = mailer(25, tmp_path, None)
    conn.close()  # never opened: nothing to close
    db = conn.db
    conn.close()
    with pytest.raises(Exception, match="closed"):
        db.execute("SELECT 1")
    conn.close()

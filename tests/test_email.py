"""The SMTP liaison target against a real SMTP server on loopback (aiosmtpd): STARTTLS and implicit TLS
with a certificate generated here, AUTH, the headers that carry the dedupe key, exactly-once across
reruns and a killed process, and hostile case data inert in the HTML part."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from casebridge.app.escalate import apply_escalations
from casebridge.connectors import Escalation, connector_class, make_connector
from casebridge.connectors.email import EmailConfig, EmailConnector, message_id_for
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import AuthenticationFailed, ConfigError, RejectedError, TrackerUnreachable
from casebridge.workflows.cases import TrackedCase
from casebridge.workflows.escalation import plan_escalations
from casebridge.workflows.render import _TreeBuilder, clean_text, to_plain
from tests.factories import T0, make_case
from tests.hostile_cases import HOSTILE, hostile_case
from tests.test_escalation import VOLUNTARY, WF, breached

USER, PASSWORD = "liaison", "s3cret-pass-Zx9"
NOW = T0 + dt.timedelta(days=40)
ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "h1",
    "h2",
    "h3",
    "p",
    "ul",
    "li",
    "strong",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "a",
}


# ------------------------------------------------------------------------------------- the SMTP server
@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, generated for this test run."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # OpenSSL checks these against the machine's clock, not this process's (which pytest
        # --clock-shift moves): a window wide enough for both
        .not_valid_before(now - dt.timedelta(days=3650))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Sink:
    """Stores what the server accepted. ``hold`` keeps the server from answering DATA (to kill the client)."""

    def __init__(self) -> None:
        self.messages: list[tuple[Any, bool, bool]] = []  # (envelope, session was TLS, authenticated)
        self.received = threading.Event()
        self.hold = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.messages.append((envelope, tls, bool(session.authenticated)))
        self.received.set()
        while self.hold:  # the server has the message; its "250" is not yet sent
            await asyncio.sleep(0.01)
        return "250 OK queued"

    def parsed(self, i: int = -1) -> email.message.EmailMessage:
        return email.message_from_bytes(self.messages[i][0].content, policy=policy.default)  # type: ignore[return-value]


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_context(cert: tuple[Path, Path]):
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


@pytest.fixture
def starttls_server(cert: tuple[Path, Path]) -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context(cert),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    yield sink, port
    sink.hold = False
    controller.stop()


@pytest.fixture
def tls_server(cert: tuple[Path, Path]) -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), free_port()
    # auth_require_tls=False: aiosmtpd only counts STARTTLS as TLS; this connection is TLS from the start
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        ssl_context=server_context(cert),
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def plain_server() -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture(autouse=True)
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CB_TEST_SMTP_PASSWORD", PASSWORD)


def raw_config(port: int, tmp_path: Path, cert: tuple[Path, Path] | None, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "username": USER,
        "password": {"env": "CB_TEST_SMTP_PASSWORD"},
        "from": "casebridge@fia.example.gov.pk",
        "to": ["ncb-liaison@ncb.example.org", "duty@ncb.example.org"],
        "subject_prefix": "[NCB]",
        "sent_record": str(tmp_path / "sent.sqlite"),
        "ca_file": str(cert[0]) if cert else None,
    }
    raw.update(overrides)
    return raw


def mailer(port: int, tmp_path: Path, cert: tuple[Path, Path] | None, **overrides: Any) -> EmailConnector:
    return make_connector("email", raw_config(port, tmp_path, cert, **overrides), WF, section="liaison")  # type: ignore[return-value]


def escalation(text: str = "plain facts", key: str = "FIA-1/followup/L1") -> Escalation:
    tracked = TrackedCase("7", hostile_case(text, "FIA-1"), "acknowledged", T0, url="https://tracker.example/7")
    item = plan_escalations([(tracked, [breached(*VOLUNTARY, 3600)])], WF, now=NOW).escalations[0]
    return Escalation(**{**item.escalation().__dict__, "dedupe_key": key})


def html_part(msg: email.message.EmailMessage) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]


def assert_inert_html(rendered: str) -> str:
    builder = _TreeBuilder()
    builder.feed(rendered)
    nodes = [builder.root]
    text_parts = []
    while nodes:
        node = nodes.pop()
        for child in node.children:
            if isinstance(child, str):
                text_parts.append(child)
            else:
                assert child.tag in ALLOWED_TAGS, child.tag
                assert set(child.attrs) <= {"href", "charset", "dir"}, (child.tag, child.attrs)
                if child.tag == "a":
                    assert child.attrs["href"] == "https://tracker.example/7"
                nodes.append(child)
    return "".join(text_parts)


# ------------------------------------------------------------------------------------------------ tests
def test_starttls_auth_post_carries_headers_and_both_parts(starttls_server, tmp_path, cert) -> None:
    sink, port = starttls_server
    conn = mailer(port, tmp_path, cert)
    posted = conn.post_escalation(escalation(dict(HOSTILE)["script"]))
    assert len(sink.messages) == 1
    envelope, over_tls, authenticated = sink.messages[0]
    assert over_tls and authenticated
    assert envelope.mail_from == "casebridge@fia.example.gov.pk"
    assert envelope.rcpt_tos == ["ncb-liaison@ncb.example.org", "duty@ncb.example.org"]
    msg = sink.parsed()
    assert msg["X-Casebridge-Dedupe-Key"] == "FIA-1/followup/L1"
    assert msg["Message-ID"] == message_id_for("FIA-1/followup/L1", "fia.example.gov.pk") == posted.key
    assert msg["Subject"].startswith("[NCB] NCB escalation L1: FIA-1: Provider follow-up overdue")
    assert msg["Auto-Submitted"] == "auto-generated" and msg["X-Casebridge-Case"] == "FIA-1"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    text = assert_inert_html(html_part(msg))
    assert "<script>alert('xss')</script>" in text  # shown as text...
    assert "<script" not in html_part(msg)  # ...never as a tag
    plain = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "<script>alert('xss')</script>" in plain and "Article 3" in plain
    assert conn.find_escalation("FIA-1/followup/L1") == posted
    conn.close()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(tls_server, tmp_path, cert) -> None:
    sink, port = tls_server
    conn = mailer(port, tmp_path, cert, security="tls")
    conn.post_escalation(escalation())
    assert len(sink.messages) == 1 and sink.messages[0][1] and sink.messages[0][2]
    conn.close()


def test_escalate_twice_sends_once_and_links_the_case(starttls_server, tmp_path, cert) -> None:
    sink, port = starttls_server
    tracker = LocalConnector(LocalConfig(path=str(tmp_path / "cases.db")), WF)
    tracker.create_case(make_case("FIA-1"), state="acknowledged", at=T0)
    plan = lambda: plan_escalations([(tc, [breached(*VOLUNTARY, 3600)]) for tc in tracker.list_cases()], WF, now=NOW)  # noqa: E731
    first = apply_escalations(plan(), mailer(port, tmp_path, cert), tracker, now=NOW)
    second = apply_escalations(plan(), mailer(port, tmp_path, cert), tracker, now=NOW)
    assert [o.status for o in first + second] == ["posted", "already_posted"]
    assert len(sink.messages) == 1
    assert tracker.find_case("FIA-1").state == "escalated"  # type: ignore[union-attr]
    comment = tracker.comments(tracker.find_case("FIA-1").key)[-1]  # type: ignore[union-attr]
    assert sink.parsed()["Message-ID"] in to_plain(comment)  # the comment names the mail (Markdown-escaped)
    tracker.close()


CHILD = """
import json, sys
from casebridge.connectors import Escalation, make_connector
from casebridge.workflows import load_workflow
raw, esc = json.loads(sys.argv[1]), json.loads(sys.argv[2])
conn = make_connector("email", raw, load_workflow(), section="liaison")
conn.post_escalation(Escalation(**esc))
"""


def test_killed_after_the_server_accepted_is_resent_with_the_same_message_id(starttls_server, tmp_path, cert) -> None:
    sink, port = starttls_server
    raw = raw_config(port, tmp_path, cert)
    esc = escalation()
    sink.hold = True  # the server keeps the message but does not answer until the client is dead
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(raw), json.dumps(esc.__dict__)],
        env={**os.environ},
        cwd=Path(__file__).parents[1],
    )
    assert sink.received.wait(timeout=60), "the child never delivered"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    sink.hold = False
    conn = mailer(port, tmp_path, cert)
    assert conn.find_escalation(esc.dedupe_key) is None  # never confirmed: not counted as sent
    tracker = LocalConnector(LocalConfig(path=str(tmp_path / "cases.db")), WF)
    tracker.create_case(make_case("FIA-1"), state="acknowledged", at=T0)
    plan = plan_escalations([(tc, [breached(*VOLUNTARY, 3600)]) for tc in tracker.list_cases()], WF, now=NOW)
    outcome = apply_escalations(plan, conn, tracker, now=NOW)[0]
    assert outcome.dedupe_key == esc.dedupe_key and outcome.status == "resent" and outcome.ok
    assert outcome.notes[0].startswith("resent: an earlier send was never confirmed")
    assert len(sink.messages) == 2 and sink.parsed(0)["Message-ID"] == sink.parsed(1)["Message-ID"]
    assert outcome.case_state == "escalated" and conn.find_escalation(esc.dedupe_key) is not None
    again = apply_escalations(plan, conn, tracker, now=NOW)[0]
    assert again.status == "already_posted" and len(sink.messages) == 2
    conn.close()
    tracker.close()


def test_a_configuration_error_leaves_no_record(starttls_server, tmp_path, cert, monkeypatch) -> None:
    sink, port = starttls_server
    monkeypatch.delenv("CB_TEST_SMTP_PASSWORD")
    conn = mailer(port, tmp_path, cert)
    with pytest.raises(ConfigError, match="CB_TEST_SMTP_PASSWORD"):
        conn.post_escalation(escalation())
    monkeypatch.setenv("CB_TEST_SMTP_PASSWORD", "pässwörd-ünïcode")
    with pytest.raises(ConfigError, match="ASCII") as info:
        conn.post_escalation(escalation())
    assert "pässwörd" not in str(info.value)
    assert conn.db.execute("SELECT COUNT(*) FROM sent").fetchone()[0] == 0 and sink.messages == []
    monkeypatch.setenv("CB_TEST_SMTP_PASSWORD", PASSWORD)
    posted = conn.post_escalation(escalation())  # the next run with the password set really sends
    assert len(sink.messages) == 1 and not posted.resent
    conn.close()


def test_wrong_password_is_authentication_failed_and_records_nothing(starttls_server, tmp_path, cert, monkeypatch):
    sink, port = starttls_server
    monkeypatch.setenv("CB_TEST_SMTP_PASSWORD", "wrong-password-123")
    conn = mailer(port, tmp_path, cert)
    with pytest.raises(AuthenticationFailed, match="refused the login of 'liaison'") as info:
        conn.post_escalation(escalation())
    assert "wrong-password-123" not in str(info.value)
    assert conn.find_escalation("FIA-1/followup/L1") is None and sink.messages == []
    conn.close()


def test_server_without_starttls_is_refused_before_login(plain_server, tmp_path) -> None:
    sink, port = plain_server
    conn = mailer(port, tmp_path, None)
    with pytest.raises(RejectedError, match="does not offer STARTTLS"):
        conn.post_escalation(escalation())
    assert sink.messages == [] and conn.find_escalation("FIA-1/followup/L1") is None


def test_untrusted_certificate_says_to_set_ca_file(starttls_server, tmp_path) -> None:
    _, port = starttls_server
    with pytest.raises(TrackerUnreachable, match="ca_file"):
        mailer(port, tmp_path, None).check_schema()


def test_check_schema_logs_in(starttls_server, tmp_path, cert) -> None:
    sink, port = starttls_server
    assert mailer(port, tmp_path, cert).check_schema() == [] and sink.messages == []


def test_unreachable_server(tmp_path) -> None:
    conn = mailer(free_port(), tmp_path, None, security="tls", timeout=5)
    with pytest.raises(TrackerUnreachable, match="could not be reached"):
        conn.post_escalation(escalation())
    assert conn.find_escalation("FIA-1/followup/L1") is None


def test_plain_smtp_without_auth_on_loopback(plain_server, tmp_path) -> None:
    sink, port = plain_server
    conn = mailer(port, tmp_path, None, security="none", username=None, password=None)
    conn.post_escalation(escalation())
    assert len(sink.messages) == 1 and not sink.messages[0][1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"security": "none", "host": "mail.example.org"}, "unencrypted"),
        ({"password": None}, "both username and password"),
        ({"to": []}, "to <- "),
        ({"to": ["not-an-address"]}, "not an e-mail address"),
        ({"password": "plain-text-secret"}, "password"),
        ({"smtp_host": "x"}, "smtp_host <- "),
    ],
)
def test_config_errors(tmp_path, overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        mailer(25, tmp_path, None, **overrides)


def test_registered_under_the_entry_point() -> None:
    assert connector_class("email") is EmailConnector
    assert EmailConnector.capabilities == frozenset({"liaison"})


def test_header_injection_is_impossible(tmp_path) -> None:
    conn = mailer(25, tmp_path, None)
    esc = escalation()
    hostile = Escalation(**{**esc.__dict__, "title": dict(HOSTILE)["email-header"], "dedupe_key": "K\r\nBcc: x@y.z"})
    msg = conn.build_message(hostile, at=NOW)
    assert msg["Bcc"] is None and "\n" not in msg["Subject"] and "\r" not in msg["X-Casebridge-Dedupe-Key"]
    assert msg["Subject"] == "[NCB] Subject line Bcc: victim@example.com body"


@pytest.mark.parametrize(("name", "value"), HOSTILE)
def test_every_hostile_string_is_inert_in_the_html_part(tmp_path, name, value) -> None:
    msg = mailer(25, tmp_path, None).build_message(escalation(value), at=NOW)
    reparsed = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    text = assert_inert_html(html_part(reparsed))  # type: ignore[arg-type]
    assert clean_text(value.split("\n")[0]) in " ".join(text.split()), name


def test_message_id_is_deterministic_and_key_specific() -> None:
    a = message_id_for("FIA-1/followup/L1", "x.org")
    assert a == message_id_for("FIA-1/followup/L1", "x.org") != message_id_for("FIA-1/followup/L1/R1", "x.org")
    assert a.startswith("<casebridge.") and a.endswith("@x.org>")


def test_email_config_accepts_from_alias() -> None:
    cfg = EmailConfig.model_validate({"host": "h", "from": "a@b.co", "to": ["c@d.co"]})
    assert cfg.from_address == "a@b.co" and cfg.effective_port == 587


@contextmanager
def silent_port() -> Iterator[int]:
    """A port whose server accepts the connection and never says a word (a hung mail relay)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(5)
        for s in [*accepted, listener]:
            s.close()

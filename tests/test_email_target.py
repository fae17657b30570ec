"""The mail liaison target, as the NCB's mail admin sees it (issue 19): the server's certificate is
verified on implicit TLS and STARTTLS (an untrusted one fails to send and says to set ca_file; with
ca_file the same server works), SMTP 4xx replies are retried later and 5xx are rejections, refused
recipients are named, a silent server times out, and a resend of the same escalation keeps its
Message-ID. Real SMTP over loopback (aiosmtpd), real TLS."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from casebridge.connectors.email import message_id_for
from casebridge.errors import RejectedError, TrackerUnreachable, TransientError
from tests import test_email
from tests.test_email import Sink, authenticator, escalation, free_port, mailer, server_context, silent_port

# test_email's fixtures (the throw-away CA certificate, the servers, the SMTP password), shared by name.
cert = test_email.cert
starttls_server = test_email.starttls_server
tls_server = test_email.tls_server
password_env = test_email.password_env

KEY = "FIA-1/followup/L1"
MESSAGE_ID = message_id_for(KEY, "fia.example.gov.pk")


@pytest.mark.parametrize("security", ["starttls", "tls"])
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_an_untrusted_server_certificate_fails_to_send_and_ca_file_makes_it_trusted(
    request: pytest.FixtureRequest, tmp_path: Path, cert: tuple[Path, Path], security: str
) -> None:
    sink, port = request.getfixturevalue(f"{security}_server")
    untrusted = mailer(port, tmp_path, None, security=security)
    with pytest.raises(TrackerUnreachable, match=r"certificate not trusted .*set \[liaison\] ca_file"):
        untrusted.post_escalation(escalation())
    assert sink.messages == [] and untrusted.find_escalation(KEY) is None  # nothing sent, nothing recorded
    untrusted.close()
    trusted = mailer(port, tmp_path, cert, security=security)
    posted = trusted.post_escalation(escalation())
    assert len(sink.messages) == 1 and sink.messages[0][1]  # delivered over TLS
    assert posted.key == MESSAGE_ID
    trusted.close()


class Replying(Sink):
    """A server that answers RCPT or DATA with a fixed reply (per recipient for RCPT)."""

    def __init__(self, rcpt: dict[str, str] | None = None, data: str | None = None) -> None:
        super().__init__()
        self.rcpt, self.data = rcpt or {}, data

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        reply = self.rcpt.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self.data or await super().handle_DATA(server, session, envelope)


@pytest.fixture
def replying(cert: tuple[Path, Path]) -> Iterator[Any]:
    controllers: list[Controller] = []

    def start(handler: Replying) -> int:
        port = free_port()
        controller = Controller(
            handler, hostname="127.0.0.1", port=port, tls_context=server_context(cert), require_starttls=True,
            authenticator=authenticator, auth_required=True,
        )  # fmt: skip
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.mark.parametrize(
    ("reply", "error"),
    [("451 4.3.0 try again later", TransientError), ("554 5.7.1 message refused as spam", RejectedError)],
)
def test_a_4xx_reply_is_retried_later_and_a_5xx_reply_is_a_rejection(
    replying: Any, tmp_path: Path, cert: tuple[Path, Path], reply: str, error: type[Exception]
) -> None:
    conn = mailer(replying(Replying(data=reply)), tmp_path, cert)
    with pytest.raises(error, match=reply.split(" ", 1)[0]) as raised:
        conn.post_escalation(escalation())
    assert type(raised.value) is error
    assert reply.split(" ", 2)[2] in str(raised.value)  # the server's own words reach the user
    conn.close()


def test_every_recipient_refused_names_each_with_its_code(replying: Any, tmp_path: Path, cert) -> None:
    handler = Replying(rcpt={"ncb-liaison@ncb.example.org": "550 no such user", "duty@ncb.example.org": "553 no"})
    conn = mailer(replying(handler), tmp_path, cert)
    with pytest.raises(RejectedError, match=r"every recipient was refused: duty@ncb\.example\.org \(553\), "
                                            r"ncb-liaison@ncb\.example\.org \(550\)"):  # fmt: skip
        conn.post_escalation(escalation())
    assert conn.find_escalation(KEY) is None
    conn.close()


def test_one_refused_recipient_is_warned_about_and_the_others_get_the_mail(
    replying: Any, tmp_path: Path, cert, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Replying(rcpt={"duty@ncb.example.org": "550 no such user"})
    conn = mailer(replying(handler), tmp_path, cert)
    with caplog.at_level(logging.WARNING):
        conn.post_escalation(escalation())
    assert [m[0].rcpt_tos for m in handler.messages] == [["ncb-liaison@ncb.example.org"]]
    assert "refused some recipients: duty@ncb.example.org" in caplog.text
    conn.close()


def test_a_server_that_never_answers_times_out_as_unreachable(tmp_path: Path) -> None:
    with silent_port() as port:
        conn = mailer(port, tmp_path, None, timeout=0.3)
        with pytest.raises(TrackerUnreachable, match="could not be reached"):
            conn.post_escalation(escalation())
        conn.close()


def test_a_resend_of_the_same_escalation_keeps_its_message_id(replying: Any, tmp_path: Path, cert) -> None:
    flaky = Replying(data="451 4.3.0 try again later")
    port = replying(flaky)
    conn = mailer(port, tmp_path, cert)
    with pytest.raises(TransientError):
        conn.post_escalation(escalation())
    flaky.data = None  # the server recovers
    posted = conn.post_escalation(escalation())
    assert posted.key == MESSAGE_ID == flaky.parsed()["Message-ID"]
    conn.close()

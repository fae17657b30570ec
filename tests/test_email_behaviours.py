"""More of the mail liaison target as the NCB's mail admin sees it (issue 19, surviving mutants of
connectors/email.py): where the 4xx/5xx line falls, what a rejection says (which server, its words,
decoded and cut short), a connection dropped during DATA, several refused recipients, ``forget``, and
which hosts may take a password without TLS. Real SMTP over loopback (aiosmtpd), real TLS."""

from __future__ import annotations

import logging
import smtplib
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from casebridge.connectors.email import EmailConfig, _reply_error
from casebridge.errors import RejectedError, TransientError
from tests import test_email, test_email_target
from tests.test_email import escalation, mailer, raw_config
from tests.test_email_target import KEY, Replying

cert = test_email.cert
password_env = test_email.password_env
replying = test_email_target.replying


@pytest.mark.parametrize(
    ("code", "error"), [(400, TransientError), (499, TransientError), (500, RejectedError), (599, RejectedError)]
)
def test_the_first_and_last_4xx_codes_are_retried_and_5xx_codes_are_rejections(
    replying: Any, tmp_path: Path, cert: tuple[Path, Path], code: int, error: type[Exception]
) -> None:
    conn = mailer(replying(Replying(data=f"{code} boundary reply")), tmp_path, cert)
    with pytest.raises(error) as raised:
        conn.post_escalation(escalation())
    assert type(raised.value) is error
    conn.close()


def test_a_rejection_names_the_server_and_quotes_its_reply_as_text_cut_short(
    replying: Any, tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    port = replying(Replying(data="554 5.7.1 refused " + "x" * 400))
    conn = mailer(port, tmp_path, cert)
    with pytest.raises(RejectedError) as raised:
        conn.post_escalation(escalation())
    message = str(raised.value)
    assert message.startswith(f"SMTP 127.0.0.1:{port} answered 554: 5.7.1 refused x")
    assert "b'" not in message  # the server's bytes are decoded, not shown as a Python bytes literal
    assert len(message.split(": ", 1)[1]) <= 200  # a runaway reply is cut short
    conn.close()


class Dropping(Replying):
    """Accepts the data, then drops the connection before answering (the mail may have been taken)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await super().handle_DATA(server, session, envelope)
        server.transport.close()
        return "250 OK"


def test_a_connection_dropped_after_the_data_is_resent_next_run_with_the_same_message_id(
    replying: Any, tmp_path: Path, cert: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    dropping = Dropping()
    port = replying(dropping)
    conn = mailer(port, tmp_path, cert)
    with pytest.raises(TransientError) as raised:
        conn.post_escalation(escalation())
    assert str(raised.value) == (
        f"SMTP 127.0.0.1:{port}: connection lost while sending (SMTPServerDisconnected); the message may have "
        "been accepted: the next run sends it again with the same Message-ID"
    )
    assert conn.find_escalation(KEY) is None  # not confirmed: not counted as sent
    attempted = conn.db.execute("SELECT attempted_at FROM sent").fetchone()[0]
    conn.close()
    again = mailer(replying(Replying()), tmp_path, cert)
    with caplog.at_level(logging.WARNING):
        posted = again.post_escalation(escalation())
    assert [r.getMessage() for r in caplog.records if r.name == "casebridge.connectors.email"] == [
        f"escalation {KEY}: a send started at {attempted} was never confirmed; sent again as {posted.key} "
        "(the NCB may receive it twice with the same Message-ID)"
    ]
    assert posted.resent and posted.key == dropping.parsed()["Message-ID"]
    found = again.find_escalation(KEY)  # posted when the resend was confirmed, not at the first attempt
    assert found is not None and found.posted_at == posted.posted_at
    again.close()


def test_several_refused_recipients_are_each_named_in_the_warning(
    replying: Any, tmp_path: Path, cert: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    to = ["ncb-liaison@ncb.example.org", "duty@ncb.example.org", "night@ncb.example.org"]
    handler = Replying(rcpt={"duty@ncb.example.org": "550 no such user", "night@ncb.example.org": "550 gone"})
    port = replying(handler)
    conn = mailer(port, tmp_path, cert, to=to)
    with caplog.at_level(logging.WARNING):
        conn.post_escalation(escalation())
    assert [r.getMessage() for r in caplog.records if r.name == "casebridge.connectors.email"] == [
        f"SMTP 127.0.0.1:{port} refused some recipients: duty@ncb.example.org, night@ncb.example.org"
    ]
    conn.close()


def test_forget_says_whether_there_was_a_record_to_drop(replying: Any, tmp_path: Path, cert) -> None:
    conn = mailer(replying(Replying()), tmp_path, cert)
    assert conn.forget(KEY) is False
    conn.post_escalation(escalation())
    assert conn.forget(KEY) is True
    assert conn.find_escalation(KEY) is None
    conn.close()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "127.0.0.2"])
def test_a_password_without_tls_is_allowed_to_a_loopback_host(tmp_path: Path, host: str) -> None:
    config = EmailConfig.model_validate(raw_config(25, tmp_path, None, host=host, security="none"))
    assert config.host == host


@pytest.mark.parametrize("host", ["mail.ncb.example.org", "192.0.2.25", "localhost.example.org"])
def test_a_password_without_tls_to_any_other_host_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValidationError, match="password would cross the network unencrypted"):
        EmailConfig.model_validate(raw_config(25, tmp_path, None, host=host, security="none"))


def test_a_reply_in_another_charset_is_shown_not_a_crash() -> None:
    """A server answering in Latin-1 (bytes that are not UTF-8) still gets its words to the user."""
    error = _reply_error("SMTP mail.example:587", smtplib.SMTPDataError(554, "refus\xe9 (spam)".encode("latin-1")))
    assert isinstance(error, RejectedError)
    assert str(error) == "SMTP mail.example:587 answered 554: refus\ufffd (spam)"


def test_the_sent_record_reopens_after_close(replying: Any, tmp_path: Path, cert: tuple[Path, Path]) -> None:
    conn = mailer(replying(Replying()), tmp_path, cert)
    posted = conn.post_escalation(escalation())
    conn.close()
    found = conn.find_escalation(KEY)
    assert found is not None and found.key == posted.key
    conn.close()


def test_the_sent_record_stores_utc_on_a_machine_in_another_zone(
    replying: Any, tmp_path: Path, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Karachi")
    time.tzset()
    try:
        conn = mailer(replying(Replying()), tmp_path, cert)
        conn.post_escalation(escalation())
        row = conn.db.execute("SELECT attempted_at, sent_at, recipients FROM sent").fetchone()
        found = conn.find_escalation(KEY)
        conn.close()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert row["attempted_at"].endswith("+00:00") and row["sent_at"].endswith("+00:00")
    assert row["recipients"] == "ncb-liaison@ncb.example.org, duty@ncb.example.org"  # who was mailed, on record
    assert found is not None and found.posted_at.utcoffset() is not None and not found.posted_at.utcoffset()


def test_posting_an_escalation_already_sent_mails_nothing_more(
    replying: Any, tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    sink = Replying()
    conn = mailer(replying(sink), tmp_path, cert)
    first = conn.post_escalation(escalation())
    again = conn.post_escalation(escalation())
    assert len(sink.messages) == 1
    assert again == first and not again.resent
    conn.close()


class Scripted(Replying):
    """Answers each DATA by the next step: "drop" (take the data, drop the connection), a reply line, or
    None (accept)."""

    def __init__(self, *steps: str | None) -> None:
        super().__init__()
        self.steps = list(steps)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        step = self.steps.pop(0) if self.steps else None
        if step == "drop":
            await super().handle_DATA(server, session, envelope)
            server.transport.close()
            return "250 OK"
        return step or await super().handle_DATA(server, session, envelope)


def test_a_rejected_send_leaves_no_trace_and_the_next_send_is_not_called_a_resend(
    replying: Any, tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    conn = mailer(replying(Scripted("554 5.7.1 refused", None)), tmp_path, cert)
    with pytest.raises(RejectedError):
        conn.post_escalation(escalation())
    posted = conn.post_escalation(escalation())
    assert not posted.resent
    conn.close()


def test_a_send_that_may_have_arrived_is_still_reported_as_resent_after_a_later_rejection(
    replying: Any, tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    conn = mailer(replying(Scripted("drop", "451 4.3.0 try later", None)), tmp_path, cert)
    with pytest.raises(TransientError, match="connection lost"):
        conn.post_escalation(escalation())
    with pytest.raises(TransientError, match="451"):
        conn.post_escalation(escalation())
    posted = conn.post_escalation(escalation())
    assert posted.resent  # the NCB may hold the first copy: the officer is told
    conn.close()

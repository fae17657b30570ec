"""The escalation mail as the NCB liaison officer's mailbox receives it (issue 19, mutants of
connectors/email.py that no test reached): the exact header set and values, the Date in UTC whatever
the machine's zone, both parts quoted-printable, the HTML part titled like the subject, the Message-ID
stable across versions, and hostile case data (CR/LF, encoded words nested deep, long or non-ASCII
text) made into one-line headers. No server needed: ``build_message`` is what goes out."""

from __future__ import annotations

import base64
import datetime as dt
import email
import time
from email import policy
from pathlib import Path

import pytest

from casebridge.connectors import Escalation
from casebridge.connectors.email import header_text, message_id_for
from tests.test_email import NOW, escalation, mailer
from tests.test_email_headers import HEADERS

AT = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=5)))  # 00:06:07 UTC


def b_word(text: str, depth: int = 1) -> str:
    for _ in range(depth):
        text = "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="
    return text


def received(msg: email.message.EmailMessage) -> email.message.EmailMessage:
    """The message as the receiving mailbox parses it from the bytes on the wire."""
    return email.message_from_bytes(msg.as_bytes(), policy=policy.default)  # type: ignore[return-value]


def test_the_mail_carries_exactly_the_expected_headers_spelled_as_rfc_5322_and_the_tool_writes_them(
    tmp_path: Path,
) -> None:
    msg = received(mailer(25, tmp_path, None).build_message(escalation(), at=AT))
    assert msg.keys() == HEADERS  # names exactly as written (some ticket mail-ins match them case-sensitively)
    assert msg["From"] == "casebridge@fia.example.gov.pk"
    assert msg["To"] == "ncb-liaison@ncb.example.org, duty@ncb.example.org"
    assert msg["Auto-Submitted"] == "auto-generated"  # RFC 3834: out-of-office replies are not sent back
    assert msg["X-Casebridge-Dedupe-Key"] == "FIA-1/followup/L1"
    assert msg["X-Casebridge-Case"] == "FIA-1"
    assert msg["X-Casebridge-Level"] == "1"
    assert msg["Message-ID"] == message_id_for("FIA-1/followup/L1", "fia.example.gov.pk")
    assert msg["Subject"] == "[NCB] NCB escalation L1: FIA-1: Provider follow-up overdue: plain facts"


def test_the_date_header_is_the_send_instant_in_utc_whatever_the_machine_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = mailer(25, tmp_path, None)
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        msg = received(conn.build_message(escalation(), at=AT))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert msg["Date"] == "Wed, 04 Mar 2026 00:06:07 +0000"


def test_both_parts_are_quoted_printable_and_the_html_part_is_titled_like_the_subject(tmp_path: Path) -> None:
    msg = received(mailer(25, tmp_path, None).build_message(escalation("Zahlung über 5 000 €"), at=NOW))
    plain, html = list(msg.iter_parts())
    assert [plain["Content-Transfer-Encoding"], html["Content-Transfer-Encoding"]] == ["quoted-printable"] * 2
    assert str(plain["Content-Type"]).startswith("text/plain") and str(html["Content-Type"]).startswith("text/html")
    assert "Zahlung über 5 000 €" in plain.get_content() and "Zahlung über 5 000 €" in html.get_content()
    assert f"<title>{msg['Subject']}</title>" in html.get_content()


def test_a_configured_message_id_domain_is_used_for_the_message_id(tmp_path: Path) -> None:
    conn = mailer(25, tmp_path, None, message_id_domain="ncb-mail.example.org")
    msg = conn.build_message(escalation(), at=NOW)
    assert msg["Message-ID"] == message_id_for("FIA-1/followup/L1", "ncb-mail.example.org")
    assert msg["Message-ID"].endswith("@ncb-mail.example.org>")


def test_the_message_id_of_an_escalation_never_changes_between_versions() -> None:
    # a receiver that deduplicates on Message-ID must see a resend after an upgrade as the same mail
    assert message_id_for("FIA-1/followup/L1", "fia.example.gov.pk") == (
        "<casebridge.dcd420cb27a9dda64ee3eaa6ae36921731a28578@fia.example.gov.pk>"
    )


def test_a_long_title_is_cut_to_250_characters_in_the_subject(tmp_path: Path) -> None:
    esc = Escalation(**{**escalation().__dict__, "title": "Überweisung " + "x" * 400})
    msg = received(mailer(25, tmp_path, None).build_message(esc, at=NOW))
    assert len(msg["Subject"]) == 250 and msg["Subject"].startswith("[NCB] Überweisung xxx")
    assert msg["Subject"].endswith("…")
    assert header_text("y" * 300) == "y" * 249 + "…"  # the default limit too


def test_a_level_two_escalation_says_level_2(tmp_path: Path) -> None:
    esc = Escalation(**{**escalation().__dict__, "level": 2})
    assert mailer(25, tmp_path, None).build_message(esc, at=NOW)["X-Casebridge-Level"] == "2"


def test_crlf_in_a_case_reference_and_dedupe_key_cannot_add_a_header(tmp_path: Path) -> None:
    esc = Escalation(
        **{
            **escalation().__dict__,
            "case_reference": "FIA-1\r\nBcc: all@ncb.example.org",
            "dedupe_key": "K\nReply-To: " + b_word("x\r\nCc: y@z.example"),
        }
    )
    msg = received(mailer(25, tmp_path, None).build_message(esc, at=NOW))
    assert msg.keys() == HEADERS
    assert msg["X-Casebridge-Case"] == "FIA-1 Bcc: all@ncb.example.org"
    assert msg["X-Casebridge-Dedupe-Key"] == "K Reply-To: x Cc: y@z.example"


def test_encoded_words_nested_eight_deep_are_decoded_and_cleaned() -> None:
    assert header_text(b_word("a\r\nb", depth=8), limit=5000) == "a b"


def test_encoded_words_nested_deeper_are_broken_up_so_nothing_is_decoded_later() -> None:
    value = header_text(b_word("a\r\nb", depth=9), limit=5000)
    assert value == "= ?UTF-8?B?YQ0KYg== ?="
    assert "=?" not in value


def test_a_non_ascii_name_in_a_title_reads_back_as_itself() -> None:
    assert header_text("Ärztekammer Łódź — 東京") == "Ärztekammer Łódź — 東京"


def test_a_header_limit_above_the_field_default_is_the_limit_applied() -> None:
    long = "z" * 4500  # longer than a dossier field (4000): a header asked for 5000 keeps all of it
    assert header_text(long, limit=5000) == long
    deep = b_word("a\r\nb", depth=9) + " " + long
    assert header_text(deep, limit=6000) == "= ?UTF-8?B?YQ0KYg== ?= " + long


def test_a_dossier_mostly_in_another_script_is_still_quoted_printable_in_both_parts(tmp_path: Path) -> None:
    # left to the library, mostly non-Latin text would go out base64: unreadable in the raw mail a mail
    # admin inspects, and a different encoding per case; casebridge always sends quoted-printable
    msg = received(mailer(25, tmp_path, None).build_message(escalation("國際刑警組織 緊急 請求 " * 40), at=NOW))
    assert [part["Content-Transfer-Encoding"] for part in msg.iter_parts()] == ["quoted-printable"] * 2

"""The header set of every escalation mail is fixed whatever the case data (issue 11, item 1).

Hostile titles, references and dedupe keys, including RFC 2047 encoded words whose *decoded* text holds
CR/LF (the email library decodes them when a header is set), are sent to a real SMTP server (aiosmtpd
on loopback) and what arrived is parsed: exactly the expected header names, each once, body intact."""

from __future__ import annotations

import base64
import email
import itertools
import quopri
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casebridge.connectors import Escalation
from casebridge.connectors.email import header_text, message_id_for
from tests.test_email import Sink, escalation, free_port, mailer

# the header set every escalation mail carries, in the order it is written
HEADERS = [
    "Subject",
    "From",
    "To",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "X-Casebridge-Dedupe-Key",
    "X-Casebridge-Case",
    "X-Casebridge-Level",
    "MIME-Version",
    "Content-Type",
]
EXPECTED = sorted(HEADERS)
INJECTION = "x\r\nReply-To: evil@attacker.example\r\nBcc: victim@example.com\r\n\r\nFAKE: closed, no action."
BREAKERS = ["\r", "\n", "\r\n", "\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x00", ": ", "?="]
_counter = itertools.count()


def b_word(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def q_word(text: str) -> str:
    return "=?utf-8?q?" + quopri.encodestring(text.encode(), header=True).decode().replace("\n", "") + "?="


@st.composite
def hostile(draw: st.DrawFn) -> str:
    """Text with line breaks and controls, often wrapped in (nested) encoded words."""
    base = draw(
        st.one_of(
            st.just(INJECTION),
            st.lists(
                st.one_of(
                    st.sampled_from(
                        ["\r", "\n", "\r\n", "\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x00", ": ", "?="]
                    ),
                    st.characters(codec="utf-8", exclude_categories=["Cs"]),
                ),
                max_size=40,
            ).map("".join),
        )
    )
    for _ in range(draw(st.integers(0, 3))):
        base = draw(st.sampled_from([b_word, q_word]))(base)
    return draw(st.sampled_from(["{}", "Case {} title", "{} {}", "REF-{}"])).format(base, base)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def test_an_encoded_word_with_crlf_is_decoded_then_cleaned() -> None:
    value = header_text("Case " + b_word(INJECTION))
    assert "\r" not in value and "\n" not in value
    assert value == "Case x Reply-To: evil@attacker.example Bcc: victim@example.com FAKE: closed, no action."
    assert header_text(b_word(b_word("a\r\nb"))) == "a b"  # nested
    assert header_text("=?x?=") == "=?x?="  # not an encoded word: unchanged


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=hostile(), reference=hostile(), key=hostile())
def test_the_header_set_is_fixed_whatever_the_case_data(smtp, tmp_path_factory, title, reference, key) -> None:
    sink, port = smtp
    tmp: Path = tmp_path_factory.mktemp("mail")
    conn = mailer(port, tmp, None, security="none", username=None, password=None)
    dedupe_key = f"{key[:100]}/{next(_counter)}"
    esc = Escalation(
        **{**escalation().__dict__, "title": title, "case_reference": reference[:100], "dedupe_key": dedupe_key}
    )
    before = len(sink.messages)
    posted = conn.post_escalation(esc)
    conn.close()
    assert len(sink.messages) == before + 1
    raw = sink.messages[-1][0].content
    for parse_policy in (policy.compat32, policy.default):
        msg = email.message_from_bytes(raw, policy=parse_policy)
        assert sorted(msg.keys()) == EXPECTED, msg.keys()
    msg = sink.parsed()
    assert msg["Message-ID"] == posted.key == message_id_for(dedupe_key, "fia.example.gov.pk")
    assert msg["From"] == "casebridge@fia.example.gov.pk" and msg["X-Casebridge-Level"] == "1"
    assert msg["X-Casebridge-Dedupe-Key"] == header_text(dedupe_key)
    assert msg["X-Casebridge-Case"] == header_text(reference[:100])
    for name in EXPECTED:
        assert "\n" not in str(msg[name]) and "\r" not in str(msg[name])
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    plain = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "INTERPOL NCB escalation" in plain and "Policy for this level" in plain

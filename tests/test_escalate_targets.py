"""`casebridge escalate` end to end, per liaison target, through the real CLI and a real casebridge.toml:
the embedded tracker holding the cases with the SMTP liaison target (a real aiosmtpd server on loopback
with STARTTLS and AUTH), and ``--dry-run`` against what ``escalate --yes`` then posts.

Jira: tests/test_escalate_targets_jira.py. Redmine: tests/test_escalate_targets_redmine.py.
"""

from __future__ import annotations

import base64
import email
import json
import os
import signal
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from casebridge.workflows.render import to_plain
from tests.cli_runner import Cli
from tests.escalate_e2e import (
    BLOCKED,
    EXAMPLES,
    EXPECTED_KEYS,
    HOSTILE_TEXT,
    INTAKE_NOW,
    NOW,
    STATE_AFTER,
    dry_run_dossiers,
    hostile_examples,
    inert_html_text,
    posted_keys,
    spawn,
    write_config,
)
from tests.test_email import PASSWORD, USER, Sink

pytest_plugins = ["tests.smtp_fixtures"]
PASSWORD_ENV = "CB_E2E_SMTP_PASSWORD"
FROM, TO = "casebridge@fia.example.gov.pk", "ncb-liaison@ncb.example.org"


@pytest.fixture(autouse=True)
def in_tmp(cli_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return cli_dir


def mail_config(tmp_path: Path, port: int, cert_files: tuple[Path, Path]) -> Path:
    return write_config(
        tmp_path,
        {"connector": "local", "path": "casebridge.db"},
        {
            "connector": "email",
            "host": "127.0.0.1",
            "port": port,
            "security": "starttls",
            "username": USER,
            "password": {"env": PASSWORD_ENV},
            "from": FROM,
            "to": [TO],
            "subject_prefix": "[NCB]",
            "sent_record": "casebridge-mail.sqlite",
            "ca_file": str(cert_files[0]),
        },
    )


def tracker(tmp_path: Path) -> LocalConnector:
    return LocalConnector(LocalConfig(path=str(tmp_path / "casebridge.db")), load_workflow())


def case_states(tmp_path: Path) -> dict[str, str]:
    cases = tracker(tmp_path)
    try:
        return {c.case.reference: c.state for c in cases.list_cases()}
    finally:
        cases.close()


def messages(sink: Sink) -> list[EmailMessage]:
    return [email.message_from_bytes(m[0].content, policy=policy.default) for m in sink.messages]  # type: ignore[misc]


def keys_of(sink: Sink) -> list[str]:
    return sorted(m["X-Casebridge-Dedupe-Key"] for m in messages(sink))


def part(msg: EmailMessage, subtype: str) -> str:
    return msg.get_body(preferencelist=(subtype,)).get_content()  # type: ignore[union-attr]


def secret_forms(password: str) -> list[str]:
    """The password and the encodings an SMTP AUTH exchange would carry it in."""
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    return [password, b64(password), b64(f"\0{USER}\0{password}")]


# ---------------------------------------------------------------------------------------------- SMTP
def test_smtp_posts_one_mail_per_breached_clock_then_none(
    cli: Cli, tmp_path: Path, starttls_server: tuple[Sink, int], cert: Any
) -> None:
    sink, port = starttls_server
    mail_config(tmp_path, port, cert)
    assert cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)[0] == 0

    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert code == 1  # FIA-CCW-2026-0159 has no Article 3 self-check
    assert data["blocked_cases"] == BLOCKED
    assert posted_keys(data) == EXPECTED_KEYS
    assert keys_of(sink) == sorted(EXPECTED_KEYS)
    for envelope, over_tls, authenticated in sink.messages:
        assert over_tls and authenticated and envelope.rcpt_tos == [TO] and envelope.mail_from == FROM
    by_key = {m["X-Casebridge-Dedupe-Key"]: m for m in messages(sink)}
    for outcome in data["outcomes"]:
        assert outcome["posted_key"] == by_key[outcome["dedupe_key"]]["Message-ID"]  # what --json reports
        assert outcome["case_state"] == STATE_AFTER[outcome["reference"]]
    # the case side, in the embedded tracker: escalated, linked to the mail, a comment naming it
    cases = tracker(tmp_path)
    for key, msg in by_key.items():
        case = cases.find_case(key.split("/")[0])
        assert case is not None and case.state == STATE_AFTER[case.case.reference]
        assert [posted for posted, _ in cases.links(case.key)] == [msg["Message-ID"]]
        assert msg["Message-ID"] in to_plain(cases.comments(case.key)[-1])
    assert cases.liaison_items() == []  # the mail target was used, not the embedded queue
    cases.close()

    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert code == 1 and posted_keys(data) == set()
    assert len(sink.messages) == 3
    code, out, _ = cli("escalate", "--yes", "--now", NOW)
    assert "0 posted, 3 already posted, 0 failed, 1 blocked" in out
    assert len(sink.messages) == 3


def test_smtp_hostile_case_data_is_inert_in_the_html_part(
    cli: Cli, tmp_path: Path, starttls_server: tuple[Sink, int], cert: Any
) -> None:
    sink, port = starttls_server
    mail_config(tmp_path, port, cert)
    assert cli("intake", str(hostile_examples(tmp_path)), "--now", INTAKE_NOW)[0] == 0
    _, data = cli.json("escalate", "--yes", "--now", NOW)
    assert posted_keys(data) == EXPECTED_KEYS, data
    first_line = " ".join(HOSTILE_TEXT.split())[:120]
    for msg in messages(sink):
        html = part(msg, "html")
        text = inert_html_text(html)
        assert "<script>alert('xss')</script>" in text  # shown as text...
        assert "<script" not in html and "<iframe" not in html and "onerror=" not in html.replace("onerror=alert", "")
        assert first_line[:60] in text
        assert "<script>alert('xss')</script>" in part(msg, "plain")
        assert "\n" not in msg["Subject"] and msg["Bcc"] is None


def test_smtp_killed_after_the_server_accepted_is_resent_never_lost(
    tmp_path: Path, starttls_server: tuple[Sink, int], cert: Any, cli: Cli
) -> None:
    sink, port = starttls_server
    mail_config(tmp_path, port, cert)
    assert cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)[0] == 0
    sink.hold = True  # the server has the first message but does not answer until the process is dead
    child = spawn(tmp_path, "-vv", "escalate", "--yes", "--now", NOW)
    try:
        assert sink.received.wait(timeout=120), "the escalate process never delivered"
        os.kill(child.pid, signal.SIGKILL)
        out, err = child.communicate()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    sink.hold = False
    assert keys_of(sink) == ["FIA-CCW-2026-0151/legal_deadline/L2"]  # threat to life goes first

    rerun = spawn(tmp_path, "-vv", "escalate", "--yes", "--json", "--now", NOW)
    out2, err2 = rerun.communicate(timeout=300)
    assert rerun.returncode == 1, err2  # 1: the blocked case
    first = "FIA-CCW-2026-0151/legal_deadline/L2"
    assert keys_of(sink) == sorted([*EXPECTED_KEYS, first])  # the unconfirmed one went out again...
    ids = [m["Message-ID"] for m in messages(sink) if m["X-Casebridge-Dedupe-Key"] == first]
    assert len(ids) == 2 and ids[0] == ids[1]  # ...with the same Message-ID...
    outcomes = {o["dedupe_key"]: o for o in json.loads(out2)["outcomes"]}
    assert outcomes[first]["status"] == "resent"  # ...and reported as a resend
    assert {k for k, o in outcomes.items() if o["status"] == "posted"} == EXPECTED_KEYS - {first}
    cases = tracker(tmp_path)
    case = cases.find_case("FIA-CCW-2026-0151")
    assert case is not None and case.state == "escalated"  # the case side was repaired on the rerun
    assert len(cases.links(case.key)) == 1
    cases.close()
    again = spawn(tmp_path, "escalate", "--yes", "--now", NOW)
    out3, _ = again.communicate(timeout=300)
    assert "0 posted, 3 already posted" in out3 and len(sink.messages) == 4
    for text in (out, err, out2, err2, out3):
        for form in secret_forms(PASSWORD):
            assert form not in text


def test_smtp_password_never_shown_at_debug_verbosity(
    cli: Cli, tmp_path: Path, starttls_server: tuple[Sink, int], cert: Any
) -> None:
    sink, port = starttls_server
    mail_config(tmp_path, port, cert)
    assert cli("-vv", "intake", str(EXAMPLES), "--now", INTAKE_NOW)[0] == 0
    code, out, err = cli("-vv", "escalate", "--yes", "--now", NOW)
    assert code == 1 and len(sink.messages) == 3
    assert "DEBUG" in err or "INFO" in err  # -vv really logged
    for form in secret_forms(PASSWORD):
        assert form not in out and form not in err


def test_smtp_wrong_password_is_one_line_and_posts_nothing(
    cli: Cli,
    tmp_path: Path,
    starttls_server: tuple[Sink, int],
    cert: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, port = starttls_server
    mail_config(tmp_path, port, cert)
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    monkeypatch.setenv(PASSWORD_ENV, "wrong-password-4711")
    code, out, err = cli("-vv", "escalate", "--yes", "--now", NOW)
    assert code == 1 and sink.messages == []
    assert "refused the login of 'liaison'" in err  # failures go to stderr
    assert "wrong-password-4711" not in out + err
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)  # fixed: the next run posts all three
    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert posted_keys(data) == EXPECTED_KEYS and len(sink.messages) == 3


# ------------------------------------------------------------------------------------------ --dry-run
def test_dry_run_posts_nothing_and_prints_what_escalate_then_posts_embedded(cli: Cli, tmp_path: Path) -> None:
    write_config(tmp_path, {"connector": "local", "path": "casebridge.db"})
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    before = case_states(tmp_path)
    code, text, _ = cli("escalate", "--dry-run", "--now", NOW)
    assert code == 1
    shown = dry_run_dossiers(text)
    code, planned = cli.json("escalate", "--dry-run", "--now", NOW)
    cases = tracker(tmp_path)
    assert cases.liaison_items() == []  # posted nothing...
    assert all(cases.comments(c.key) == [] and cases.links(c.key) == [] for c in cases.list_cases())
    cases.close()
    assert case_states(tmp_path) == before  # ...and moved no case
    assert set(shown) == {p["dedupe_key"] for p in planned["planned"]} == EXPECTED_KEYS
    # text and JSON agree: the text view shows the JSON's Markdown as the NCB reads it (plain text)
    assert {p["dedupe_key"]: to_plain(p["markdown"]).strip("\n") for p in planned["planned"]} == shown

    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert posted_keys(data) == EXPECTED_KEYS
    cases = tracker(tmp_path)
    posted = {p.dedupe_key: cases.liaison_markdown(p.dedupe_key) for p in cases.liaison_items()}
    cases.close()
    assert posted == {p["dedupe_key"]: p["markdown"] for p in planned["planned"]}  # exactly what was shown
    code, text, _ = cli("escalate", "--dry-run", "--now", NOW)
    assert "would post" not in text and text.count("already posted: ") == 3


def test_dry_run_posts_no_mail_and_prints_what_is_then_mailed(
    cli: Cli, tmp_path: Path, starttls_server: tuple[Sink, int], cert: Any
) -> None:
    sink, port = starttls_server
    mail_config(tmp_path, port, cert)
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    _, text, _ = cli("escalate", "--dry-run", "--now", NOW)
    shown = dry_run_dossiers(text)
    assert set(shown) == EXPECTED_KEYS and sink.messages == []
    cli.json("escalate", "--yes", "--now", NOW)
    mailed = {m["X-Casebridge-Dedupe-Key"]: m for m in messages(sink)}
    assert set(mailed) == set(shown)
    for key, plain in shown.items():
        assert part(mailed[key], "plain").strip().splitlines() == plain.strip().splitlines()

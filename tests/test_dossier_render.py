"""The dossier's content, and case data staying inert text in every rendered target.

Oracles: Python-Markdown (HTML), markdown-it-py (a CommonMark parser, for the Redmine Markdown) and
python-textile (a Textile parser close to Redmine's RedCloth). Jira has no parser here: its output is
checked by un-escaping it with Jira's own rules and by the absence of unescaped markup characters.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
import textile as textile_lib
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from casebridge.workflows.cases import StatusChange, TrackedCase
from casebridge.workflows.escalation import plan_escalations
from casebridge.workflows.render import (
    MAX_FIELD_CHARS,
    Node,
    clean_text,
    md_text,
    parse,
    to_adf,
    to_html,
    to_jira_wiki,
    to_plain,
    to_redmine,
)
from casebridge.workflows.render_targets import commonmark_escape, jira_escape, textile_escape
from tests.factories import T0, make_case
from tests.hostile_cases import HOSTILE, hostile_case, huge_case, long_case
from tests.test_escalation import EMERGENCY, WF, FakeClock, breached, target

NOW = T0 + timedelta(hours=12)
CASE_URL = "https://tracker.example/issues/42"
ALLOWED_HTML_TAGS = {"h1", "h2", "h3", "p", "ul", "li", "strong", "table", "thead", "tbody", "tr", "th", "td", "a"}

AWKWARD = st.text(
    st.sampled_from(list("<>&*_`#[]()!|\\-+.=~^?{}:;'\"/@% \n\t\r\x00\x1b\u202eabcZ19é مשh")) | st.characters(),
    max_size=120,
)


def full_case(**overrides: Any):
    fields: dict[str, Any] = {
        "request_type": "emergency",
        "legal_basis": "eu-epo",
        "urgency": "threat_to_life",
        "provider_ticket": "LERS-8841203",
        "outcome": "refused",
        "refusal_text": "Request does not meet our emergency criteria.\nPlease use MLAT.",
        "court": "Judicial Magistrate, Islamabad",
        "penalty": "up to 7 years",
        "preservation_expires_at": "2027-01-31T00:00:00Z",
        "identifiers": [
            {
                "type": "email",
                "value": "suspect@example.com",
                "from": "2026-08-01T00:00:00Z",
                "to": "2026-10-15T00:00:00Z",
            }
        ],
        "handling_restrictions": "Minor victim: do not disclose identity",
        "ncb_action": "Ask NCB Dublin to call Meta's emergency line",
    }
    fields.update(overrides)
    return make_case("FIA-CCW-2026-0142", **fields)


def dossier(case, clocks=None, url: str | None = CASE_URL) -> str:
    history = [StatusChange(T0, "submitted"), StatusChange(T0 + timedelta(hours=1), "acknowledged")]
    tracked = TrackedCase("42", case, "acknowledged", T0, history=history, url=url)
    clocks = clocks or [breached(*EMERGENCY, 4 * 3600, due=T0 + timedelta(hours=8))]
    plan = plan_escalations([(tracked, clocks)], WF, now=NOW)
    assert len(plan) == 1, plan
    return plan.escalations[0].markdown


# ------------------------------------------------------------------------------------------- contents
def test_dossier_carries_what_an_ncb_needs() -> None:
    text = " ".join(to_plain(dossier(full_case())).split())  # wrapped lines joined
    for expected in [
        "INTERPOL NCB escalation: FIA-CCW-2026-0142",
        "Level 2: NCB head of bureau",
        "Dedupe key: FIA-CCW-2026-0142/legal_deadline/L2",
        "Ask NCB Dublin to call Meta's emergency line",  # the case's own ask...
        "Policy for this level: Second escalation: still no answer",  # ...and the policy's
        "Threat to life: YES",
        "Agency: FIA Cyber Crime Wing",
        "Officer: Insp. A. Khan",
        "Officer e-mail: a.khan@example.gov.pk",
        "Offence: Extortion via social media",
        "Statute: PECA 2016 s.21",
        "Penalty: up to 7 years",
        "Victim received threats from the account.",
        "Legal entity: Meta Platforms Ireland Ltd",
        "Value: suspect@example.com",
        "From: 2026-08-01 00:00 UTC (2026-08-01 05:00 Asia/Karachi)",
        "Identifiers (times in UTC and Asia/Karachi)",
        "Provider ticket: LERS-8841203",
        "Request does not meet our emergency criteria.",
        "Please use MLAT.",
        "Court order: CO-2026-77",
        "Court: Judicial Magistrate, Islamabad",
        "Preservation expires: 2027-01-31 00:00 UTC (2027-01-31 05:00 Asia/Karachi)",
        "Legal deadline due: 2026-11-02 17:00 UTC (2026-11-02 22:00 Asia/Karachi)",
        "Overdue by: 4 h",
        "Reg. (EU) 2023/1543 Art. 10(4): emergency production within 8 hours of receipt",
        "On lapse: escalate at once",
        "State: Acknowledged",  # case history
        "Confirmed by Insp. A. Khan on 2026-11-02 09:00 UTC",
        "(INTERPOL Constitution, Article 3)",
        "Minor victim: do not disclose identity",
        f"FIA-CCW-2026-0142 <{CASE_URL}>",
    ]:
        assert expected in text, expected


def test_default_handling_restrictions_and_requesting_ncb() -> None:
    from casebridge.workflows.escalation import EscalationConfig

    tracked = TrackedCase("1", make_case("R-1"), "acknowledged", T0)
    clocks = [breached("subscriber", "voluntary", "followup", 3600)]
    config = EscalationConfig(requesting_ncb="NCB Islamabad")
    md = plan_escalations([(tracked, clocks)], WF, now=NOW, config=config).escalations[0].markdown
    assert "**Requesting NCB:** NCB Islamabad" in md and "For police use only" in md


# -------------------------------------------------------------------------------- escaping, property
def _only_paragraph_text(root: Node) -> str:
    blocks = [c for c in root.children if not (isinstance(c, str) and not c.strip())]
    if not blocks:
        return ""
    assert len(blocks) == 1 and isinstance(blocks[0], Node) and blocks[0].tag == "p", blocks
    assert all(isinstance(c, str) for c in blocks[0].children), blocks[0]  # no markup at all
    return blocks[0].text()


@settings(max_examples=300, deadline=None)
@given(AWKWARD)
def test_md_text_renders_back_to_exactly_the_text(value: str) -> None:
    assert _only_paragraph_text(parse(md_text(value))) == clean_text(value)
    cell = parse(f"| h |\n|---|\n| {md_text(value)} |")
    assert cell.children[0].tag == "table"  # type: ignore[union-attr]
    assert [n.text() for n in _iter(cell) if n.tag == "td"] == [clean_text(value)]
    item = parse(f"- **Label:** {md_text(value)}")
    assert item.text().strip() == f"Label: {clean_text(value)}".strip()


def _iter(node: Node):
    yield node
    for c in node.children:
        if isinstance(c, Node):
            yield from _iter(c)


def jira_unescape(text: str) -> str:
    return html.unescape(re.sub(r"\\(.)", r"\1", text))


@settings(max_examples=300, deadline=None)
@given(AWKWARD)
def test_jira_escape_leaves_no_markup_character_bare(value: str) -> None:
    text = clean_text(value)
    escaped = jira_escape(text)
    assert jira_unescape(escaped) == text
    bare = re.sub(r"\\.|&#\d+;|&amp;", "", escaped)  # escapes and entities removed
    assert not set(bare) & set("*_-+^~?|[]{}()!#\\"), bare
    if text:
        assert jira_unescape(to_jira_wiki(md_text(value))).strip() == text


@settings(max_examples=300, deadline=None)
@given(AWKWARD)
def test_commonmark_output_parses_back_to_text(value: str) -> None:
    text = clean_text(value)
    tokens = MarkdownIt("commonmark").parse(commonmark_escape(text))
    inline = [t for t in tokens if t.type == "inline"]
    kinds = {c.type for t in inline for c in (t.children or [])}
    assert kinds <= {"text", "softbreak"}, kinds
    assert "".join(c.content for t in inline for c in (t.children or [])) == text


def textile_text(rendered: str) -> str:
    """Text of python-textile's HTML; its typographic "caps" spans (not markup from data) removed."""
    rendered = re.sub(r'<span class="caps">([^<]*)</span>', r"\1", rendered)
    assert not set(re.findall(r"<\s*/?\s*([a-zA-Z0-9]+)", rendered)) - {"p", "br"}, rendered
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


@settings(max_examples=200, deadline=None)
@given(AWKWARD)
def test_textile_output_renders_to_plain_text(value: str) -> None:
    text = clean_text(value)
    if text:
        assert textile_text(textile_lib.textile("p. " + textile_escape(text))).strip() == text


# ------------------------------------------------------------------------------------ hostile corpus
@pytest.fixture(params=[name for name, _ in HOSTILE])
def hostile(request: pytest.FixtureRequest) -> tuple[str, str]:
    return dict(HOSTILE)[request.param], request.param


def _html_tree_checks(rendered: str, allowed: set[str]) -> str:
    from casebridge.workflows.render import _TreeBuilder

    builder = _TreeBuilder()
    builder.feed(rendered)
    tags = {n.tag for n in _iter(builder.root)} - {"root"}
    assert tags <= allowed, tags - allowed
    for n in _iter(builder.root):
        if n.tag == "a":
            assert n.attrs == {"href": CASE_URL}, n.attrs
        else:
            assert n.attrs == {} or set(n.attrs) <= {"style"}, (n.tag, n.attrs)
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


def test_hostile_data_is_inert_in_html_and_plain(hostile: tuple[str, str]) -> None:
    value, name = hostile
    md = dossier(hostile_case(value))
    text = _html_tree_checks(to_html(md), ALLOWED_HTML_TAGS)
    first_line = clean_text(value.split("\n")[0])
    assert first_line in text, name
    assert first_line in to_plain(md).replace("\n", " ") or first_line in to_plain(md, width=10_000)


def test_hostile_data_is_inert_in_redmine_commonmark(hostile: tuple[str, str]) -> None:
    value, name = hostile
    out = to_redmine(dossier(hostile_case(value)), "common_mark")
    md = MarkdownIt("commonmark").enable("table")
    tokens = [t for tok in md.parse(out) for t in [tok, *(tok.children or [])]]
    assert not [t for t in tokens if t.type in {"html_inline", "html_block", "image", "code_inline", "fence"}]
    assert {t.attrs.get("href") for t in tokens if t.type == "link_open"} <= {CASE_URL}
    text = _html_tree_checks(md.render(out), ALLOWED_HTML_TAGS)
    assert clean_text(value.split("\n")[0]) in text, name


def test_hostile_data_is_inert_in_redmine_textile(hostile: tuple[str, str]) -> None:
    value, name = hostile
    rendered = textile_lib.textile(to_redmine(dossier(hostile_case(value)), "textile"))
    rendered = re.sub(r'<span class="caps">([^<]*)</span>', r"\1", rendered)  # python-textile typography
    tags = set(re.findall(r"<\s*([a-zA-Z0-9]+)", rendered))
    assert tags <= ALLOWED_HTML_TAGS | {"br"}, tags
    assert set(re.findall(r'href="([^"]*)"', rendered)) <= {CASE_URL}
    assert "onerror" not in re.sub(r"&[^;]+;|[^<]*", "", rendered)  # never inside a tag
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    assert clean_text(value.split("\n")[0]) in text, name


def test_hostile_data_is_inert_in_jira_wiki(hostile: tuple[str, str]) -> None:
    value, name = hostile
    md = dossier(hostile_case(value))
    out = to_jira_wiki(md)
    headings = [line for line in out.splitlines() if re.match(r"^h\d\. ", line)]
    assert len(headings) == len(re.findall(r"^#+ ", md, re.M))  # only the dossier's own headings
    for line in out.splitlines():
        assert not re.match(r"^(bq|fn\d+)\.|^[#-]|^\* (?!\*)", line), line  # no quote/list/rule from data
    assert "{code}" not in out and "{noformat}" not in out and "[~" not in out
    links = re.findall(r"(?<!\\)\[([^\]]*)\]", out)
    assert all(link.endswith("|" + CASE_URL) for link in links), links
    assert clean_text(value.split("\n")[0]) in jira_unescape(out), name


def test_hostile_data_is_inert_in_adf(hostile: tuple[str, str]) -> None:
    value, name = hostile
    doc = to_adf(dossier(hostile_case(value)))
    texts, marks = [], []

    def walk(node: dict[str, Any]) -> None:
        if node.get("type") == "text":
            assert node["text"], "ADF rejects empty text nodes"
            texts.append(node["text"])
            marks.extend(node.get("marks", []))
        for child in node.get("content", []):
            walk(child)

    walk(doc)
    assert {m["type"] for m in marks} <= {"strong", "link"}
    assert {m["attrs"]["href"] for m in marks if m["type"] == "link"} <= {CASE_URL}
    assert clean_text(value.split("\n")[0]) in "".join(texts), name


def test_rtl_text_survives_and_bidi_overrides_do_not() -> None:
    value = dict(HOSTILE)["rtl"] + " " + dict(HOSTILE)["bidi-override"]
    md = dossier(hostile_case(value))
    for out in [to_html(md), to_plain(md), to_jira_wiki(md), to_redmine(md), str(to_adf(md))]:
        assert "مرحبا بالعالم" in out and "שלום עולם" in out
        assert "\u202e" not in out and "\u2066" not in out


def test_long_and_huge_fields_are_capped() -> None:
    md = dossier(long_case())
    assert "lorem" in to_plain(md) and len(md) < 200_000
    huge = dossier(huge_case())
    assert len(huge) < 3 * MAX_FIELD_CHARS + 20_000  # capped: the facts alone were 216,000 characters
    assert "…" in to_plain(huge)
    assert "<script" not in to_html(huge)


def test_non_http_urls_are_never_links() -> None:
    md = dossier(
        make_case("R-1"), clocks=[breached("subscriber", "voluntary", "followup", 3600)], url="javascript:alert(1)"
    )
    assert "<a " not in to_html(md) and "javascript:alert(1)" not in to_html(md).replace("javascript\\:", "")


def test_clock_without_escalation_rule_still_listed_in_dossier() -> None:
    other = FakeClock("mla", "running", T0 + timedelta(days=300), 0, target("content", "mlat", "followup"))
    idle = FakeClock("legal_review", "not_started", None, 0, target("content", "mlat", "legal_review"))
    md = dossier(full_case(), clocks=[breached(*EMERGENCY, 3600, due=T0 + timedelta(hours=8)), other, idle])
    assert "| MLA | running |" in md
    assert "Legal review" not in md  # a clock that never started is noise for the NCB


@pytest.mark.parametrize("value", ["0X0", "3x4", "1920 x 1080", "a0X0b", "x1", "2X"])
def test_textile_keeps_dimensions_as_written(value: str) -> None:
    # Textile's glyph rule renders 3x4 as 3×4; case data must come back exactly as written
    assert textile_text(textile_lib.textile("p. " + textile_escape(value))).strip() == value


@pytest.mark.parametrize(
    "text",
    ["see https://evil.example/x", "HTTP://EVIL.EXAMPLE", "mailto:bad@x.example", "file:///etc/passwd", "ftp://x"],
)
def test_jira_wiki_leaves_no_bare_link_from_case_data(text: str) -> None:
    """Jira's wiki renderer links bare scheme://... and mailto: in text; from case data it must stay text
    (the other targets neutralise such links already)."""
    import re

    from casebridge.workflows.render_targets import jira_escape

    escaped = jira_escape(text)
    assert not re.search(r"(?i)\b[a-z][a-z0-9+.-]*:(//|[^\s@:]+@)", escaped), escaped
    assert escaped.replace("&#58;", ":").replace("\\", "") == text.replace("\\", "")

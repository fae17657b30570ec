"""Structure the shared renderer keeps in every target: nested lists, block quotes, fenced code.

Comments and notes typed by people reach the trackers through ``workflows.render`` as well as dossiers,
so these constructs must survive. Oracles: markdown-it-py (CommonMark) and python-textile parse the
output back; Jira wiki has no parser here and is compared with the markup Jira documents; ADF is
checked with the fake Jira's validator.
"""

from __future__ import annotations

import re

import textile as textile_lib
from markdown_it import MarkdownIt

from casebridge.workflows.render import md_paragraphs, to_adf, to_html, to_jira_wiki, to_plain, to_redmine
from tests.jira_server.state import adf_problem

NESTED = "- a\n    - b\n        1. deep\n- d\n"
QUOTE = "> q1\n>\n> q2\n"
FENCE = "```\nx = {noformat} *y*\n```\n"


def _tags(rendered_html: str) -> list[str]:
    return [t for t in re.findall(r"</?([a-z0-9]+)", rendered_html) if t != "p"]


def test_nested_lists_keep_their_levels() -> None:
    expected = _tags(to_html(NESTED))
    assert expected == ["ul", "li", "ul", "li", "ol", "li", "li", "ol", "li", "ul", "li", "li", "li", "ul"]
    assert to_jira_wiki(NESTED) == "* a\n** b\n**# deep\n* d\n"
    assert _tags(MarkdownIt("commonmark").render(to_redmine(NESTED))) == expected
    assert _tags(textile_lib.textile(to_redmine(NESTED, "textile"))) == expected
    assert to_plain(NESTED) == "- a\n  - b\n    1. deep\n- d\n"
    doc = to_adf(NESTED)
    assert adf_problem(doc) is None
    first = doc["content"][0]["content"][0]["content"]
    assert first[0] == {"type": "paragraph", "content": [{"type": "text", "text": "a"}]}
    assert first[1]["type"] == "bulletList" and first[1]["content"][0]["content"][1]["type"] == "orderedList"


def test_block_quotes_stay_quotes() -> None:
    assert to_jira_wiki(QUOTE) == "{quote}\nq1\n\nq2\n{quote}\n"
    assert to_redmine(QUOTE, "textile") == "bq. q1\n\nbq. q2\n"
    assert _tags(MarkdownIt("commonmark").render(to_redmine(QUOTE))) == ["blockquote", "blockquote"]
    doc = to_adf(QUOTE)
    assert adf_problem(doc) is None
    assert doc["content"] == [
        {
            "type": "blockquote",
            "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "q1"}]},
                {"type": "paragraph", "content": [{"type": "text", "text": "q2"}]},
            ],
        }
    ]


def test_fenced_code_is_a_code_block() -> None:
    assert to_jira_wiki(FENCE) == "{noformat}\nx = { noformat} *y*\n{noformat}\n"
    assert to_adf(FENCE)["content"] == [
        {"type": "codeBlock", "content": [{"type": "text", "text": "x = {noformat} *y*"}]}
    ]
    tokens = MarkdownIt("commonmark").parse(to_redmine(FENCE))
    assert [(t.type, t.content) for t in tokens] == [("fence", "x = {noformat} *y*\n")]


def test_case_data_cannot_open_a_fence() -> None:
    source = "\n\n".join(md_paragraphs("~~~\nsecret\n~~~\n```\nx\n```"))
    assert "<pre>" not in to_html(source) and "<code>" not in to_html(source)
    assert "{noformat}" not in to_jira_wiki(source)
    assert [b["type"] for b in to_adf(source)["content"]] == ["paragraph"] * 6

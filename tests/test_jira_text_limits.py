"""Jira's 32,767-character text limit (issue 11, item 12): the fake enforces it as Jira does, and the
connector never hits it: a dossier that does not fit is cut at a marked point and attached whole.

Both deployments (the ``jira_server`` fixture: Cloud with ADF, Data Center with wiki markup); every
request and answer, the multipart upload included, is checked against Atlassian's OpenAPI documents.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from casebridge.app.escalate import apply_escalations
from casebridge.connectors import Escalation
from casebridge.connectors.jira import JiraConnector
from casebridge.connectors.jira.limits import stored_length
from casebridge.connectors.jira.render import adf_plain_text
from casebridge.errors import RejectedError
from casebridge.workflows.escalation import PlannedEscalation
from casebridge.workflows.render import md_paragraphs, md_text, to_jira_wiki
from casebridge.workflows.text_fit import DOSSIER_CAP, JIRA_TEXT_LIMIT, attachment_name, cap_dossier
from tests.factories import make_case
from tests.hostile_cases import HOSTILE
from tests.jira_fixtures import CLOUD_TOKEN, DC_PAT
from tests.jira_server import JiraServer

pytest_plugins = ["tests.jira_fixtures"]

TOO_LONG = "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
HOSTILE_TEXT = " ".join(text for _, text in HOSTILE)


def _raw(server: JiraServer) -> requests.Session:
    session = requests.Session()
    if server.mode == "cloud":
        session.auth = ("bot@agency.example", CLOUD_TOKEN)
    else:
        session.headers["Authorization"] = f"Bearer {DC_PAT}"
    return session


def _text(server: JiraServer, size: int) -> Any:
    text = "x" * size
    if server.mode == "cloud":  # an ADF document whose compact JSON is ``size`` characters
        doc = {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}],
        }
        overhead = stored_length(doc)
        doc["content"][0]["content"][0]["text"] = "x" * (size - overhead)
        return doc
    return text


def _api(server: JiraServer) -> str:
    return f"{server.url}/rest/api/{'3' if server.mode == 'cloud' else '2'}"


# -- the fake enforces the limit as Jira does -----------------------------------------------------------
def test_fake_refuses_a_description_and_a_comment_over_the_limit(jira: JiraConnector, jira_server: JiraServer) -> None:
    key = jira.create_case(make_case()).key
    http, api = _raw(jira_server), _api(jira_server)
    answer = http.put(f"{api}/issue/{key}", json={"fields": {"description": _text(jira_server, JIRA_TEXT_LIMIT + 1)}})
    assert answer.status_code == 400
    assert answer.json() == {"errorMessages": [], "errors": {"description": TOO_LONG}}
    answer = http.post(f"{api}/issue/{key}/comment", json={"body": _text(jira_server, JIRA_TEXT_LIMIT + 1)})
    assert answer.status_code == 400 and answer.json()["errors"] == {"comment": TOO_LONG}
    # exactly at the limit: accepted
    assert http.put(f"{api}/issue/{key}", json={"fields": {"description": _text(jira_server, JIRA_TEXT_LIMIT)}}).ok
    assert http.post(f"{api}/issue/{key}/comment", json={"body": _text(jira_server, JIRA_TEXT_LIMIT)}).ok


def test_fake_attachments_need_the_xsrf_header_and_are_listed(jira: JiraConnector, jira_server: JiraServer) -> None:
    key = jira.create_case(make_case()).key
    http, api = _raw(jira_server), _api(jira_server)
    files = {"file": ("a.md", b"# hello", "text/markdown")}
    blocked = http.post(f"{api}/issue/{key}/attachments", files=files)
    assert blocked.status_code == 403 and blocked.json()["errorMessages"] == ["XSRF check failed"]
    added = http.post(f"{api}/issue/{key}/attachments", files=files, headers={"X-Atlassian-Token": "no-check"})
    assert added.status_code == 200 and [a["filename"] for a in added.json()] == ["a.md"]
    issue = http.get(f"{api}/issue/{key}", params={"fields": "attachment"}).json()
    assert [(a["filename"], a["size"]) for a in issue["fields"]["attachment"]] == [("a.md", 7)]


# -- the connector never hits it ------------------------------------------------------------------------
def _huge_dossier(identifiers: int = 2_000) -> str:
    """A dossier as the domain writes it, far over the limit, full of hostile data in every shape."""
    rows = "".join(
        f"| ipv6 | {md_text(f'2001:db8::{i:x} {HOSTILE_TEXT[:80]}')} | {md_text('[x|javascript:alert(1)]')} |\n"
        for i in range(identifiers)
    )
    facts = "\n\n".join(md_paragraphs(HOSTILE_TEXT * 3))
    return f"# NCB escalation\n\n{facts}\n\n### Identifiers\n\n| Type | Value | Note |\n|---|---|---|\n{rows}\nEnd."


def _escalation(case_key: str | None, markdown: str, key: str = 'FIA-1/legal_deadline/L1 "<x>"') -> Escalation:
    return Escalation(key, "FIA-1", case_key, None, "NCB escalation", markdown, 1, "legal_deadline")


def _planned(case_key: str, state: str, markdown: str) -> PlannedEscalation:
    return PlannedEscalation(
        dedupe_key="FIA-1/legal_deadline/L1",
        reference="FIA-1",
        case_key=case_key,
        case_url=None,
        case_state=state,
        clock="legal_deadline",
        level=1,
        level_name="NCB liaison",
        repeat=0,
        action="chase",
        overdue_seconds=3600.0,
        title="NCB escalation L1: FIA-1",
        dossier=lambda: markdown,
    )


def _plain(server: JiraServer, stored: Any) -> str:
    """What a reader sees: ADF's text, or the wiki markup without its escapes."""
    return adf_plain_text(stored) if server.mode == "cloud" else re.sub(r"\\(.)", r"\1", stored)


def _stored(jira_server: JiraServer, key: str) -> Any:
    return jira_server.state.find_issue(key).values["description"]


def test_oversized_dossier_is_cut_at_a_marker_and_attached_whole(jira: JiraConnector, jira_server: JiraServer) -> None:
    markdown = _huge_dossier()
    esc = _escalation(None, markdown)
    assert stored_length(jira.ops().rich(markdown)) > 3 * JIRA_TEXT_LIMIT  # it would have been refused
    posted = jira.post_escalation(esc)
    description = _stored(jira_server, posted.key)
    assert stored_length(description) <= JIRA_TEXT_LIMIT
    name = attachment_name(esc.dedupe_key)
    marker = f"[truncated: full dossier attached as {name}]"
    assert _plain(jira_server, description).rstrip().endswith(marker)  # the last paragraph says where
    if jira_server.mode == "datacenter":  # the wiki markup is whole: the cut Markdown rendered, not cut markup
        cut_md = description.split("\n\n\\[truncated")[0]
        assert cut_md.count("{code") % 2 == 0 and not cut_md.endswith("\\")
        assert to_jira_wiki(markdown).startswith(cut_md.rsplit("\n", 1)[0])
    jira.complete_escalation(esc, posted)
    jira.complete_escalation(esc, posted)  # idempotent: looked for first
    issue = jira_server.state.find_issue(posted.key)
    assert [a["filename"] for a in issue.attachments] == [name]
    assert issue.attachments[0]["content"].decode("utf-8") == markdown  # the whole dossier, byte for byte
    assert re.fullmatch(r"dossier-[A-Za-z0-9._-]+\.md", name)


def test_a_dossier_that_fits_is_posted_whole_and_nothing_attached(jira: JiraConnector, jira_server: JiraServer) -> None:
    esc = _escalation(None, "# Dossier\n\n" + md_text(HOSTILE_TEXT))
    posted = jira.post_escalation(esc)
    jira.complete_escalation(esc, posted)
    assert "truncated" not in json.dumps(_stored(jira_server, posted.key))
    assert jira_server.state.find_issue(posted.key).attachments == []


def test_escalate_run_attaches_and_a_failed_attachment_is_completed_next_run(
    make_connector: Any, jira_server: JiraServer
) -> None:
    """Through apply_escalations: a post whose attachment failed is reported, and the next run attaches."""
    jira = make_connector()
    case = jira.create_case(make_case("FIA-1"))
    item = _planned(case.key, case.state, _huge_dossier(800))
    jira_server.faults.add("503", method="POST", path=r"/attachments$", times=10)
    first = apply_escalations([item], jira, jira, now=jira.now())[0]
    assert first.status == "posted" and first.error and "finishing the posted item failed" in first.error
    assert jira_server.state.find_issue(first.posted.key).attachments == []
    again = apply_escalations([item], jira, jira, now=jira.now())[0]
    assert again.status == "already_posted" and again.ok
    assert [a["filename"] for a in jira_server.state.find_issue(first.posted.key).attachments] == [
        attachment_name(item.dedupe_key)
    ]


def test_long_comment_is_cut_with_a_marker(jira: JiraConnector, jira_server: JiraServer) -> None:
    key = jira.create_case(make_case()).key
    jira.comment(key, "\n\n".join([md_text(HOSTILE_TEXT)] * 200))
    [comment] = jira_server.state.find_issue(key).comments
    assert stored_length(comment["body"]) <= JIRA_TEXT_LIMIT
    assert (
        _plain(jira_server, comment["body"]).rstrip().endswith("[truncated: the text exceeds the target's size limit]")
    )


def test_case_data_over_the_limit_is_refused_with_a_clear_message(jira: JiraConnector) -> None:
    identifiers = [{"type": "ip", "value": f"2001:db8::{i:x}"} for i in range(1_000)]
    case = make_case("FIA-BIG", identifiers=identifiers)
    with pytest.raises(RejectedError) as caught:
        jira.create_case(case)
    message = str(caught.value)
    assert "FIA-BIG" in message and "32,767" in message and "\n" not in message


def test_absurd_dossiers_are_capped() -> None:
    huge = "# D\n\n" + "".join(f"| ipv6 | 2001:db8::{i:x} |\n" for i in range(60_000)) * 2
    capped = cap_dossier(huge)
    assert len(huge) > DOSSIER_CAP >= len(capped) and "truncated: the dossier exceeds 1,000,000" in capped.replace(
        "\\", ""
    )

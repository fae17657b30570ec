"""Reminders and extensions against the fake Jira (Cloud: ADF, Data Center: wiki), checked against
Atlassian's OpenAPI documents: one comment that mentions the assignee, never two, and the due time
moved by an extension recorded in the case data."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from casebridge.app.extend import plan_for, record_extension
from casebridge.connectors.jira import JiraConnector
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions
from casebridge.workflows.extension import ExtensionRefused
from tests.factories import make_case
from tests.jira_server import JiraServer

pytest_plugins = ["tests.jira_fixtures"]

REF = "FIA-JIRA-0700"
ACCOUNT = "5b10ac8d82e05b22cc7d4ef5"


def _sync(jira: JiraConnector, tmp_path: Path, now, **options):
    store, audit = StateStore(tmp_path / "state.db"), AuditLog(tmp_path / "audit.db")
    try:
        return SyncJob(jira, jira.workflow, store, audit, SyncOptions(**options)).run(now)
    finally:
        store.close()
        audit.close()


def _comments(server: JiraServer, key: str) -> list[str]:
    issue = server.state.issues[server.state.by_key[key]]
    return [c["body"] if isinstance(c["body"], str) else json.dumps(c["body"]) for c in issue.comments]


def test_reminder_mentions_the_assignee_once_then_follows_an_extension(
    jira_server: JiraServer, jira: JiraConnector, tmp_path: Path
) -> None:
    received = jira_server.clock.at - timedelta(days=90 - 14)  # type: ignore[attr-defined]
    case = make_case(REF, request_type="preservation", legal_basis="us-2703f", submitted_at=received,
                     article3_checked_at=received)  # fmt: skip
    tracked = jira.create_case(case, state="submitted")
    issue = jira_server.state.issues[jira_server.state.by_key[tracked.key]]
    issue.values["assignee"] = {"accountId": ACCOUNT, "name": "akhan", "displayName": "Insp. A. Khan"}
    now = jira_server.clock.at + timedelta(minutes=1)  # type: ignore[attr-defined]

    first = _sync(jira, tmp_path, now)
    assert [o.status for o in first.reminded] == ["posted"], first.reminded
    assert first.reminded[0].dedupe_key == f"{REF}/preservation/T14d"
    (body,) = _comments(jira_server, tracked.key)
    if jira_server.mode == "cloud":
        assert json.loads(body)["content"][0]["content"][0] == {"type": "mention", "attrs": {"id": ACCOUNT}}
    else:
        assert body.startswith("[~akhan]\n")
    assert "2703\\(f\\)\\(2\\)" in body or "2703(f)(2)" in body
    assert first.reminders[0].marker in body

    clock = jira_server.clock  # type: ignore[attr-defined]
    clock.advance(hours=1)  # the server's clock moves with ours: its updated times drive the incremental sync
    again = _sync(jira, tmp_path, now + timedelta(hours=1))
    assert [o.status for o in again.reminded] == ["already_posted"] and len(_comments(jira_server, tracked.key)) == 1

    clock.advance(hours=1)
    now = clock.at
    plan = plan_for(jira, REF, "preservation", now, "renewal sent")
    assert plan.new_due - plan.old_due == timedelta(days=90)  # type: ignore[operator]
    record_extension(jira, plan, None, now=now)
    with pytest.raises(ExtensionRefused, match="already extended 1 of 1"):
        plan_for(jira, REF, "preservation", now, None)
    clock.advance(days=90)
    later = _sync(jira, tmp_path, clock.at)
    assert [o.dedupe_key for o in later.reminded] == [f"{REF}/preservation/E1/T14d"]
    assert len(_comments(jira_server, tracked.key)) == 3  # reminder, extension note, reminder

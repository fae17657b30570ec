"""Intake then sync on the fake Jira (tests/jira_server): one search for the plan's lookup and one for the
create's, one ``POST issue/bulk`` for the new issues; Jira's create takes no SLA fields and walks the
workflow to the row's state, so intake then reads the history once per case, writes the fields, and
re-reads the case by key; the sync that follows (changelog with the search) writes nothing at the
same instant."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from casebridge.app.intake import apply_intake, plan_intake
from casebridge.connectors.jira import JiraConnector
from casebridge.state.audit import AuditLog
from casebridge.state.lock import RunLock, lock_path_for
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.intake import IntakeRow
from casebridge.workflows.sla import computed_sla
from tests.factories import make_case
from tests.jira_server import JiraServer
from tests.test_sync_support import CountingTracker

pytest_plugins = ["tests.jira_fixtures"]


class IntakeCounting(CountingTracker):
    COUNTED = (*CountingTracker.COUNTED, "create_case", "get_case", "find_cases", "create_cases")


def test_intake_writes_the_fields_and_the_next_sync_writes_nothing(
    jira: JiraConnector, jira_server: JiraServer, tmp_path: Path
) -> None:
    now = jira_server.clock()  # type: ignore[attr-defined]
    rows = [
        IntakeRow(f"test:{i}", make_case(f"FIA-J-{i}", submitted_at=now - timedelta(days=i)), state, None)
        for i, state in enumerate(("draft", "submitted", "acknowledged"))
    ]
    tracker = IntakeCounting(jira)
    store, audit = StateStore(tmp_path / "state.db"), AuditLog(tmp_path / "state.audit.db")
    jira_server.counter.reset()
    apply_intake(plan_intake(rows, tracker), tracker, audit, now=now, store=store)
    store.close()
    assert dict(tracker.calls) == {
        "find_cases": 1,
        "create_cases": 1,
        "read_history": 3,
        "set_sla_fields": 3,
        "get_case": 3,
    }
    routes = jira_server.counter.snapshot()
    posts = {
        route.rsplit("/", 1)[-1]: n for route, n in routes.items() if route.startswith("POST") and "issue" in route
    }
    assert posts.get("bulk") == 1 and posts.get("issue") is None, routes  # one bulk create, no single creates
    searches = sum(n for route, n in routes.items() if "search" in route)
    assert searches == 2, routes  # the plan's lookup and the create's check, each one search for all three
    assert len([r for r in audit.records() if r["kind"] == "intake.set_fields"]) == 3
    audit.close()
    for tracked in jira.list_cases():
        assert tracked.history is not None
        assert tracked.sla == computed_sla(evaluate_case(tracked.case, tracked.history, jira.workflow, now))
    with RunLock(lock_path_for(tmp_path / "state.db")):
        store, audit = StateStore(tmp_path / "state.db"), AuditLog(tmp_path / "state.audit.db")
        report = SyncJob(jira, jira.workflow, store, audit, SyncOptions()).run(now)
        store.close()
        audit.close()
    assert report.exit_code == 0 and report.listed == 3
    assert report.plan.actions == [] and report.history_reads == 0

"""Intake's create path on the real Redmine (issue 19): the bulk lookup, each issue created in its row's
state, and the SLA fields predicted at creation agreeing with what the engine computes from Redmine's
own journals. Redmine stamps ``created_on`` itself and cannot back-date, so a row's ``state_since`` is
ignored (and said so) and a clock that starts on entering the state starts at the creation second.

A few rows, not a hundred: this file is also the one the mutation run of app/intake.py uses against
the real server (docs/mutation.md)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from casebridge.app.intake import apply_intake, plan_intake
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import StatusChange
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.intake import IntakeRow
from casebridge.workflows.sla import computed_sla, sla_to_json
from tests.factories import make_case
from tests.test_intake_redmine import intake_on_redmine_time, sync_once  # noqa: F401 (a fixture)

pytest_plugins = ["tests.redmine_fixtures"]
pytestmark = pytest.mark.redmine

WORKFLOW = load_workflow("lawful-access")


@pytest.mark.usefixtures("intake_on_redmine_time")
def test_intake_creates_each_issue_in_its_rows_state_with_the_fields_redmine_history_gives(
    redmine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conn = redmine.connector(key=redmine.officer_key)
    conn.workflow = WORKFLOW
    now = redmine.clock()
    long_ago = now - timedelta(days=10)  # ten days back: a different due instant on any working calendar
    rows = [
        IntakeRow("cases.csv:2", make_case("FIA-RC-1", submitted_at=None), "legal_review", long_ago),
        IntakeRow("cases.csv:3", make_case("FIA-RC-2", submitted_at=None), None, None),  # the initial state
        IntakeRow("cases.csv:4", make_case("FIA-RC-3", submitted_at=now - timedelta(days=3)), "awaiting_requester",
                  None),
    ]  # fmt: skip
    planned = plan_intake(rows, conn)
    assert [a.kind for a in planned] == ["create"] * 3

    store, audit = StateStore(tmp_path / "state.db"), AuditLog(tmp_path / "state.audit.db")
    with caplog.at_level(logging.WARNING):
        created = apply_intake(planned, conn, audit, now=now, store=store)
    store.close()
    assert f"{conn.name} cannot back-date: state_since ignored for 1 new cases" in caplog.messages
    assert [t.case.reference for t in created] == ["FIA-RC-1", "FIA-RC-2", "FIA-RC-3"]

    found = conn.find_cases(["FIA-RC-1", "FIA-RC-2", "FIA-RC-3"])
    assert {ref: t.state for ref, t in found.items()} == {
        "FIA-RC-1": "legal_review",
        "FIA-RC-2": WORKFLOW.initial,
        "FIA-RC-3": "awaiting_requester",
    }
    checked = redmine.clock()
    histories = {ref: conn.read_history(t.key) for ref, t in found.items()}
    for ref, tracked in found.items():  # the fields went in with the create and are the engine's
        assert tracked.sla == computed_sla(evaluate_case(tracked.case, histories[ref], WORKFLOW, checked)), ref
    [entered] = histories["FIA-RC-1"]
    assert now - timedelta(seconds=5) <= entered.at <= checked  # Redmine's creation second, not state_since
    review = found["FIA-RC-1"].sla.clocks["legal_review"]
    back_dated = evaluate_case(found["FIA-RC-1"].case, [StatusChange(long_ago, "legal_review")], WORKFLOW, now)
    assert review.state == "running" and review.due_at != computed_sla(back_dated).clocks["legal_review"].due_at
    assert found["FIA-RC-3"].sla.clocks["followup"].state == "paused"
    assert not any(c.state == "running" for c in found["FIA-RC-2"].sla.clocks.values())

    records = [(r["kind"], r["data"]) for r in audit.records()]
    assert audit.pending() == []
    audit.close()
    assert records == [
        ("intake.create", {"reference": ref, "key": found[ref].key, "fields": sla_to_json(found[ref].sla)})
        for ref in ("FIA-RC-1", "FIA-RC-2", "FIA-RC-3")
    ]

    # the store was seeded with each created issue's history: the first sync reads none and writes nothing
    report = sync_once(conn, tmp_path, redmine.clock(), remind=False)
    assert report.exit_code == 0 and report.listed == 3
    assert report.history_reads == 0 and report.plan.actions == []

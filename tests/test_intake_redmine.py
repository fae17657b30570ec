"""Intake then sync against the real Redmine (tests/redmine_fixtures.py), counting HTTP requests with a
response hook on the connector's own requests session.

Issue 3: the real pipeline (``casebridge intake FILE`` then ``casebridge sync``) must cost about what a
bare loop creating the issues costs. Intake looks the references up in bulk (a filtered listing per 100),
creates each issue with its SLA fields in the creating POST, and seeds the sync job's state store, so
the first sync is one listing: no journals read, no field written.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casebridge.app.intake import apply_intake, plan_intake
from casebridge.errors import SchemaMissing
from casebridge.state.audit import AuditLog
from casebridge.state.lock import RunLock, lock_path_for
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import Case
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.intake import IntakeRow
from casebridge.workflows.sla import computed_sla

pytest_plugins = ["tests.redmine_fixtures"]
pytestmark = pytest.mark.redmine

WORKFLOW = load_workflow("lawful-access")
N = 105  # past one page / one lookup chunk of 100
STATES = ("draft", "submitted", "acknowledged", "awaiting_requester")


class Requests:
    """Every request the connector sends, as 'METHOD path-shape' (issue ids replaced by N)."""

    def __init__(self, session) -> None:
        self.seen: Counter[str] = Counter()
        session.hooks["response"].append(self._hook)

    def _hook(self, response, *args, **kwargs):
        path = re.sub(r"/\d+\.json", "/N.json", response.request.path_url.split("?")[0])
        self.seen[f"{response.request.method} {path}"] += 1
        return response

    def take(self) -> Counter[str]:
        seen, self.seen = self.seen, Counter()
        return seen


def rows(now: datetime) -> list[IntakeRow]:
    out = []
    for i in range(N):
        case = Case(
            reference=f"FIA-RM-{i:04d}",
            title=f"Subscriber data for account {i}",
            provider="Google LLC",
            request_type="subscriber",
            legal_basis="voluntary",
            submitted_at=now - timedelta(days=i % 30, hours=3),
            timezone="Asia/Karachi",
        )
        out.append(IntakeRow(where=f"test:{i}", case=case, state=STATES[i % len(STATES)], state_since=None))
    return out


def sync_once(conn, tmp_path: Path, now: datetime, **options: Any):
    """One pass as `casebridge sync` runs it: run lock, state store, audit log, SyncJob."""
    state = tmp_path / "state.db"
    with RunLock(lock_path_for(state)):
        store, audit = StateStore(state), AuditLog(tmp_path / "state.audit.db")
        try:
            return SyncJob(conn, WORKFLOW, store, audit, SyncOptions(**options)).run(now)
        finally:
            store.close()
            audit.close()


@pytest.fixture
def intake_on_redmine_time(redmine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Intake predicts the ``created_on`` Redmine will stamp (a clock without a start field starts
    there) from the process's clock: a deployment's clocks agree (NTP), but a test process's may be
    moved on purpose (tests/clock_shift.sh). Give intake Redmine's time, read once: the error is below
    a second, which the start-field clocks these rows run do not see."""
    offset = redmine.clock() + timedelta(seconds=0.5) - datetime.now(UTC)  # Redmine shows whole seconds

    class RedmineTime(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return datetime.now(tz) + offset

    monkeypatch.setattr(sys.modules[apply_intake.__module__], "datetime", RedmineTime)  # intake's clock


def test_intake_then_sync_costs_one_post_per_case_and_the_sync_one_listing(
    redmine, tmp_path: Path, intake_on_redmine_time: None
) -> None:
    conn = redmine.connector(key=redmine.officer_key)
    conn.workflow = WORKFLOW  # the bundled workflow, as the CLI loads it (the fixture's is the same file)
    counted = Requests(conn.client.engine.session)
    _ = conn.schema  # resolved once per connector; not part of the per-case cost
    counted.take()
    now = redmine.clock()  # Redmine stamps created_on with its own clock: the cases are dated by it
    planned = plan_intake(rows(now), conn)
    assert [a.kind for a in planned] == ["create"] * N
    assert counted.take() == {"GET /issues.json": 2}  # two filtered lookups (<= 1,000 bytes of references)

    store, audit = StateStore(tmp_path / "state.db"), AuditLog(tmp_path / "state.audit.db")
    created = apply_intake(planned, conn, audit, now=now, store=store)
    store.close()
    assert len({t.key for t in created}) == N
    assert counted.take() == {"GET /issues.json": 2, "POST /issues.json": N}  # re-checked, then created
    written = [r for r in audit.records() if r["kind"] == "intake.create"]
    audit.close()
    assert len(written) == N and all(r["data"]["fields"]["clocks"] for r in written)

    # the fields are in Redmine at once, and they are the engine's from Redmine's own journals
    checked = redmine.clock()
    for tracked in list(conn.list_cases())[::13]:
        expected = computed_sla(evaluate_case(tracked.case, conn.read_history(tracked.key), WORKFLOW, checked))
        assert tracked.sla == expected
    counted.take()

    # the SLA side (reminders, a comment per threshold crossed, are counted below)
    report = sync_once(conn, tmp_path, redmine.clock(), remind=False)
    assert report.exit_code == 0 and report.listed == N
    assert report.history_reads == 0 and report.plan.actions == []
    assert counted.take() == {"GET /issues.json": 2}  # the listing's two pages: no journals, no PUT

    again = sync_once(conn, tmp_path, redmine.clock(), remind=False)  # no change: listing only
    assert again.plan.actions == [] and again.history_reads == 0
    assert set(counted.take()) == {"GET /issues.json"}

    # reminders: per reminder due, one read of the case's journals (its marker) and one journal note
    reminding = sync_once(conn, tmp_path, redmine.clock())
    posted = sum(o.status == "posted" for o in reminding.reminded)
    assert posted == len(reminding.reminders) and all(o.ok for o in reminding.reminded)
    costs = counted.take()
    assert (costs.get("GET /issues/N.json", 0), costs.get("PUT /issues/N.json", 0)) == (posted, posted)

    replan = plan_intake(rows(now), conn)  # re-import: unchanged, found by the same two lookups
    assert [a.kind for a in replan] == ["unchanged"] * N and counted.take() == {"GET /issues.json": 2}


def test_bulk_lookup_keeps_the_oldest_duplicate_and_detects_an_ignored_filter(redmine) -> None:
    conn = redmine.connector()
    now = redmine.clock()
    cases = [r.case for r in rows(now)[:3]]
    first = {t.case.reference: t.key for t in conn.create_cases(cases, states={}, at={})}
    # a careless script creates a second issue with the first reference
    dup = redmine.api(
        "POST",
        "/issues.json",
        json={
            "issue": {
                "project_id": conn.schema.project_id,
                "tracker_id": conn.schema.tracker_id,
                "subject": "copy",
                "custom_fields": [{"id": conn.schema.fields["reference"], "value": cases[0].reference}],
            }
        },
    )
    assert dup.status_code == 201, dup.text
    found = conn.find_cases([c.reference for c in cases] + ["FIA-RM-NOPE", cases[0].reference.lower()])
    assert {ref: t.key for ref, t in found.items()} == first
    # Redmine keeps the filter in a 4 KiB session cookie (500 past ~1,700 bytes of values): long
    # non-ASCII references are chunked small enough
    long_refs = [f"{i:03d}-" + "ü" * 96 for i in range(40)]
    assert conn.find_cases(long_refs) == {}
    redmine.rails_runner("IssueCustomField.find_by_name('Case reference').update!(is_filter: false)")
    with pytest.raises(SchemaMissing, match="Used as a filter"):
        redmine.connector().find_cases(["FIA-RM-NOPE"])

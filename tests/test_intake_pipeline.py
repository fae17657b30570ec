"""Intake then sync on the embedded tracker: what each costs, and that the state store intake seeds is
the tracker's truth (the first sync reads no history and writes nothing at the same instant).

The embedded tracker creates in bulk with the SLA fields in the creating INSERT and reports each new
case's history: one lookup and one create call for the lot, no history read, no SLA write. The
counting proxy wraps the real tracker; nothing is mocked.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from casebridge.app.intake import apply_intake, plan_intake
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.workflows.cases import StatusChange
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.intake import IntakeRow
from casebridge.workflows.sla import computed_sla
from tests.factories import T0, make_case
from tests.test_sync_support import WORKFLOW, CountingTracker, Env

NOW = T0 + timedelta(days=1)


class IntakeCounting(CountingTracker):
    COUNTED = (*CountingTracker.COUNTED, "create_case", "update_case", "find_cases", "create_cases")


def rows() -> list[IntakeRow]:
    """Cases in the states intake files use, some back-dated with state_since."""
    spec = [
        ("draft", None),
        ("legal_review", NOW - timedelta(hours=5)),  # its clock starts at state entry: back-dated
        ("submitted", None),
        ("acknowledged", NOW - timedelta(hours=2)),
        ("awaiting_requester", None),
        ("fulfilled", NOW - timedelta(hours=1)),
    ]
    out = []
    for i in range(12):
        state, since = spec[i % len(spec)]
        case = make_case(f"FIA-INT-{i:03d}", submitted_at=T0 - timedelta(days=i))
        out.append(IntakeRow(where=f"test:{i}", case=case, state=state, state_since=since))
    return out


@pytest.fixture
def env(tmp_path: Path) -> Env:
    env = Env(tmp_path)
    env.write_config()
    return env


def intake(env: Env, now=NOW, *, seed: bool = True) -> IntakeCounting:
    tracker = IntakeCounting(env.tracker(now))
    store = StateStore(env.state_path) if seed else None
    audit = AuditLog(env.audit_path)
    try:
        apply_intake(plan_intake(rows(), tracker), tracker, audit, now=now, store=store)
    finally:
        audit.close()
        if store is not None:
            store.close()
    return tracker


def records(env: Env, kind: str) -> list[dict]:
    audit = AuditLog(env.audit_path)
    try:
        return [r for r in audit.records() if r["kind"] == kind]
    finally:
        audit.close()


def test_intake_writes_each_new_case_with_its_fields_and_the_next_sync_reads_and_writes_nothing(env: Env) -> None:
    tracker = intake(env)
    n = len(rows())
    # one bulk lookup, one bulk create with the SLA fields: no history read, no SLA write, no re-read
    assert dict(tracker.calls) == {"find_cases": 1, "create_cases": 1}
    assert len(records(env, "intake.create")) == n and records(env, "intake.set_fields") == []
    # the fields in the tracker are the engine's, from the tracker's own history (back-dated included)
    check = env.tracker()
    for tracked in check.list_cases():
        history = check.read_history(tracked.key)
        assert tracked.sla == computed_sla(evaluate_case(tracked.case, history, WORKFLOW, NOW))
    started = {t.case.reference: t for t in check.list_cases()}["FIA-INT-001"]
    assert check.read_history(started.key) == [StatusChange(NOW - timedelta(hours=5), "legal_review")]
    check.close()

    proxy = CountingTracker(env.tracker())
    report = env.sync(NOW, proxy)
    assert report.exit_code == 0 and report.listed == n
    assert report.history_reads == 0 and report.plan.actions == []
    assert dict(proxy.calls) == {"list_cases": 1}
    assert records(env, "sync.set_fields") == []


def test_time_passing_after_intake_writes_only_what_moved_still_without_history_reads(env: Env) -> None:
    intake(env)
    later = NOW + timedelta(days=20)
    proxy = CountingTracker(env.tracker())
    report = env.sync(later, proxy)
    assert report.history_reads == 0 and proxy.calls["read_history"] == 0
    assert report.result.applied, "20 days later some clock must be at risk or breached"
    check = env.tracker()
    for tracked in check.list_cases():
        history = check.read_history(tracked.key)
        assert tracked.sla == computed_sla(evaluate_case(tracked.case, history, WORKFLOW, later))
    check.close()


def test_a_case_moved_after_intake_has_its_history_read(env: Env) -> None:
    intake(env)
    moved_at = NOW + timedelta(hours=1)
    tracker = env.tracker(moved_at)
    case = tracker.find_case("FIA-INT-002")
    assert case is not None and case.state == "submitted"
    tracker.transition(case.key, "awaiting_requester", at=moved_at)
    tracker.close()
    proxy = CountingTracker(env.tracker())
    report = env.sync(moved_at, proxy)
    assert report.history_reads == 1 and proxy.calls["read_history"] == 1  # the moved case only
    paused = env.tracker().find_case("FIA-INT-002")
    assert paused is not None and paused.sla.clocks["followup"].state == "paused"


def test_without_a_store_sync_reads_history_as_before_and_still_writes_nothing(env: Env) -> None:
    intake(env, seed=False)
    report = env.sync(NOW)
    assert report.history_reads == len(rows()) and report.plan.actions == []


def test_reimport_writes_nothing_and_seeds_nothing(env: Env) -> None:
    intake(env)
    tracker = intake(env)
    assert dict(tracker.calls) == {"find_cases": 1}  # one bulk lookup, nothing written
    assert len(records(env, "intake.create")) == len(rows())


def test_seed_never_overwrites_what_a_pass_recorded_for_a_newer_update(env: Env, tmp_path: Path) -> None:
    intake(env)
    env.sync(NOW)
    store = StateStore(env.state_path)
    cached = store.load()
    key, entry = next((k, e) for k, e in cached.items() if e.tracked and e.tracked.case.reference == "FIA-INT-002")
    assert entry.tracked is not None
    older = entry.tracked
    older.updated_at -= timedelta(hours=1)
    older.history = [StatusChange(older.updated_at, "draft")]
    assert store.seed([older]) == 0
    assert store.load()[key].history == entry.history
    store.record_write(key, older.sla, None)  # stale ('' updated_at): a seed may replace it
    assert store.seed([older]) == 1
    assert store.load()[key].history == [StatusChange(older.updated_at, "draft")]
    store.close()

"""A sync pass plans and writes the same through the batch clock path (app/sync_batch.py) as through the
scalar engine: the same SetFields (fields, before, counting), the same reminders, the same audit records
and tracker writes; and rows the columns cannot read (escaped or unknown states, unsorted or non-ASCII
histories, SLA JSON in another layout, a history stored as a blob) fall back to the scalar engine and are
planned exactly as before.
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casebridge.app import sync_batch
from casebridge.app.sync_plan import SyncPlan, plan_pass
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import SlaFields, StatusChange, TrackedCase
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.sla import computed_sla
from tests.factories import make_case

WORKFLOW = load_workflow("lawful-access")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
KINDS = [
    ("subscriber", "voluntary"),
    ("emergency", "eu-epo"),
    ("preservation", "us-2703f"),
    ("content", "mlat"),
    ("traffic", "voluntary"),
]
PATH = ["legal_review", "approved", "submitted", "acknowledged", "awaiting_requester", "acknowledged"]


def _history(rng: random.Random) -> list[StatusChange]:
    at, out = T0, [StatusChange(T0, "draft")]
    for state in PATH[: rng.randint(0, len(PATH))]:
        at += timedelta(hours=rng.randint(1, 30), seconds=rng.choice([0, 0, 0.25, 17]))
        out.append(StatusChange(at, state))
    return out


def _cases(count: int, now: datetime) -> list[TrackedCase]:
    rng = random.Random(16)
    out = []
    for i in range(count):
        request_type, basis = KINDS[i % len(KINDS)]
        case = make_case(f"SB-{i:04d}", request_type=request_type, legal_basis=basis, identifiers=[])
        history = _history(rng)
        sla = SlaFields()
        if i % 3:  # held as computed an hour ago (some then cross a threshold), or exactly as computed now
            at = now - timedelta(hours=1) if i % 3 == 1 else now
            sla = computed_sla(evaluate_case(case, history, WORKFLOW, at))
        out.append(TrackedCase(f"k{i}", case, history[-1].state, T0, sla, history))
    return out


HOSTILE = [  # (history JSON, SLA JSON or None to keep): none of these is read as columns
    ('[["2026-11-02T09:00:00.000000Z", "\\u0064raft"]]', None),  # an escaped state
    ('[["2026-11-02T09:00:00.000000Z", "draft"], ["2026-11-02T08:00:00.000000Z", "legal_review"]]', None),
    ('[["2026-11-02T09:00:00.000000Z", "draft"], ["2026-11-02T10:00:00.000000Z", "ümlaut"]]', None),
    ('[["2026-11-02T09:00:00.000000Z","draft"]]', None),  # no space after the comma
    ('[["2026-11-02T09:00:00+00:00", "draft"]]', None),  # not iso()'s layout
    ('[["2026-11-02T09:00:00.000000Z", "draft"]]', '{"escalation_level": 0, "clocks": {}}'),  # keys unsorted
    ('[["2026-11-02T09:00:00.000000Z", "draft"]]', '{"clocks":{},"escalation_level":0}'),
]


def _store(tmp_path: Path, now: datetime, count: int = 120) -> StateStore:
    store = StateStore(tmp_path / "state.db")
    store.save(_cases(count, now))
    with store.transaction() as db:
        for i, (history, sla) in enumerate(HOSTILE):
            db.execute("UPDATE cases SET history = ? WHERE key = ?", (history, f"k{i * 7}"))
            if sla is not None:
                db.execute("UPDATE cases SET sla = ? WHERE key = ?", (sla, f"k{i * 7}"))
        history = json.dumps([["2026-11-02T09:00:00.000000Z", "draft"]]).encode()
        db.execute("UPDATE cases SET history = ? WHERE key = ?", (history, "k5"))  # a blob
    return store


def _summary(plan: SyncPlan) -> dict[str, Any]:
    return {
        "evaluated": plan.evaluated,
        "actions": [a.to_json() for a in plan.actions],
        "before": [(a.before, a.timezone, a.counting) for a in plan.actions],
        "before_cases": {k: (t.sla, t.history, t.state) for k, t in plan.before.items()},
        "reminders": [(r.to_json(), r.markdown) for r in plan.reminders],
        "failures": plan.failures,
    }


@pytest.mark.parametrize("hours", [0, 3, 24, 30, 24 * 40])
def test_plan_through_the_batch_equals_the_scalar_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hours: int
) -> None:
    now = T0 + timedelta(days=1, hours=hours)
    store = _store(tmp_path, now)
    scalar_cases: list[str] = []
    plan_scalar = sync_batch.plan_scalar

    def counting(plan: SyncPlan, cases: Any, *args: Any, **kwargs: Any) -> None:
        cases = list(cases)
        scalar_cases.extend(t.key for t in cases)
        plan_scalar(plan, cases, *args, **kwargs)

    monkeypatch.setattr(sync_batch, "plan_scalar", counting)
    fallbacks: list[str] = []
    evaluate = sync_batch._evaluate

    def spying(rows: Any, *args: Any) -> Any:
        batch, changed = evaluate(rows, *args)
        fallbacks.extend(rows[i].key for i in batch.scalar)
        return batch, changed

    monkeypatch.setattr(sync_batch, "_evaluate", spying)
    history_of = lambda t: t.history or []  # noqa: E731  # as the sync job reads them
    before = plan_pass(store.stream(), history_of, WORKFLOW, now, remind=True, batch=False)
    assert scalar_cases == []  # batch=False never enters app.sync_batch
    batched = plan_pass(store.stream_stored(), history_of, WORKFLOW, now, remind=True)
    assert scalar_cases == ["k5"]  # the blob only: every other case went through the batch
    # the hostile rows (and only they, in this workflow) are left to the scalar engine inside the batch
    assert sorted(fallbacks) == sorted(f"k{i * 7}" for i, (_h, sla) in enumerate(HOSTILE) if sla is None)
    assert _summary(batched) == _summary(before)
    assert before.evaluated == 120 and before.actions  # something to compare
    if hours in (24, 30):  # reminders of cases with nothing to write too (their clocks materialised alone)
        assert {r.case_key for r in before.reminders} - set(before.before)


def _tracker(root: Path, count: int) -> None:
    tracker = LocalConnector(LocalConfig(path=str(root / "tracker.db")), WORKFLOW)
    tracker.use_clock(lambda: T0 + timedelta(days=1))  # stamped before the passes: later passes list nothing
    rng = random.Random(7)
    for i in range(count):
        request_type, basis = KINDS[i % len(KINDS)]
        case = make_case(f"SJ-{i:04d}", request_type=request_type, legal_basis=basis, identifiers=[])
        tracked = tracker.create_case(case, at=T0)
        at = T0
        for state in PATH[: rng.randint(0, len(PATH))]:
            at += timedelta(hours=rng.randint(1, 30))
            tracker.transition(tracked.key, state, at=at)
    tracker.close()


def _passes(root: Path) -> tuple[list[tuple[str, Any]], list[Any]]:
    """Three passes: the first writes every case, the second re-lists those writes, the third (days later)
    evaluates every open case from the state store. Returns the audit records and the tracker's fields."""
    tracker = LocalConnector(LocalConfig(path=str(root / "tracker.db")), WORKFLOW)
    store, audit = StateStore(root / "state.db"), AuditLog(root / "audit.db")
    for now in (T0 + timedelta(days=2), T0 + timedelta(days=2, minutes=10), T0 + timedelta(days=5, hours=3)):
        report = SyncJob(tracker, WORKFLOW, store, audit, SyncOptions()).run(now)
        assert report.exit_code == 0, report.result.failures
    records = [(r["kind"], r["data"]) for r in audit.records()]  # "at" is the real time of the append
    fields = sorted((t.key, t.sla) for t in tracker.list_cases(updated_since=None))
    tracker.close()
    return records, fields


def test_sync_writes_and_audits_the_same_through_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tracker(tmp_path / "seed", 80)
    shutil.copytree(tmp_path / "seed", tmp_path / "batch")
    shutil.copytree(tmp_path / "seed", tmp_path / "scalar")
    batches: list[int] = []
    evaluate = sync_batch._evaluate

    def spying(rows: Any, *args: Any) -> Any:
        batches.append(len(rows))
        return evaluate(rows, *args)

    monkeypatch.setattr(sync_batch, "_evaluate", spying)
    batched = _passes(tmp_path / "batch")
    assert batches and max(batches) >= sync_batch.MIN_BATCH  # the third pass went through the batch
    batches.clear()
    monkeypatch.setattr(sync_batch, "MIN_BATCH", 10**9)  # every chunk: the scalar engine
    scalar = _passes(tmp_path / "scalar")
    assert batches == []
    assert batched == scalar
    third = (T0 + timedelta(days=5, hours=3)).isoformat()
    kinds = [kind for kind, data in scalar[0] if data.get("evaluated_at") == third]
    assert "sync.set_fields" in kinds  # the third pass wrote (through the batch in the first run)

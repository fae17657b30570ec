"""What intake writes to the audit log on the per-case path (Jira, Redmine: app/intake.py with
app/intake_intents.py), and what the next run does with what a killed intake left (issue 19).

The embedded tracker runs here through ``apply_intake`` (the path the CLI takes for Jira and Redmine);
a proxy makes it behave as a tracker whose create takes no SLA fields, or as one that is killed right
after the tracker wrote, or that cannot answer. Nothing is mocked: the tracker and the audit log are
the real ones.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from casebridge.app.intake import apply_intake, plan_intake
from casebridge.app.intake_intents import recover_creates
from casebridge.errors import TrackerError, TrackerUnreachable
from casebridge.state.audit import AuditLog
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.intake import IntakeRow
from casebridge.workflows.sla import computed_sla, sla_to_json
from tests.factories import T0
from tests.factories import intake_rows as rows
from tests.test_sync_support import WORKFLOW, CountingTracker, Env

NOW = T0 + timedelta(days=1)


class NoFieldsAtCreate(CountingTracker):
    """A tracker whose create takes no SLA fields (Jira): intake writes them in a second request."""

    COUNTED = (*CountingTracker.COUNTED, "create_cases", "get_case")
    creates_with_sla = False


class RefusesSlaWrite(NoFieldsAtCreate):
    def set_sla_fields(self, key: str, sla: Any) -> None:
        raise TrackerError("field 'SLA' is not on the screen (injected)")


class KilledAfterCreate(CountingTracker):
    """The tracker created the cases, then the process died before intake recorded them."""

    def create_cases(self, *args: Any, **kwargs: Any) -> Any:
        list(self.inner.create_cases(*args, **kwargs))
        raise KeyboardInterrupt  # stands for SIGKILL: nothing after the tracker's write runs


class Unreachable(CountingTracker):
    def find_cases(self, references: Any) -> Any:
        raise TrackerUnreachable("connection refused (injected)")


def intake(env: Env, tracker: Any, batch: list[IntakeRow]) -> list[Any]:
    audit = AuditLog(env.audit_path)
    try:
        return apply_intake(plan_intake(batch, tracker), tracker, audit, now=NOW)
    finally:
        audit.close()


def audit_state(env: Env) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """(records as (kind, data), pending intents as (kind, data))."""
    audit = AuditLog(env.audit_path)
    try:
        return [(r["kind"], r["data"]) for r in audit.records()], [(k, d) for _, k, d in audit.pending()]
    finally:
        audit.close()


@pytest.fixture
def env(tmp_path: Path) -> Env:
    env = Env(tmp_path)
    env.write_config()
    return env


def test_each_created_case_is_recorded_once_with_its_reference_key_and_fields(env: Env) -> None:
    tracker = env.tracker(NOW)
    created = intake(env, tracker, rows("FIA-A-1", "FIA-A-2"))
    records, pending = audit_state(env)
    assert pending == []
    assert records == [
        ("intake.create", {"reference": t.case.reference, "key": t.key, "fields": sla_to_json(t.sla)}) for t in created
    ]
    assert [t.case.reference for t in created] == ["FIA-A-1", "FIA-A-2"]
    assert all(t.sla.clocks for t in created)  # a submitted case's legal clock runs


def test_an_updated_case_is_recorded_with_its_reference_and_key(env: Env) -> None:
    tracker = env.tracker(NOW)
    [first] = intake(env, tracker, rows("FIA-U-1"))
    changed = [IntakeRow("cases.csv:2", first.case.model_copy(update={"title": "Changed title"}), None, None)]
    [updated] = intake(env, tracker, changed)
    records, pending = audit_state(env)
    assert pending == [] and records[1:] == [("intake.update", {"reference": "FIA-U-1", "key": updated.key})]
    assert updated.key == first.key and updated.case.title == "Changed title"


def test_a_tracker_that_creates_without_fields_gets_one_set_fields_record_per_case(env: Env) -> None:
    tracker = NoFieldsAtCreate(env.tracker(NOW))
    [made] = intake(env, tracker, rows("FIA-F-1"))
    expected = computed_sla(evaluate_case(made.case, made.history or [], WORKFLOW, NOW))
    assert tracker.calls["set_sla_fields"] == 1
    assert tracker.inner.find_cases(["FIA-F-1"])["FIA-F-1"].sla == expected  # written right after the create
    records, pending = audit_state(env)
    assert pending == []
    assert records == [
        ("intake.create", {"reference": "FIA-F-1", "key": made.key}),  # no fields: the create carried none
        (
            "intake.set_fields",
            {"key": made.key, "reference": "FIA-F-1", "fields": sla_to_json(expected), "evaluated_at": NOW.isoformat()},
        ),
    ]


def test_a_refused_sla_write_leaves_no_set_fields_record_or_intent_and_says_the_next_sync_writes_them(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = RefusesSlaWrite(env.tracker(NOW))
    with caplog.at_level(logging.WARNING):
        [made] = intake(env, tracker, rows("FIA-R-1"))
    records, pending = audit_state(env)
    assert records == [("intake.create", {"reference": "FIA-R-1", "key": made.key})] and pending == []
    assert "FIA-R-1: SLA fields not written at intake (field 'SLA' is not on the screen (injected)); " in caplog.text
    assert "the next sync writes them" in caplog.text


def test_a_killed_intake_leaves_one_intent_per_creation_and_the_next_run_records_them_marked_recovered(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(KeyboardInterrupt):
        intake(env, KilledAfterCreate(env.tracker(NOW)), rows("FIA-K-1", "FIA-K-2"))
    records, pending = audit_state(env)
    assert records == []
    assert pending == [("intake.create", {"reference": "FIA-K-1"}), ("intake.create", {"reference": "FIA-K-2"})]

    tracker = env.tracker(NOW)
    keys = {ref: t.key for ref, t in tracker.find_cases(["FIA-K-1", "FIA-K-2"]).items()}
    with caplog.at_level(logging.INFO):
        rerun = intake(env, tracker, rows("FIA-K-1", "FIA-K-2", "FIA-K-3"))  # the rerun also adds a case
    assert [t.case.reference for t in rerun] == ["FIA-K-3"]  # the two already there are not created again
    records, pending = audit_state(env)
    assert pending == []
    assert records[:2] == [
        ("intake.create", {"reference": "FIA-K-1", "key": keys["FIA-K-1"], "recovered": True}),
        ("intake.create", {"reference": "FIA-K-2", "key": keys["FIA-K-2"], "recovered": True}),
    ]
    assert [(k, d["reference"]) for k, d in records[2:]] == [("intake.create", "FIA-K-3")]
    assert "intake: recorded 2 writes an interrupted run left unrecorded" in caplog.text


def test_an_intent_whose_write_never_happened_is_dropped_and_the_row_created_again(env: Env) -> None:
    audit = AuditLog(env.audit_path)
    audit.begin_intents("intake.create", [{"reference": "FIA-D-1"}])  # killed before the tracker wrote
    audit.close()
    [made] = intake(env, env.tracker(NOW), rows("FIA-D-1"))
    records, pending = audit_state(env)
    assert pending == []
    assert records == [("intake.create", {"reference": "FIA-D-1", "key": made.key, "fields": sla_to_json(made.sla)})]


def test_an_interrupted_sla_write_is_recorded_only_when_the_tracker_holds_those_fields(env: Env) -> None:
    tracker = env.tracker(NOW)
    [held, other] = apply_intake(plan_intake(rows("FIA-S-1", "FIA-S-2"), tracker), tracker, None, now=NOW)
    not_held = computed_sla(evaluate_case(other.case, other.history or [], WORKFLOW, NOW + timedelta(days=40)))
    assert not_held != other.sla
    audit = AuditLog(env.audit_path)
    for tracked, fields in ((other, not_held), (held, held.sla)):  # the one dropped first: the next still checked
        data = {"key": tracked.key, "reference": tracked.case.reference, "fields": sla_to_json(fields)}
        audit.begin_intent("intake.set_fields", data)
    assert recover_creates(tracker, audit) == 1
    assert [(r["kind"], r["data"]) for r in audit.records()] == [
        (
            "intake.set_fields",
            {"key": held.key, "reference": "FIA-S-1", "fields": sla_to_json(held.sla), "recovered": True},
        )
    ]
    assert audit.pending() == []  # the write the tracker does not hold: dropped (the next sync writes it)
    audit.close()


def test_intents_of_other_kinds_are_left_to_their_own_recovery(env: Env) -> None:
    audit = AuditLog(env.audit_path)
    audit.begin_intent("sync.set_fields", {"key": "1", "reference": "FIA-O-1", "fields": {}})
    assert recover_creates(env.tracker(NOW), audit) == 0
    assert [k for _, k, _ in audit.pending()] == ["sync.set_fields"]
    audit.close()


def test_a_tracker_that_cannot_answer_leaves_the_intents_for_the_next_run(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    audit = AuditLog(env.audit_path)
    audit.begin_intents("intake.create", [{"reference": "FIA-N-1"}, {"reference": "FIA-N-2"}])
    with caplog.at_level(logging.WARNING):
        assert recover_creates(Unreachable(env.tracker(NOW)), audit) == 0
    assert [d for _, _, d in audit.pending()] == [{"reference": "FIA-N-1"}, {"reference": "FIA-N-2"}]
    assert "cannot check 2 interrupted intake writes yet: " in caplog.text
    assert "connection refused (injected)" in caplog.text
    audit.close()


class KilledDuringSlaWrite(NoFieldsAtCreate):
    """The SLA write reached the tracker, then the process died before intake recorded it."""

    def set_sla_fields(self, key: str, sla: Any) -> None:
        self.inner.set_sla_fields(key, sla)
        raise KeyboardInterrupt  # stands for SIGKILL


def test_a_kill_after_the_sla_write_leaves_its_intent_and_the_next_run_records_it_once(env: Env) -> None:
    with pytest.raises(KeyboardInterrupt):
        intake(env, KilledDuringSlaWrite(env.tracker(NOW)), rows("FIA-W-1"))
    tracker = env.tracker(NOW)
    made = tracker.find_cases(["FIA-W-1"])["FIA-W-1"]
    fields = {"key": made.key, "reference": "FIA-W-1", "fields": sla_to_json(made.sla), "evaluated_at": NOW.isoformat()}
    records, pending = audit_state(env)
    assert records == [("intake.create", {"reference": "FIA-W-1", "key": made.key})]
    assert pending == [("intake.set_fields", fields)]  # announced before the write was sent
    assert intake(env, tracker, rows("FIA-W-1")) == []  # nothing left to create
    records, pending = audit_state(env)
    assert pending == [] and records[1:] == [("intake.set_fields", {**fields, "recovered": True})]

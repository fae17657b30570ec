"""The SLA fields intake sends with a create (issue 19: the create-time prediction no test reached).
A tracker that writes the SLA fields in the creating request (Redmine) gets them predicted before the
case exists: they must be what the next sync computes. Pure: no tracker; the real-server side is
tests/test_intake_redmine.py. The MLA clock used here has no start field: it starts when the case
enters redirected_mla, i.e. at creation for a case created in that state; its target is 300 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from casebridge.workflows import load_workflow
from casebridge.workflows.intake import FieldsAtCreation, IntakeRow, predicted_sla
from tests.factories import make_case

WF = load_workflow()
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
MLA = timedelta(days=300)


def row(reference: str = "FIA-1", state: str | None = "redirected_mla", since: datetime | None = None) -> IntakeRow:
    return IntakeRow(f"cases.csv:{reference}", make_case(reference), state, since)


def test_a_tracker_that_back_dates_starts_the_clock_at_state_since() -> None:
    fields = predicted_sla(row(since=NOW - timedelta(days=3)), WF, NOW).clocks["mla"]
    assert (fields.state, fields.due_at) == ("running", NOW - timedelta(days=3) + MLA)


def test_without_state_since_the_clock_starts_at_intake_time() -> None:
    fields = predicted_sla(row(), WF, NOW).clocks["mla"]
    assert (fields.state, fields.due_at) == ("running", NOW + MLA)


def test_a_case_created_in_the_initial_state_starts_no_clock() -> None:
    fields = predicted_sla(row(state=None, since=NOW - timedelta(days=3)), WF, NOW)
    assert {name: f.state for name, f in fields.clocks.items()} == {
        "legal_review": "not_started", "followup": "not_started", "mla": "not_started"
    }  # fmt: skip


def test_a_tracker_that_stamps_its_own_time_starts_the_clock_at_that_second_and_ignores_state_since() -> None:
    created = NOW + timedelta(seconds=30, microseconds=700_000)  # Redmine keeps whole seconds
    fields = predicted_sla(row(since=NOW - timedelta(days=3)), WF, NOW, created_at=created).clocks["mla"]
    # evaluated no earlier than the creation, although intake's `now` is half a minute before it
    assert (fields.state, fields.due_at) == ("running", NOW + timedelta(seconds=30) + MLA)


def test_a_prediction_evaluated_after_the_due_time_is_breached() -> None:
    fields = predicted_sla(row(), WF, NOW + MLA + timedelta(days=1), created_at=NOW).clocks["mla"]
    assert (fields.state, fields.due_at) == ("breached", NOW + MLA)


def test_in_a_bulk_create_each_case_is_predicted_at_its_own_creation_when_asked_and_once() -> None:
    readings = iter([NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)])
    asked: list[datetime] = []

    def clock() -> datetime:
        asked.append(next(readings))
        return asked[-1]

    fields = FieldsAtCreation({"A": row("A"), "B": row("B")}, WF, NOW, clock)
    assert (len(fields), list(fields)) == (2, ["A", "B"])
    assert asked == []  # nothing predicted before the connector asks
    assert fields["B"].clocks["mla"].due_at == NOW + timedelta(minutes=1) + MLA  # B's create comes first
    assert fields["A"].clocks["mla"].due_at == NOW + timedelta(minutes=2) + MLA
    assert fields["B"].clocks["mla"].due_at == NOW + timedelta(minutes=1) + MLA  # asked again: the same
    assert len(asked) == 2


def test_in_a_bulk_create_on_a_back_dating_tracker_state_since_counts() -> None:
    fields = FieldsAtCreation({"A": row("A", since=NOW - timedelta(days=3))}, WF, NOW, None)
    assert fields["A"].clocks["mla"].due_at == NOW - timedelta(days=3) + MLA


def test_the_state_counts_from_the_whole_second_the_tracker_will_show() -> None:
    """Created at 09:00:00.7, Redmine shows 09:00:00: half a second after 09:00:00 + 300 days the next
    sync sees the clock breached, so the prediction must say so too (counting from 09:00:00.7 it would
    still be at risk)."""
    created = NOW + timedelta(microseconds=700_000)
    fields = predicted_sla(row(), WF, NOW + MLA + timedelta(microseconds=500_000), created_at=created)
    assert fields.clocks["mla"].state == "breached"

"""Intake predicts the SLA fields of many new cases at once (``FieldsAtCreation`` through
``clock_compare.computed_at``): the same fields as ``predicted_sla`` row by row, and the row-by-row path
(which names the failing case) whenever the batch cannot be used."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casebridge.workflows import intake as intake_module
from casebridge.workflows.clock_batch import evaluate_batch, workflow_states
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clock_compare import computed_fields
from casebridge.workflows.intake import FieldsAtCreation, IntakeRow, predicted_sla
from casebridge.workflows.sla import computed_sla
from tests.factories import make_case
from tests.test_clock_batch_equality import KINDS, LAWFUL, LAWFUL_STATES, NOW, case_specs, lawful_cases, read


@given(case_specs, st.data())
def test_fields_from_the_columns_equal_computed_sla_of_each_case(specs, data) -> None:  # type: ignore[no-untyped-def]
    kinds = data.draw(st.lists(st.integers(0, len(KINDS) - 1), min_size=len(specs), max_size=len(specs)))
    cases, texts = lawful_cases(specs, kinds)
    histories = [read(t) for t in texts]
    batch = evaluate_batch(cases, HistoryColumns.from_texts(texts, workflow_states(LAWFUL)), LAWFUL, NOW,
                           histories.__getitem__)  # fmt: skip
    assert computed_fields(batch) == [computed_sla(batch.results(i)) for i in range(len(cases))]


def rows(n: int, **overrides: object) -> dict[str, IntakeRow]:
    out = {}
    for i in range(n):
        request_type, basis = KINDS[i % len(KINDS)]
        state = LAWFUL_STATES[i % len(LAWFUL_STATES)] if i % 3 else None
        since = NOW - timedelta(days=i % 40, hours=i % 7) if i % 2 else None
        fields = {"request_type": request_type, "legal_basis": basis, "submitted_at": NOW - timedelta(days=i % 50)}
        case = make_case(f"IN-{i:04d}", **{**fields, **overrides})
        out[case.reference] = IntakeRow(f"cases.csv:{i + 2}", case, state, since)
    return out


def test_a_large_intake_gets_each_rows_own_fields_at_once() -> None:
    batch_rows = rows(120)
    fields = FieldsAtCreation(batch_rows, LAWFUL, NOW, None)
    assert {ref: fields[ref] for ref in batch_rows} == {
        ref: predicted_sla(row, LAWFUL, NOW) for ref, row in batch_rows.items()
    }
    assert len(fields._done) == len(batch_rows)  # all worked out by the first look-up: the batch ran


def test_a_small_intake_or_a_tracker_that_stamps_its_own_time_goes_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_batch(*_args: object) -> None:
        raise AssertionError("the batch must not run")

    monkeypatch.setattr("casebridge.workflows.clock_compare.computed_at", no_batch)
    few = rows(intake_module.BATCH_MIN - 1)
    small = FieldsAtCreation(few, LAWFUL, NOW, None)
    assert [small[r] for r in few] == [predicted_sla(row, LAWFUL, NOW) for row in few.values()]
    stamps = iter(NOW + timedelta(seconds=s) for s in range(1000))
    many = rows(64)
    stamped = FieldsAtCreation(many, LAWFUL, NOW, lambda: next(stamps))
    first = next(iter(many))
    assert stamped[first] == predicted_sla(many[first], LAWFUL, NOW, created_at=NOW)


def test_when_the_batch_fails_each_row_is_evaluated_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("batch failure")

    monkeypatch.setattr("casebridge.workflows.clock_compare.computed_at", broken)
    many = rows(40)
    fields = FieldsAtCreation(many, LAWFUL, NOW, None)
    assert [fields[r] for r in many] == [predicted_sla(row, LAWFUL, NOW) for row in many.values()]

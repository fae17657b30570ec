"""`casebridge report` through the columnar clock engine (workflows/report_clocks.py) says exactly what the
scalar engine says: the clock figures of every case, and whole reports (every group, every open breach).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casebridge.workflows import report as report_module
from casebridge.workflows.cases import StatusChange, TrackedCase
from casebridge.workflows.clock_batch import evaluate_batch, workflow_states
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.report import build_report, figures_of
from casebridge.workflows.report_clocks import batch_figures
from tests.factories import make_case
from tests.test_clock_batch_equality import KINDS, LAWFUL, NOW, case_specs, lawful_cases, read


def lawful_tracked(specs, kinds):  # type: ignore[no-untyped-def]
    cases, texts = lawful_cases(specs, kinds)
    histories = [read(t) for t in texts]
    pairs = zip(cases, histories, strict=True)
    tracked = [TrackedCase(str(i), c, h[-1].state if h else "draft", NOW) for i, (c, h) in enumerate(pairs)]
    return tracked, histories


def report_with_batch_from(min_batch: int, pairs, **options):  # type: ignore[no-untyped-def]
    """The report with the columnar engine used for any chunk of ``min_batch`` cases or more."""
    saved = report_module.MIN_BATCH
    report_module.MIN_BATCH = min_batch
    try:
        return build_report(pairs, LAWFUL, NOW, **options)
    finally:
        report_module.MIN_BATCH = saved


def scalar_report(pairs, **options):  # type: ignore[no-untyped-def]
    """Every case evaluated alone by the scalar engine (the batch never used)."""
    return report_with_batch_from(10**9, pairs, **options)


@given(case_specs, st.data())
def test_the_batch_gives_every_case_the_scalar_engines_clock_figures(specs, data) -> None:  # type: ignore[no-untyped-def]
    kinds = data.draw(st.lists(st.integers(0, len(KINDS) - 1), min_size=len(specs), max_size=len(specs)))
    tracked, histories = lawful_tracked(specs, kinds)
    cases = [t.case for t in tracked]
    want = [figures_of(evaluate_case(c, h, LAWFUL, NOW)) for c, h in zip(cases, histories, strict=True)]
    assert batch_figures(cases, histories, LAWFUL, NOW) == want


@given(st.lists(case_specs, min_size=1, max_size=4), st.data())
def test_a_report_through_the_batch_equals_the_scalar_report(groups, data) -> None:  # type: ignore[no-untyped-def]
    specs = [spec for group in groups for spec in group]
    kinds = data.draw(st.lists(st.integers(0, len(KINDS) - 1), min_size=len(specs), max_size=len(specs)))
    tracked, histories = lawful_tracked(specs, kinds)
    pairs = list(zip(tracked, histories, strict=True))
    by = ("provider", "legal_basis", "request_type", "agency", "month")
    assert report_with_batch_from(1, pairs, by=by) == scalar_report(pairs, by=by)


def test_cases_the_batch_leaves_to_the_scalar_engine_are_counted_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # recorded extensions and a target ending on a case field (Budapest Art. 29(7)) go the scalar way
    # inside a batch; the report must not tell them apart. Every case was sent d days ago and never answered.
    tracked, histories = [], []
    for d in range(1, 41):
        sent = NOW - timedelta(days=d)
        request_type, basis = KINDS[d % len(KINDS)]
        fields: dict[str, object] = {"request_type": request_type, "legal_basis": basis, "submitted_at": sent}
        if d == 29:  # eu-epo: a legal deadline
            fields["extensions"] = [{"clock": "legal_deadline", "at": NOW - timedelta(days=1)}]
        if d == 35:
            fields.update(request_type="preservation", legal_basis="budapest-29", mla_received_at=sent)
        tracked.append(TrackedCase(str(d), make_case(f"R-{d:03d}", **fields), "submitted", NOW))
        histories.append([StatusChange(sent, "submitted")])
    pairs = list(zip(tracked, histories, strict=True))
    used = []
    real = batch_figures

    def spy(cases, histories, workflow, now):  # type: ignore[no-untyped-def]
        used.append(len(cases))
        return real(cases, histories, workflow, now)

    monkeypatch.setattr("casebridge.workflows.report_clocks.batch_figures", spy)
    by = ("provider", "legal_basis", "month")
    assert build_report(pairs, LAWFUL, NOW, by=by) == scalar_report(pairs, by=by)
    assert used == [len(pairs)]  # the batch did run over them
    columns = HistoryColumns.from_changes(histories, workflow_states(LAWFUL))
    batch = evaluate_batch([t.case for t in tracked], columns, LAWFUL, NOW, histories.__getitem__)
    assert set(batch.scalar) == {28, 34}  # ...and left these two to the scalar engine
    figures = real([t.case for t in tracked], histories, LAWFUL, NOW)
    assert figures[28].legal_breached_open == 1  # the extended case is still breached: worth comparing

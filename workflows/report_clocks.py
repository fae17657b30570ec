"""The report's clock figures of many cases at once, through the columnar clock engine.

``casebridge report`` needs, per case, only a few counts of its clocks (legal deadlines met, breached,
breached and still open) and the open breaches it lists. Evaluating 100,000 cases one at a time with the
scalar engine was most of a report's time; here a chunk of cases goes through ``clock_batch`` at once and
the counts are read from its columns, so a ``ClockResult`` is never built. Cases the batch leaves to the
scalar engine (``ClockBatch.scalar``) are counted from their results with ``report.figures_of``, which
``report.case_facts`` uses for a case evaluated alone: both give equal figures
(tests/test_report_batch.py).

numpy is imported here: import this module lazily (``report.build_report`` does, for large inputs only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.cases import Case, StatusChange
from casebridge.workflows.clock_batch import STATES, ClockBatch, evaluate_changes
from casebridge.workflows.model import ClockKind, ClockState, Workflow
from casebridge.workflows.report import ClockFigures, OpenBreach, figures_of

__all__ = ["FigureColumns", "batch_figures", "figure_columns"]

I = NDArray[np.int64]  # noqa: E741
B = NDArray[np.bool_]

_MET, _BREACHED = STATES.index(ClockState.MET), STATES.index(ClockState.BREACHED)


@dataclass
class FigureColumns:
    """``figures_of`` of every case of a batch, as columns (row i: case i)."""

    legal_met: I
    legal_breached: I
    legal_breached_open: I
    breached: B  # any clock, legal or not
    open_breaches: dict[int, tuple[OpenBreach, ...]]  # only the cases with one

    def figures(self) -> list[ClockFigures]:
        rows = zip(
            self.legal_met.tolist(),
            self.legal_breached.tolist(),
            self.legal_breached_open.tolist(),
            self.breached.tolist(),
            strict=True,
        )
        return [ClockFigures(m, b, o, a, self.open_breaches.get(i, ())) for i, (m, b, o, a) in enumerate(rows)]


def batch_figures(
    cases: Sequence[Case], histories: Sequence[Sequence[StatusChange]], workflow: Workflow, now: datetime
) -> list[ClockFigures]:
    """``figures_of(evaluate_case(case, history, workflow, now))`` for every case, at once."""
    return figure_columns(evaluate_changes(cases, histories, workflow, now)).figures()


def figure_columns(batch: ClockBatch) -> FigureColumns:
    """The figures of every case of ``batch``: from its columns, or ``figures_of`` its scalar results."""
    n = len(batch.cases)
    met, breached, still_open = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    any_breached = np.zeros(n, np.bool_)
    opens: dict[int, list[OpenBreach]] = {}
    for name in batch.order:  # the workflow's clock order: the order of open_breaches
        c = batch.clocks.get(name)
        if c is None:
            continue
        hit = c.state == _BREACHED
        open_hit = hit & np.isnan(c.stopped)
        any_breached[c.rows] |= hit  # a case has each clock once: no repeated rows
        if c.kind == ClockKind.LEGAL:
            met[c.rows] += c.state == _MET
            breached[c.rows] += hit
            still_open[c.rows] += open_hit
        kind = str(c.kind)
        for j in np.flatnonzero(open_hit).tolist():
            due = float(c.due[j])
            at = None if due != due else datetime.fromtimestamp(due, UTC)  # as ClockBatch.results builds it
            opens.setdefault(int(c.rows[j]), []).append(OpenBreach(name, kind, at, float(c.overdue[j])))
    out = FigureColumns(met, breached, still_open, any_breached, {i: tuple(o) for i, o in opens.items()})
    for i, results in batch.scalar.items():  # never in a clock's columns (``evaluate_batch``)
        f = figures_of(results)
        out.legal_met[i], out.legal_breached[i] = f.legal_met, f.legal_breached
        out.legal_breached_open[i], out.breached[i] = f.legal_breached_open, f.breached
        if f.open_breaches:
            out.open_breaches[i] = f.open_breaches
    return out

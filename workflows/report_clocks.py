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
from datetime import UTC, datetime

import numpy as np

from casebridge.workflows.cases import Case, StatusChange
from casebridge.workflows.clock_batch import STATES, evaluate_changes
from casebridge.workflows.model import ClockKind, ClockState, Workflow
from casebridge.workflows.report import ClockFigures, OpenBreach, figures_of

__all__ = ["batch_figures"]

_MET, _BREACHED = STATES.index(ClockState.MET), STATES.index(ClockState.BREACHED)


def batch_figures(
    cases: Sequence[Case], histories: Sequence[Sequence[StatusChange]], workflow: Workflow, now: datetime
) -> list[ClockFigures]:
    """``figures_of(evaluate_case(case, history, workflow, now))`` for every case, at once."""
    n = len(cases)
    batch = evaluate_changes(cases, histories, workflow, now)
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
    out = [
        ClockFigures(m, b, o, a, tuple(opens.get(i, ())))
        for i, (m, b, o, a) in enumerate(
            zip(met.tolist(), breached.tolist(), still_open.tolist(), any_breached.tolist(), strict=True)
        )
    ]
    for i, results in batch.scalar.items():
        out[i] = figures_of(results)
    return out

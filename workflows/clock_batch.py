"""The clock engine over columns: every case of a pass at once, for the sync comparison and ``status``.

``evaluate_batch`` applies the rules of ``workflows.clocks`` (the reference, see its docstring) to
numpy columns built from the stored rows (``workflows.clock_columns``): the same float operations in the
same order, so every figure equals the scalar engine's exactly (tests/test_clock_batch_equality.py). The
scalar engine stays the fallback: rows the columns cannot read, targets that end on a case field
(Budapest Art. 29(7)), cases with recorded per-clock extensions and histories longer than
``MAX_CHANGES`` go through ``clocks.evaluate_case``. Law-counted periods (eu-1182-71) take the target
that ends at the law's due instant, as ``clocks._counted`` does, one law look-up per distinct start
bucket. Results stay in columns; ``results(i)`` builds one case's ``ClockResult`` list when asked.

numpy is imported here: import this module lazily (never on a command's start-up path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.cases import Case, StatusChange
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clock_eval import STATES, ClockColumns, evaluate_columns, seen_changes
from casebridge.workflows.clock_inputs import CaseColumns, law_targets
from casebridge.workflows.clocks import (
    ClockResult,
    _ClockSpec,
    _plan_for,
    _result,
    _spec,
    evaluate_case,
    evaluate_clock,
)
from casebridge.workflows.counting import Establishments
from casebridge.workflows.model import Calendar, ClockDef, ClockState, ClockTarget, Workflow

__all__ = [
    "MAX_CHANGES",
    "STATES",
    "ClockBatch",
    "ClockColumns",
    "evaluate_batch",
    "evaluate_changes",
    "evaluate_clocks",
    "workflow_states",
]

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741
B = NDArray[np.bool_]
MAX_CHANGES = 64  # a longer history (seen by now) is left to the scalar engine
_FLOATS = ("target", "warn", "extension")  # a policy target's float figures


@dataclass
class ClockBatch:
    """Results of a batch: per clock its columns, per fallback case its scalar results."""

    cases: Sequence[Case]
    inputs: CaseColumns  # the cases' inputs as read for the batch (their instants: ``moments``)
    clocks: dict[str, ClockColumns]
    order: list[str]  # workflow clock order
    scalar: dict[int, list[ClockResult]]
    where: dict[str, I]  # clock -> per case its position in the clock's columns (-1: none)

    def results(self, i: int) -> list[ClockResult]:
        """Case i's results, equal to what ``clocks.evaluate_case`` returns."""
        if i in self.scalar:
            return self.scalar[i]
        out = []
        for name in self.order:
            j = int(self.where[name][i]) if name in self.where else -1
            if j >= 0:
                out.append(_materialise(self.clocks[name], j, self.cases[i]))
        return out


def _dt(e: float) -> datetime | None:
    return None if e != e else datetime.fromtimestamp(e, UTC)


def _materialise(c: ClockColumns, j: int, case: Case) -> ClockResult:
    target = c.policy[int(c.group[j])]
    state, ts = STATES[int(c.state[j])], float(c.target_s[j])
    if state is ClockState.NOT_STARTED:
        return _result(c.name, c.kind, state, None, None, None, None, 0.0, None, 0.0, ts, 0, target, 0.0)
    started = getattr(case, c.start_field or "") if c.from_field[j] else _dt(float(c.started[j]))
    elapsed = float(c.elapsed[j])
    return _result(
        c.name, c.kind, state, started, _dt(float(c.due[j])), _dt(float(c.warn[j])), _dt(float(c.stopped[j])),
        elapsed, ts - elapsed, float(c.paused[j]), ts, int(c.cycle[j]), target, float(c.overdue[j]),
    )  # fmt: skip


def workflow_states(workflow: Workflow) -> list[str]:
    """Every state name the workflow's clocks react to (the codes of ``HistoryColumns``)."""
    names = set(workflow.states)
    for clock in workflow.clocks.values():
        names |= clock.start_on | clock.stop_on | clock.met_on | clock.pause_in
    return sorted(names)


def evaluate_batch(
    cases: Sequence[Case],
    hist: HistoryColumns,
    workflow: Workflow,
    now: datetime,
    history_of: Callable[[int], Sequence[StatusChange]],
) -> ClockBatch:
    """Every clock of every case at ``now``; ``hist`` row i is case i's history. ``history_of(i)`` reads
    case i's history the ordinary way, for the cases left to the scalar engine."""
    plan = _plan_for(workflow)
    now_e = now.timestamp()
    n = len(cases)
    inputs = CaseColumns(cases, [spec.start_field for spec in plan.specs.values() if spec.start_field])
    gid = inputs.group
    pairs_of = [plan.pairs_for(*key) for key in inputs.kinds]  # type: ignore[arg-type]  # the cases' own kinds
    seen = seen_changes(hist, now_e)
    fallback = ~hist.readable | inputs.recorded | (seen > MAX_CHANGES)
    for g, pairs in enumerate(pairs_of):
        if any(t.ends_on_field for _s, t in pairs):
            fallback |= gid == g
    batch = ClockBatch(cases, inputs, {}, list(plan.specs), {}, {})
    for name, spec in plan.specs.items():
        policy = [next((t for s, t in pairs if s.name == name), None) for pairs in pairs_of]
        has = np.array([t is not None for t in policy], np.bool_)[gid] & ~fallback if n else np.zeros(0, np.bool_)
        rows = np.flatnonzero(has)
        if not len(rows):
            continue
        where = np.full(n, -1, np.int64)
        where[rows] = np.arange(len(rows))
        batch.where[name] = where
        group = gid[rows]
        cols = _clock(spec, hist, seen, rows, group, policy, inputs, now_e, workflow.establishments)
        batch.clocks[name] = cols
    for i in np.flatnonzero(fallback).tolist():
        batch.scalar[i] = evaluate_case(cases[i], history_of(i), workflow, now)
    return batch


def _clock(spec: _ClockSpec, hist: HistoryColumns, seen: I, rows: I, group: I, policy: list[ClockTarget | None],
           inputs: CaseColumns, now_e: float, establishments: Establishments | None) -> ClockColumns:  # fmt: skip
    """One clock over the rows, with each row's policy target (extensions folded in; the law's due
    instant for law-counted periods)."""
    base, warn0, ext = (np.array([getattr(t, a) if t else 0.0 for t in policy])[group] for a in _FLOATS)
    maxe = np.array([t.max_extensions if t else 0 for t in policy], np.int64)[group]
    target_s: F = np.where(maxe > 0, base + np.minimum(inputs.used[rows], maxe) * ext, base)
    warn_s = warn0 + (target_s - base)
    moment, moment_us = inputs.moments(spec.start_field, rows)
    law = law_targets(policy, rows, inputs, establishments)
    return evaluate_columns(spec, hist, seen, rows, group, policy, target_s, warn_s, moment, moment_us, now_e, law)


def evaluate_changes(
    cases: Sequence[Case], histories: Sequence[Sequence[StatusChange]], workflow: Workflow, now: datetime
) -> ClockBatch:
    """``evaluate_batch`` over histories already read (``StatusChange`` lists: intake, report)."""
    hist = HistoryColumns.from_changes(histories, workflow_states(workflow))
    return evaluate_batch(cases, hist, workflow, now, histories.__getitem__)


def evaluate_clocks(
    clock: ClockDef,
    target: ClockTarget,
    calendar: Calendar,
    cases: Sequence[Case],
    histories: Sequence[Sequence[StatusChange]],
    now: datetime,
    establishments: Establishments | None = None,
) -> list[ClockResult]:
    """One clock definition over many cases (``clocks.evaluate_clock`` for each, at once)."""
    spec = _spec(clock, calendar)
    states = sorted(clock.start_on | clock.stop_on | clock.met_on | clock.pause_in)
    hist = HistoryColumns.from_changes(histories, states)
    now_e, n = now.timestamp(), len(cases)
    inputs = CaseColumns(cases, [spec.start_field] if spec.start_field else [])
    seen = seen_changes(hist, now_e)
    fallback = ~hist.readable | (seen > MAX_CHANGES) | bool(target.ends_on_field) | inputs.recorded
    rows = np.flatnonzero(~fallback)
    group = np.zeros(len(rows), np.int64)
    cols = _clock(spec, hist, seen, rows, group, [target], inputs, now_e, establishments)
    out: list[ClockResult | None] = [None] * n
    for j, i in enumerate(rows.tolist()):
        out[i] = _materialise(cols, j, cases[i])
    for i in np.flatnonzero(fallback).tolist():
        out[i] = evaluate_clock(clock, target, calendar, cases[i], histories[i], now)
    return out  # type: ignore[return-value]  # every slot is filled

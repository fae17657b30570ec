"""The sync plan through the batch clock path: the cases streamed from the state store, ``BATCH_SIZE`` at
a time, evaluated as columns straight from their stored JSON text (``workflows.clock_columns``,
``clock_batch``, ``clock_compare``), so a no-op pass parses no history, no SLA fields and builds no
clock result for a case whose fields stay as they are.

Only a case whose fields changed is parsed and planned the ordinary way (``sync_plan.plan_case`` on its
materialised results); with reminders, a case gets only the results of its counting clocks that have a
reminder rule (the others can never give one). Everything else keeps the scalar engine, exactly as
before: cases listed or re-read this pass (already parsed), rows the columns cannot read, targets that
end on a case field, a chunk too small to pay, and any chunk the batch fails on (the scalar pass then
reports the failing case alone, as it always did). numpy is imported here: import this module lazily.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from itertools import islice

import numpy as np
from numpy.typing import NDArray

from casebridge.app.sync_plan import SyncPlan, plan_case, plan_scalar
from casebridge.state.store import StoredCase
from casebridge.workflows.cases import StatusChange, TrackedCase
from casebridge.workflows.clock_batch import STATES, ClockBatch, _materialise, evaluate_batch, workflow_states
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clock_compare import changed_cases, held_columns
from casebridge.workflows.clocks import ClockResult
from casebridge.workflows.held_numbers import held_from_numbers
from casebridge.workflows.model import ClockState, Workflow
from casebridge.workflows.reminders import plan_reminders

__all__ = ["BATCH_SIZE", "MIN_BATCH", "plan_chunks"]

log = logging.getLogger(__name__)

# cases per batch: what a pass holds parsed at once. 10,000 against 20,000 at 100,000 cases through the CLI
# (bench/sync_batch.py's fixture): 196 MB against 270 MB peak, no more CPU (2.7-2.9 s against 2.9-3.1 s)
BATCH_SIZE = 10_000
MIN_BATCH = 32  # fewer stored cases in a chunk: the scalar engine (numpy's set-up would not pay)
_COUNTING = np.array([STATES.index(ClockState.RUNNING), STATES.index(ClockState.AT_RISK)], np.int64)


def plan_chunks(
    plan: SyncPlan,
    cases: Iterable[TrackedCase],
    history_of: Callable[[TrackedCase], list[StatusChange]],
    workflow: Workflow,
    *,
    remind: bool,
) -> None:
    """``sync_plan.plan_scalar``'s plan, the stored cases through the batch path, in the cases' order."""
    it = iter(cases)
    while chunk := list(islice(it, BATCH_SIZE)):
        stored = [j for j, t in enumerate(chunk) if isinstance(t, StoredCase) and t.pending]
        if len(stored) < MIN_BATCH:
            plan_scalar(plan, chunk, history_of, workflow, remind=remind)
            continue
        _plan_chunk(plan, chunk, stored, history_of, workflow, remind=remind)


def _plan_chunk(
    plan: SyncPlan,
    chunk: list[TrackedCase],
    stored: list[int],
    history_of: Callable[[TrackedCase], list[StatusChange]],
    workflow: Workflow,
    *,
    remind: bool,
) -> None:
    rows: list[StoredCase] = [chunk[j] for j in stored]  # type: ignore[misc]  # selected as StoredCase
    try:
        batch, changed = _evaluate(rows, history_of, workflow, plan)
    except Exception:  # the scalar engine is the reference: it plans this chunk and reports a bad case alone
        log.info("batch clock path failed on a chunk of %d cases; evaluating them one by one", len(chunk))
        log.debug("batch failure", exc_info=True)
        plan_scalar(plan, chunk, history_of, workflow, remind=remind)
        return
    wanted = _reminder_clocks(batch, len(rows)) if remind else {}
    position = dict(zip(stored, range(len(rows)), strict=True))
    for j, tracked in enumerate(chunk):
        i = position.get(j)
        if i is None:  # listed or re-read this pass: already parsed
            plan_scalar(plan, [tracked], history_of, workflow, remind=remind)
            continue
        plan.evaluated += 1
        if changed[i] or (remind and i in batch.scalar):
            plan_case(plan, rows[i].complete(), batch.results(i), workflow, remind=remind)
        elif i in wanted:  # no write: only the reminders (the SLA fields stay unparsed)
            plan.reminders += plan_reminders([(rows[i], _some_results(batch, i, wanted[i]))], workflow, now=plan.now)


def _evaluate(
    rows: list[StoredCase],
    history_of: Callable[[TrackedCase], list[StatusChange]],
    workflow: Workflow,
    plan: SyncPlan,
) -> tuple[ClockBatch, list[bool]]:
    """Every clock of these rows at the plan's ``now``, and per row whether its SLA fields change."""
    hist = HistoryColumns.from_texts([t.history_text for t in rows], workflow_states(workflow))

    def history(i: int) -> list[StatusChange]:
        return history_of(rows[i].complete())

    batch = evaluate_batch([t.case for t in rows], hist, workflow, plan.now, history)
    texts, numbers = [t.sla_text for t in rows], [t.sla_numbers for t in rows]
    clocks = list(workflow.clocks)
    # the numbers when the store holds them for the whole chunk (a store written by this version); else the text
    held = held_from_numbers(numbers, clocks) if None not in numbers else held_columns(texts, clocks)
    return batch, changed_cases(batch, held, texts).tolist()


def _reminder_clocks(batch: ClockBatch, n: int) -> dict[int, list[str]]:
    """Per case (outside ``batch.scalar``), the clocks that may give a reminder: counting down under a
    target with a reminder rule, in the workflow's clock order."""
    out: dict[int, list[str]] = {}
    for name in batch.order:
        c = batch.clocks.get(name)
        if c is None:
            continue
        ruled = np.array([t is not None and t.remind is not None for t in c.policy], np.bool_)
        if not ruled.any():
            continue
        hit: NDArray[np.bool_] = ruled[c.group] & np.isin(c.state, _COUNTING)
        for i in c.rows[hit].tolist():
            out.setdefault(i, []).append(name)
    return out


def _some_results(batch: ClockBatch, i: int, names: list[str]) -> list[ClockResult]:
    case = batch.cases[i]
    return [_materialise(batch.clocks[name], int(batch.where[name][i]), case) for name in names]

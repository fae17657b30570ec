"""The sync comparison over columns: which cases' computed SLA fields differ from the held ones.

``changed_cases`` answers what ``sla.changed_sla(results, held) is not None`` answers for every case of a
``ClockBatch`` at once, comparing epoch microseconds (whole seconds, as ``sla.whole_second`` rounds the
engine's datetimes) with the held columns of ``clock_columns.HeldColumns``. ``changes(i)`` then builds the
``SlaFields`` to write for one changed case with the scalar functions. numpy: import this module lazily.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.cases import Case, ClockFields, SlaFields, StatusChange
from casebridge.workflows.clock_batch import STATES, ClockBatch, ClockColumns, evaluate_changes
from casebridge.workflows.clock_columns import HeldColumns
from casebridge.workflows.model import ClockState, Workflow
from casebridge.workflows.sla import changed_sla, computed_sla, sla_from_json

__all__ = ["changed_cases", "changes", "computed_at", "computed_fields", "held_columns"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_BREACHED = STATES.index(ClockState.BREACHED)


def held_columns(texts: Sequence[str], clocks: Sequence[str]) -> HeldColumns:
    """The SLA fields the rows hold (their stored JSON text) for these clocks."""
    return HeldColumns.from_texts(texts, clocks, [str(s) for s in STATES])


def whole_micros(e: NDArray[np.float64]) -> NDArray[np.int64]:
    """Epoch microseconds of ``whole_second(datetime.fromtimestamp(e, UTC))``: CPython's rounding
    (modf, then microseconds rounded half to even, carried into the seconds), microseconds dropped."""
    safe = np.where(np.isnan(e), 0.0, e)
    whole = np.trunc(safe)
    us = np.rint((safe - whole) * 1e6)
    whole = np.where(us >= 1e6, whole + 1, np.where(us < 0, whole - 1, whole))
    return whole.astype(np.int64) * 1_000_000


def changed_cases(batch: ClockBatch, held: HeldColumns, held_texts: Sequence[str]) -> NDArray[np.bool_]:
    """Per case: would ``changed_sla`` find something to write?"""
    n = len(batch.cases)
    changed = np.zeros(n, np.bool_)
    level = np.zeros(n, np.int64)
    for name, c in batch.clocks.items():
        rows = c.rows
        due_null, warn_null = np.isnan(c.due), np.isnan(c.warn)
        same = held.present[name][rows] & (held.state[name][rows] == c.state)
        same &= np.where(
            due_null,
            held.due_null[name][rows],
            ~held.due_null[name][rows] & (held.due[name][rows] == whole_micros(c.due)),
        )
        same &= np.where(
            warn_null,
            held.warn_null[name][rows],
            ~held.warn_null[name][rows] & (held.warn[name][rows] == whole_micros(c.warn)),
        )
        changed[rows] |= ~same
        level[rows] = np.maximum(level[rows], _levels(c))
    changed |= level != held.level
    for i, results in batch.scalar.items():
        changed[i] = changed_sla(results, _held(held_texts[i])) is not None
    for i in np.flatnonzero(~held.readable).tolist():
        if i not in batch.scalar:
            changed[i] = changed_sla(batch.results(i), _held(held_texts[i])) is not None
    return changed


def _levels(c: ClockColumns) -> NDArray[np.int64]:
    """Per row of one clock, the escalation level it has reached (``sla.escalation_level``'s rule)."""
    lv = np.zeros(len(c.rows), np.int64)
    breached = c.state == _BREACHED
    for g, target in enumerate(c.policy):
        rule = None if target is None else target.escalate
        if rule is None:
            continue
        mine = breached & (c.group == g)
        for step in rule.levels:
            lv = np.where(mine & (c.overdue >= step.after), np.maximum(lv, step.level), lv)
    return lv


def computed_fields(batch: ClockBatch) -> list[SlaFields]:
    """``sla.computed_sla(batch.results(i))`` for every case, without building a ``ClockResult``: each
    clock's fields straight from its columns (whole seconds as ``whole_micros`` rounds them)."""
    n = len(batch.cases)
    clocks: list[dict[str, ClockFields]] = [{} for _ in range(n)]
    level = np.zeros(n, np.int64)
    names = [str(s) for s in STATES]
    for name in batch.order:  # the workflow's clock order, as evaluate_case returns them
        c = batch.clocks.get(name)
        if c is None:
            continue
        due, warn = _instants(c.due), _instants(c.warn)
        for i, d, w, s in zip(c.rows.tolist(), due, warn, c.state.tolist(), strict=True):
            clocks[i][name] = ClockFields(d, w, names[s])
        level[c.rows] = np.maximum(level[c.rows], _levels(c))
    out = [SlaFields(fields, lv) for fields, lv in zip(clocks, level.tolist(), strict=True)]
    for i, results in batch.scalar.items():
        out[i] = computed_sla(results)
    return out


def computed_at(
    cases: Sequence[Case], histories: Sequence[Sequence[StatusChange]], workflow: Workflow, now: datetime
) -> list[SlaFields]:
    """``computed_sla(evaluate_case(case, history, workflow, now))`` for every case, through the batch."""
    return computed_fields(evaluate_changes(cases, histories, workflow, now))


def _instants(e: NDArray[np.float64]) -> list[datetime | None]:
    """``whole_second(datetime.fromtimestamp(x, UTC))`` of each value, None for NaN."""
    micros, unset = whole_micros(e).tolist(), np.isnan(e).tolist()
    return [None if u else _EPOCH + timedelta(microseconds=m) for m, u in zip(micros, unset, strict=True)]


def _same(
    null: NDArray[np.bool_], held_null: NDArray[np.bool_], held: NDArray[np.int64], computed: NDArray[np.float64]
) -> NDArray[np.bool_]:
    return np.where(null, held_null, ~held_null & (held == whole_micros(computed)))


def _held(text: str) -> SlaFields:
    return sla_from_json(json.loads(text))


def changes(batch: ClockBatch, i: int, held_text: str) -> SlaFields | None:
    """What a pass writes on case i (``changed_sla`` of its results), built only for a changed case."""
    return changed_sla(batch.results(i), _held(held_text))

"""The sync comparison over columns: which cases' computed SLA fields differ from the held ones.

``changed_cases`` answers what ``sla.changed_sla(results, held) is not None`` answers for every case of a
``ClockBatch`` at once, comparing epoch microseconds (whole seconds, as ``sla.whole_second`` rounds the
engine's datetimes) with the held columns of ``clock_columns.HeldColumns``. ``changes(i)`` then builds the
``SlaFields`` to write for one changed case with the scalar functions. numpy: import this module lazily.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.cases import SlaFields
from casebridge.workflows.clock_batch import STATES, ClockBatch
from casebridge.workflows.clock_columns import HeldColumns
from casebridge.workflows.model import ClockState
from casebridge.workflows.sla import changed_sla, sla_from_json

__all__ = ["changed_cases", "changes", "held_columns"]

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
        lv = np.zeros(len(rows), np.int64)
        breached = c.state == _BREACHED
        for g, target in enumerate(c.policy):
            rule = None if target is None else target.escalate
            if rule is None:
                continue
            mine = breached & (c.group == g)
            for step in rule.levels:
                lv = np.where(mine & (c.overdue >= step.after), np.maximum(lv, step.level), lv)
        level[rows] = np.maximum(level[rows], lv)
    changed |= level != held.level
    for i, results in batch.scalar.items():
        changed[i] = changed_sla(results, _held(held_texts[i])) is not None
    for i in np.flatnonzero(~held.readable).tolist():
        if i not in batch.scalar:
            changed[i] = changed_sla(batch.results(i), _held(held_texts[i])) is not None
    return changed


def _same(
    null: NDArray[np.bool_], held_null: NDArray[np.bool_], held: NDArray[np.int64], computed: NDArray[np.float64]
) -> NDArray[np.bool_]:
    return np.where(null, held_null, ~held_null & (held == whole_micros(computed)))


def _held(text: str) -> SlaFields:
    return sla_from_json(json.loads(text))


def changes(batch: ClockBatch, i: int, held_text: str) -> SlaFields | None:
    """What a pass writes on case i (``changed_sla`` of its results), built only for a changed case."""
    return changed_sla(batch.results(i), _held(held_text))

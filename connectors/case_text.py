"""Cases as a tracker stores them, as text columns: what ``Connector.list_case_texts`` returns.

The read-only commands at agency scale (``status`` over 100,000 cases) read these columns straight into
the batch clock engine (``workflows.clock_columns.HistoryColumns.from_texts``) instead of building one
``StatusChange`` per history entry. ``histories`` follow the state store's layout exactly
(``json.dumps([[iso(at), state], ...])``: ``[["2026-01-31T23:59:59.000000Z", "draft"], ...]``), so a row
written by casebridge reads as columns; the caller reads anything else the ordinary way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CaseTexts"]


@dataclass(frozen=True)
class CaseTexts:
    """Stored cases, one list per column, row i of every list is case i: ``data`` the case's JSON
    (``Case.model_dump_json``), ``sla`` its SLA fields' JSON, ``histories`` its status history as JSON
    text in seq order (None: no history rows)."""

    keys: Sequence[str]
    data: Sequence[str]
    states: Sequence[str]
    updated_at: Sequence[str]
    sla: Sequence[str]
    escalation_levels: Sequence[int]
    histories: Sequence[str | None]

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[object, ...]]) -> CaseTexts:
        """From rows of (key, data, state, updated_at, sla, escalation_level, history)."""
        if not rows:
            return cls([], [], [], [], [], [], [])
        keys, data, states, updated, sla, levels, histories = zip(*rows, strict=True)
        return cls([str(k) for k in keys], data, states, updated, sla, levels, histories)

    def __len__(self) -> int:
        return len(self.keys)

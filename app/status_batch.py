"""``status`` over the embedded tracker's stored text, through the batch clock path.

The tracker lists every case as text (``Connector.list_case_texts``): each case is read as
``list_cases`` reads it (the same ``TrackedCase``), its history goes straight from text into columns
(``HistoryColumns.from_texts``) and every clock of a chunk is evaluated at once (``evaluate_batch``).
The reference stays the ordinary path, exactly as in ``app.sync_batch``:

- a listing with any row that does not read cleanly (a case pydantic rejects, a stamp or SLA text that
  does not parse, two rows with one reference) is not used: the caller lists the ordinary way, which
  reports the row as it always did;
- rows the columns cannot hold (a history not in the store's layout, unsorted, recorded extensions, a
  target ending on a case field) are evaluated by the scalar engine inside ``evaluate_batch``, their
  history read the ordinary way (``history_of``);
- a chunk the batch fails on (a case whose clocks cannot be evaluated) raises here: the caller evaluates
  it with ``sync_plan.evaluate_cases``, which reports that case alone.

numpy is imported only when a chunk is evaluated (never on ``status``'s start-up path).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from casebridge.connectors.case_text import CaseTexts
from casebridge.connectors.local_schema import parse, sla_from_row
from casebridge.workflows.cases import Case, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.model import Workflow

if TYPE_CHECKING:
    from casebridge.workflows.clock_batch import ClockBatch

__all__ = ["BATCH_SIZE", "MIN_BATCH", "Listing", "evaluate_chunk", "read_listing"]

MIN_BATCH = 32  # fewer cases: the ordinary path (numpy's set-up would not pay), as app.sync_batch
BATCH_SIZE = 20_000  # cases evaluated at once: columns of 20,000 x 3 clocks stay a few MB


@dataclass
class Listing:
    """The cases ``list_cases`` gives, sorted by reference as ``status`` sorts them, with each one's
    history text (row i of both)."""

    cases: list[TrackedCase]
    histories: list[str | None]


def read_listing(texts: CaseTexts) -> Listing | None:
    """Every row read as ``list_cases`` reads it, sorted by reference; None when one does not read
    cleanly (the ordinary listing then reports it, named, as before).

    Column by column (every case validated, every stamp parsed, then the ``TrackedCase`` built): each
    step is a loop in C around one call, not a Python loop over 100,000 rows."""
    validate = Case.__pydantic_validator__.validate_json  # what Case.model_validate_json calls
    try:
        cases = list(map(validate, texts.data))
        updated = list(map(parse, texts.updated_at))
        read = list(map(TrackedCase, texts.keys, cases, texts.states, updated, _sla(texts)))
    except Exception:
        return None
    references = [case.reference for case in cases]
    if len(set(references)) != len(references):  # ties would sort in the listing's order: keep the ordinary path
        return None
    order = sorted(range(len(read)), key=references.__getitem__)
    histories = texts.histories
    return Listing([read[i] for i in order], [histories[i] for i in order])


def _sla(texts: CaseTexts) -> list[SlaFields]:
    """Each row's SLA fields (``sla_from_row``); rows with none written yet (``{}``, every case before its
    first sync) share one per escalation level: read-only here."""
    unwritten: dict[int, SlaFields] = {}
    out = []
    for sla, level in zip(texts.sla, texts.escalation_levels, strict=True):
        if sla == "{}" and type(level) is int:
            fields = unwritten.get(level)
            if fields is None:
                fields = unwritten[level] = sla_from_row(sla, level)
        else:
            fields = sla_from_row(sla, level)
        out.append(fields)
    return out


def evaluate_chunk(
    cases: list[TrackedCase],
    histories: list[str | None],
    history_of: Callable[[TrackedCase], list[StatusChange]],
    workflow: Workflow,
    now: datetime,
) -> ClockBatch:
    """Every clock of these cases at ``now`` (``ClockBatch.results(i)`` is ``clocks.evaluate_case``'s
    result for case i). Raises whatever the scalar engine raises on a case evaluated inside the batch."""
    from casebridge.workflows.clock_batch import evaluate_batch, workflow_states  # numpy: only here
    from casebridge.workflows.clock_columns import HistoryColumns

    hist = HistoryColumns.from_texts(histories, workflow_states(workflow))
    return evaluate_batch([t.case for t in cases], hist, workflow, now, lambda i: history_of(cases[i]))

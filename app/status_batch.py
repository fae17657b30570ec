"""``status`` over the embedded tracker's stored text, through the batch clock path.

The tracker lists every case as text (``Connector.list_case_texts``): each case is read as
``list_cases`` reads it (the same ``TrackedCase``, but for the SLA fields: ``status`` prints the escalation
level and no held clock field, so only the level is kept; each row's SLA text is still checked, and one
``list_cases`` would refuse is refused), its history goes straight from text into columns
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

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from casebridge.connectors.case_text import CaseTexts
from casebridge.connectors.local_schema import parse, sla_from_row
from casebridge.workflows.cases import Case, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.model import Workflow

if TYPE_CHECKING:
    from casebridge.workflows.clock_batch import ClockBatch
    from casebridge.workflows.clock_columns import HistoryColumns

__all__ = [
    "BATCH_SIZE",
    "MIN_BATCH",
    "Listing",
    "evaluate_chunk",
    "evaluate_texts",
    "read_cases",
    "read_listing",
    "read_rows",
]

MIN_BATCH = 32  # fewer cases: the ordinary path (numpy's set-up would not pay), as app.sync_batch
BATCH_SIZE = 20_000  # cases evaluated at once: columns of 20,000 x 3 clocks stay a few MB


# A stored SLA text in the layout casebridge writes (``local_schema.sla_to_json``) whose every stamp
# ``sla_from_row`` certainly reads (years 0001-9999, a day its month always has: a 29 February is read by
# ``sla_from_row`` itself), names and states plain JSON strings without escapes.
_DAY = r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
_STAMP = r'"(?!0000)[0-9]{4}-' + _DAY + r'T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z"'
_PLAIN = r'"[^"\\\x00-\x1f]*"'
_CLOCK = (
    _PLAIN + r': \{"due_at": (?:' + _STAMP + r'|null), "state": ' + _PLAIN + r', "warn_at": (?:' + _STAMP + r"|null)\}"
)
_HELD = re.compile(r"\{(?:" + _CLOCK + r"(?:, " + _CLOCK + r")*)?\}")


@dataclass
class Listing:
    """The cases ``list_cases`` gives, sorted by reference as ``status`` sorts them, with each one's
    history text (row i of both). A case's ``sla`` holds its escalation level only (its SLA text checked
    as ``list_cases`` reads it: ``_sla``)."""

    cases: list[TrackedCase]
    histories: list[str | None]


def read_listing(texts: CaseTexts) -> Listing | None:
    """Every row read as ``list_cases`` reads it, sorted by reference; None when one does not read
    cleanly (the ordinary listing then reports it, named, as before) or two share a reference."""
    read = read_rows(texts)
    if read is None:
        return None
    references = [tracked.case.reference for tracked in read]
    if len(set(references)) != len(references):  # ties would sort in the listing's order: keep the ordinary path
        return None
    order = sorted(range(len(read)), key=references.__getitem__)
    histories = texts.histories
    return Listing([read[i] for i in order], [histories[i] for i in order])


def read_rows(texts: CaseTexts) -> list[TrackedCase] | None:
    """Every row read as ``list_cases`` reads it (but for the SLA fields: ``_sla``), in the listing's
    order; None when one does not read cleanly.

    Column by column (every case validated, every stamp parsed, then the ``TrackedCase`` built): each
    step is a loop in C around one call, not a Python loop over 100,000 rows."""
    checked = _checked(texts)
    if checked is None:
        return None
    cases, updated, sla = checked
    return list(map(TrackedCase, texts.keys, cases, texts.states, updated, sla))


def read_cases(texts: CaseTexts) -> list[Case] | None:
    """``read_rows``' cases alone (every row checked as it checks them), for a command that needs no
    ``TrackedCase`` (``report``)."""
    checked = _checked(texts)
    return None if checked is None else checked[0]


def _checked(texts: CaseTexts) -> tuple[list[Case], list[datetime], list[SlaFields]] | None:
    validate = Case.__pydantic_validator__.validate_json  # what Case.model_validate_json calls
    try:
        return list(map(validate, texts.data)), list(map(parse, texts.updated_at)), _sla(texts)
    except Exception:
        return None


def _sla(texts: CaseTexts) -> list[SlaFields]:
    """Each row's escalation level as ``SlaFields`` (one per level, shared: read-only here), after its SLA
    text is checked: a text in casebridge's layout whose stamps all read (``_HELD``) reads; any other is
    read by ``sla_from_row``, which raises where ``list_cases`` would. (``status`` prints no held clock
    field: reading 100,000 texts into ``ClockFields`` took about 0.6 s.)"""
    level_only: dict[object, SlaFields] = {}
    held = _HELD.fullmatch
    out = []
    for sla, level in zip(texts.sla, texts.escalation_levels, strict=True):
        if sla != "{}" and held(sla) is None:
            sla_from_row(sla, level)  # raises on a text list_cases would refuse
        fields = level_only.get(level) if type(level) is int else None
        if fields is None:
            fields = SlaFields(escalation_level=level)
            if type(level) is int:
                level_only[level] = fields
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
    cased = [t.case for t in cases]
    return evaluate_texts(cased, histories, lambda i: history_of(cases[i]), workflow, now)[1]


def evaluate_texts(
    cases: Sequence[Case],
    histories: Sequence[str | None],
    history_of: Callable[[int], Sequence[StatusChange]],
    workflow: Workflow,
    now: datetime,
) -> tuple[HistoryColumns, ClockBatch]:
    """The histories' columns (from their stored text) and every clock of the cases at ``now``;
    ``history_of(i)`` reads case i's history the ordinary way where the scalar engine needs it."""
    from casebridge.workflows.clock_batch import evaluate_batch, workflow_states  # numpy: only here
    from casebridge.workflows.clock_columns import HistoryColumns

    hist = HistoryColumns.from_texts(histories, workflow_states(workflow))
    return hist, evaluate_batch(cases, hist, workflow, now, history_of)

"""The report over columns: ``build_report``'s figures counted a chunk of cases at a time, from the
batch clock engine's columns and the histories' columns, without a ``CaseFacts`` per case.

``report.build_report`` is the reference: it reads each case into a ``CaseFacts`` and adds it to the cell
of its five labels. Here a chunk's milestones are found on ``HistoryColumns`` (the first entry into each
milestone state, up to ``now``), its clock figures come from ``report_clocks.figure_columns``, its
durations from the report calendar's day tables (``clock_eval.working_between``: the same float
operations as ``report._Durations``), and each cell keeps only per-case numbers; a ``ListedCase`` is built
only for the cases the report lists (an open breach). The result equals ``build_report``'s
(tests/test_report_columns.py).

Anything the columns do not make plain raises ``NotColumnar`` (a repeated reference, a receipt or ``now``
outside the years 1700-2199): the caller then builds the report the ordinary way.

numpy is imported here: import this module lazily.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from operator import attrgetter
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.calendars import calendar_named
from casebridge.workflows.cases import Case, StatusChange
from casebridge.workflows.clock_batch import ClockBatch
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clock_eval import working_between
from casebridge.workflows.model import Workflow
from casebridge.workflows.report import (
    _ESCALATED,
    _FIRST,
    _FULFILLED,
    _PARTIAL,
    _REDIRECTED,
    _REFUSED,
    _SENT,
    COUNTS,
    NO_AGENCY,
    NO_REASON,
    Group,
    ListedCase,
    Report,
    _Durations,
    _milestone_index,
    _milestones,
    assemble,
)
from casebridge.workflows.report_clocks import figure_columns

__all__ = ["NotColumnar", "ReportColumns"]

# a case's labels, read in C (``_value_``: the member's value as a plain str, as ``.value`` gives it)
_BASIS, _TYPE = attrgetter("legal_basis._value_"), attrgetter("request_type._value_")
_AGENCY = attrgetter("requesting_agency")
_REFERENCE = attrgetter("reference")

I = NDArray[np.int64]  # noqa: E741
F = NDArray[np.float64]
B = NDArray[np.bool_]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
NEVER = np.iinfo(np.int64).min  # a milestone not reached
# Receipts and ``now`` the columns take: every instant a duration is counted between (a receipt, or a
# milestone after it and by ``now``) is then below 2**53 epoch microseconds (the years 1685-2255) in
# size, so ``micros / 1e6`` is exactly the float ``datetime.timestamp`` gives.
_LOW_US = (datetime(1700, 1, 1, tzinfo=UTC) - _EPOCH) // _US
_HIGH_US = (datetime(2200, 1, 1, tzinfo=UTC) - _EPOCH) // _US


class NotColumnar(Exception):
    """The cases hold something the columns do not make plain: build the report the ordinary way."""


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


class _Chunk:
    """One chunk's per-case numbers (row i: case i of the chunk)."""

    def __init__(self, cases: Sequence[Case], found: I, escalations: I, batch: ClockBatch) -> None:
        self.cases = cases
        self.found = found  # (6, n): epoch microseconds of each milestone's first entry, NEVER when none
        self.escalations = escalations
        self.figures = figure_columns(batch)
        # received: submitted_at (the batch read it: a clock may start there), else the first sent state
        seconds, micros = batch.inputs.moments("submitted_at", np.arange(len(cases)))
        self.sent = np.where(np.isnan(seconds), found[_SENT], micros)


class ReportColumns:
    """``build_report`` fed a chunk at a time (``add``); ``report`` gives the same ``Report``."""

    def __init__(
        self,
        workflow: Workflow,
        now: datetime,
        *,
        date_from: date | None,
        date_to: date | None,
        aggregate: bool,
        provider_of: Callable[[Case], str] | None,
    ) -> None:
        self.workflow, self.now, self.aggregate = workflow, now, aggregate
        self.date_from, self.date_to = date_from, date_to
        self.now_us = _micros(now)
        calendar = calendar_named(workflow, workflow.report.calendar)
        self.zone = ZoneInfo(calendar.timezone)
        self.durations = _Durations(calendar)
        self.index = _milestone_index(workflow.report, workflow.escalated_state)
        self.provider_of = provider_of or (lambda case: case.provider)
        self.cells: dict[tuple[str, ...], int] = {}  # the five labels (GROUPINGS order) -> cell
        self.keys: list[tuple[str, ...]] = []  # cell -> its labels
        self.cell_of: list[I] = []  # per counted case, its cell
        self.counts: list[I] = []  # per chunk, (len(COUNTS), cases counted)
        self.refusals: Counter[tuple[int, str]] = Counter()
        self.first_response: list[tuple[I, F, F]] = []  # per chunk: (cell, calendar days, working days)
        self.fulfilment: list[tuple[I, F, F]] = []
        self.facts: list[ListedCase] = []
        self.not_sent = 0
        self.references: set[str] = set()

    def add(
        self,
        cases: Sequence[Case],
        listed_as: Callable[[int], tuple[str, str | None]],
        hist: HistoryColumns,
        batch: ClockBatch,
        history_of: Callable[[int], Sequence[StatusChange]],
    ) -> None:
        """Counts a chunk of ``cases``: ``hist`` their histories' columns, ``batch`` their clocks at
        ``now``; ``listed_as(i)`` gives case i's state and URL as the tracker lists it (asked only for a
        case the report lists) and ``history_of(i)`` reads its history where the columns could not
        (``hist.readable``)."""
        self._check_references(cases)
        found, escalations = self._milestones(hist, history_of)
        chunk = _Chunk(cases, found, escalations, batch)
        sent = chunk.sent
        received = (sent != NEVER) & (sent <= self.now_us)
        self.not_sent += int(np.count_nonzero(~received))
        rows = np.flatnonzero(received)
        if not len(rows):
            return
        if sent[rows].min() < _LOW_US or self.now_us >= _HIGH_US:  # received: sent <= now
            raise NotColumnar("a receipt or now outside the years 1700-2199")
        local = self._local_seconds(sent[rows])
        rows, local = self._in_dates(rows, local)
        if len(rows):
            self._count(chunk, listed_as, rows, local)

    def _check_references(self, cases: Sequence[Case]) -> None:
        # a repeated reference would sort the listed cases in the listing's order, which differs
        before = len(self.references)
        self.references.update(map(_REFERENCE, cases))
        if len(self.references) != before + len(cases):
            raise NotColumnar("two cases share a reference")

    def _milestones(self, hist: HistoryColumns, history_of: Callable[[int], Sequence[StatusChange]]) -> tuple[I, I]:
        """``report._milestones`` of every case: from the columns, or from the history for a row the columns
        could not read."""
        n = len(hist.starts) - 1
        found = np.full((6, n), NEVER, np.int64)
        escalations = np.zeros(n, np.int64)
        row = np.repeat(np.arange(n), np.diff(hist.starts))
        seen = hist.micros <= self.now_us
        for k in range(7):
            codes = [c for c, name in enumerate(hist.states) if k in self.index.get(name, ())]
            at = np.flatnonzero(seen & np.isin(hist.codes, codes))
            if k == _ESCALATED:
                escalations = np.bincount(row[at], minlength=n).astype(np.int64)
                continue
            first_rows, first = np.unique(row[at], return_index=True)  # entries in history order: the first
            found[k, first_rows] = hist.micros[at[first]]
        for i in np.flatnonzero(~hist.readable).tolist():
            entries = _milestones(history_of(i), self.index, self.now)
            found[:, i] = [NEVER if at is None else _micros(at) for at in entries[:6]]
            escalations[i] = entries[_ESCALATED]
        return found, escalations

    def _local_seconds(self, sent: I) -> I:
        from casebridge.workflows.zone_offsets import utc_offsets

        second = sent // 1_000_000
        return second + utc_offsets(second, self.zone)

    def _in_dates(self, rows: I, local: I) -> tuple[I, I]:
        day = local // 86400
        keep = np.ones(len(rows), np.bool_)
        if self.date_from is not None:
            keep &= day >= (self.date_from - _EPOCH.date()).days
        if self.date_to is not None:
            keep &= day <= (self.date_to - _EPOCH.date()).days
        return rows[keep], local[keep]

    def _count(self, chunk: _Chunk, listed_as: Callable[[int], tuple[str, str | None]], rows: I, local: I) -> None:
        months = np.datetime_as_string(local.astype("datetime64[s]").astype("datetime64[M]"), unit="M").tolist()
        cases = list(map(chunk.cases.__getitem__, rows.tolist()))
        agencies = [agency or NO_AGENCY for agency in map(_AGENCY, cases)]
        keys = zip(map(self.provider_of, cases), map(_BASIS, cases), map(_TYPE, cases), agencies, months, strict=True)
        cells, known = self.cells, len(self.cells)
        cell = np.array([cells.setdefault(k, len(cells)) for k in keys], np.int64)
        self.keys.extend(islice(cells, known, None))  # the new cells, in the order they were added
        self.cell_of.append(cell)
        figures, found = chunk.figures, chunk.found[:, rows]
        first, fulfilled = found[_FIRST] != NEVER, found[_FULFILLED] != NEVER
        refused = found[_REFUSED] != NEVER
        columns = {
            "requests": np.ones(len(rows), np.int64),
            "answered_full": fulfilled,
            "answered_partial": ~fulfilled & (found[_PARTIAL] != NEVER),
            "refused": refused,
            "redirected_mla": found[_REDIRECTED] != NEVER,
            "no_reply": ~first,
            "no_reply_overdue": ~first & figures.breached[rows],
            "legal_met": figures.legal_met[rows],
            "legal_breached": figures.legal_breached[rows],
            "legal_breached_open": figures.legal_breached_open[rows],
            "escalations": chunk.escalations[rows],
        }
        self.counts.append(np.stack([np.asarray(columns[name], np.int64) for name in COUNTS]))
        for j in np.flatnonzero(refused).tolist():
            self.refusals[int(cell[j]), cases[j].refusal_reason or NO_REASON] += 1
        sent = chunk.sent[rows]
        for to, reached, kept in ((_FIRST, first, self.first_response), (_FULFILLED, fulfilled, self.fulfilment)):
            kept.append((cell[reached], *self._days(sent[reached], found[to][reached])))
        if not self.aggregate:
            self._listed(chunk, listed_as, rows, cell)

    def _days(self, sent: I, to: I) -> tuple[F, F]:
        """``_Durations.days(sent, to)`` of every row: (calendar days, working days)."""
        a = sent / 1e6  # exact instants (below 2**53 us): datetime.timestamp's float
        b = np.maximum(to / 1e6, a)
        return (b - a) / 86400.0, working_between(self.durations.timeline, a, b) / self.durations.day

    def _listed(self, chunk: _Chunk, listed_as: Callable[[int], tuple[str, str | None]], rows: I, cell: I) -> None:
        """The cases with an open breach: the only per-case rows a report shows."""
        opens = chunk.figures.open_breaches
        for i, c in zip(rows.tolist(), cell.tolist(), strict=True):
            if i in opens:
                case = chunk.cases[i]
                state, url = listed_as(i)
                self.facts.append(ListedCase(case.reference, case.title, self.keys[c][0], state, url, opens[i]))

    def report(self, *, by: Sequence[str], min_count: int) -> Report:
        """The report over every chunk added (``build_report``'s, equal)."""
        cells = len(self.keys)
        groups = [Group("") for _ in range(cells)]
        if self.cell_of:
            cell_of = np.concatenate(self.cell_of)
            counts = np.concatenate(self.counts, axis=1)
            totals = [np.bincount(cell_of, weights=row, minlength=cells).astype(np.int64).tolist() for row in counts]
            for name, per_cell in zip(COUNTS, totals, strict=True):
                for group, value in zip(groups, per_cell, strict=True):
                    group.counts[name] = value
        for (cell, reason), count in self.refusals.items():
            groups[cell].refusals[reason] = count
        for which in ("first_response", "fulfilment"):
            for cell, pairs in _per_cell(getattr(self, which)).items():
                getattr(groups[cell], which).extend(pairs)
        return assemble(dict(zip(self.keys, groups, strict=True)), self.facts, self.not_sent, self.workflow,
                        self.now, by=by, date_from=self.date_from, date_to=self.date_to,
                        aggregate=self.aggregate, min_count=min_count)  # fmt: skip


def _per_cell(chunks: list[tuple[I, F, F]]) -> dict[int, list[tuple[float, float]]]:
    """The (calendar days, working days) pairs of each cell."""
    if not chunks:
        return {}
    cell = np.concatenate([c for c, _d, _w in chunks])
    days = np.concatenate([d for _c, d, _w in chunks])
    work = np.concatenate([w for _c, _d, w in chunks])
    order = np.argsort(cell, kind="stable")
    cell, days, work = cell[order], days[order], work[order]
    bounds = np.flatnonzero(np.diff(cell)) + 1
    out = {}
    for start, end in zip(
        np.concatenate(([0], bounds)).tolist(), np.concatenate((bounds, [len(cell)])).tolist(), strict=True
    ):
        if end > start:
            out[int(cell[start])] = list(zip(days[start:end].tolist(), work[start:end].tolist(), strict=True))
    return out

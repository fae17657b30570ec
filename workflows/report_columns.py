"""The report over columns: ``build_report``'s figures counted a chunk of cases at a time, from the
batch clock engine's columns and the histories' columns, without a ``CaseFacts`` per case.

``report.build_report`` is the reference: it reads each case into a ``CaseFacts`` and adds it to the cell
of its five labels. Here a chunk's milestones are found on ``HistoryColumns`` (the first entry into each
milestone state, up to ``now``), its clock figures come from ``report_clocks.figure_columns``, its
durations from the report calendar's day tables (``clock_eval.working_between``: the same float
operations as ``report._Durations``), and each cell keeps only per-case numbers; a ``CaseFacts`` is built
only for the cases the report lists (an open breach). The result equals ``build_report``'s
(tests/test_report_columns.py).

Anything the columns do not make plain raises ``NotColumnar`` (a repeated reference, a receipt outside
the years 1000-2200): the caller then builds the report the ordinary way.

numpy is imported here: import this module lazily.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from operator import attrgetter
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.calendars import calendar_named
from casebridge.workflows.cases import Case, StatusChange, TrackedCase
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
    CaseFacts,
    Group,
    OpenBreach,
    Report,
    _Durations,
    _milestone_index,
    _milestones,
    assemble,
)
from casebridge.workflows.report_clocks import FigureColumns, figure_columns

__all__ = ["NotColumnar", "ReportColumns"]

# a case's labels, read in C (``_value_``: the member's value as a plain str, as ``.value`` gives it)
_BASIS, _TYPE = attrgetter("legal_basis._value_"), attrgetter("request_type._value_")
_AGENCY, _SUBMITTED = attrgetter("requesting_agency"), attrgetter("submitted_at")
_REFERENCE = attrgetter("reference")

I = NDArray[np.int64]  # noqa: E741
F = NDArray[np.float64]
B = NDArray[np.bool_]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
NEVER = np.iinfo(np.int64).min  # a milestone not reached
# Receipts the columns take: local dates stay inside datetime's range, and every instant in epoch
# microseconds is below 2**53, so ``micros / 1e6`` is the float ``datetime.timestamp`` gives.
_LOW_US = (datetime(1000, 1, 2, tzinfo=UTC) - _EPOCH) // _US
_HIGH_US = (datetime(2200, 1, 1, tzinfo=UTC) - _EPOCH) // _US


class NotColumnar(Exception):
    """The cases hold something the columns do not make plain: build the report the ordinary way."""


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


class _Chunk:
    """One chunk's per-case numbers (row i: case i of the chunk)."""

    def __init__(self, cases: Sequence[Case], found: I, escalations: I, figures: FigureColumns) -> None:
        self.cases = cases
        self.found = found  # (6, n): epoch microseconds of each milestone's first entry, NEVER when none
        self.escalations = escalations
        self.figures = figures
        self.sent = found[_SENT].copy()
        submitted = list(map(_SUBMITTED, cases))
        given = [i for i, at in enumerate(submitted) if at is not None]
        if given:
            self.sent[given] = [(submitted[i] - _EPOCH) // _US for i in given]


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
        self.facts: list[CaseFacts] = []
        self.not_sent = 0
        self.references: set[str] = set()

    def add(
        self,
        cases: Sequence[Case],
        tracked_of: Callable[[int], TrackedCase],
        hist: HistoryColumns,
        batch: ClockBatch,
        history_of: Callable[[int], Sequence[StatusChange]],
    ) -> None:
        """Counts a chunk of ``cases``: ``hist`` their histories' columns, ``batch`` their clocks at
        ``now``; ``tracked_of(i)`` gives case i as listed (only for a case the report lists) and
        ``history_of(i)`` reads its history where the columns could not (``hist.readable``)."""
        self._check_references(cases)
        found, escalations = self._milestones(hist, history_of)
        chunk = _Chunk(cases, found, escalations, figure_columns(batch))
        sent = chunk.sent
        received = (sent != NEVER) & (sent <= self.now_us)
        self.not_sent += int(np.count_nonzero(~received))
        rows = np.flatnonzero(received)
        if not len(rows):
            return
        if sent[rows].min() < _LOW_US or sent[rows].max() >= _HIGH_US:
            raise NotColumnar("a receipt outside the years 1000-2200")
        local = self._local_seconds(sent[rows])
        rows, local = self._in_dates(rows, local)
        if len(rows):
            self._count(chunk, tracked_of, rows, local)

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

    def _count(self, chunk: _Chunk, tracked_of: Callable[[int], TrackedCase], rows: I, local: I) -> None:
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
        durations = []
        for to, reached, kept in ((_FIRST, first, self.first_response), (_FULFILLED, fulfilled, self.fulfilment)):
            days, work = self._days(sent, found[to], reached)
            kept.append((cell[reached], days[reached], work[reached]))
            durations.append((days, work, reached))
        if not self.aggregate:
            self._listed(chunk, tracked_of, rows, cell, durations)

    def _days(self, sent: I, to: I, reached: B) -> tuple[F, F]:
        """``_Durations.days(sent, to)`` of every row: (calendar days, working days); 0 where not ``reached``."""
        a = sent / 1e6  # exact instants (below 2**53 us): datetime.timestamp's float
        b = np.maximum(np.where(reached, to, sent) / 1e6, a)
        return (b - a) / 86400.0, working_between(self.durations.timeline, a, b) / self.durations.day

    def _listed(
        self,
        chunk: _Chunk,
        tracked_of: Callable[[int], TrackedCase],
        rows: I,
        cell: I,
        durations: list[tuple[F, F, B]],
    ) -> None:
        """A ``CaseFacts`` for each case with an open breach: the only per-case rows a report shows.
        ``durations``: per row of ``rows``, its first response and fulfilment times (None: not reached)."""
        opens = chunk.figures.open_breaches
        pick = [(i, c, j) for j, (i, c) in enumerate(zip(rows.tolist(), cell.tolist(), strict=True)) if i in opens]
        if not pick:
            return
        at = [i for i, _c, _j in pick]
        f = chunk.figures
        rows_at = [j for _i, _c, j in pick]
        first_response, fulfilment = (_pairs(d[rows_at], w[rows_at], r[rows_at]) for d, w, r in durations)
        numbers = zip(
            first_response,
            fulfilment,
            chunk.found[:, at].T.tolist(),
            f.legal_met[at].tolist(),
            f.legal_breached[at].tolist(),
            f.legal_breached_open[at].tolist(),
            f.breached[at].tolist(),
            chunk.escalations[at].tolist(),
            strict=True,
        )
        for (i, c, _j), row in zip(pick, numbers, strict=True):
            self.facts.append(_facts(tracked_of(i), self.keys[c], _Numbers(*row), opens[i]))

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


class _Numbers(NamedTuple):
    """A listed case's numbers, as the columns hold them."""

    first_response: tuple[float, float] | None
    fulfilment: tuple[float, float] | None
    micros: list[int]  # per milestone (``_SENT`` .. ``_REDIRECTED``) its first entry, NEVER when none
    met: int
    breached: int
    still_open: int
    any_breached: bool
    escalations: int


def _facts(
    tracked: TrackedCase, keys: tuple[str, ...], n: _Numbers, open_breaches: tuple[OpenBreach, ...]
) -> CaseFacts:
    """``report.case_facts`` of a received case from its numbers."""
    found = [None if us == NEVER else _EPOCH + timedelta(microseconds=us) for us in n.micros]
    case = tracked.case
    sent_at = case.submitted_at or found[_SENT]
    assert sent_at is not None  # a received case
    first, fulfilled = found[_FIRST], found[_FULFILLED]
    refused = found[_REFUSED] is not None
    return CaseFacts(
        reference=case.reference,
        title=case.title,
        url=tracked.url,
        state=tracked.state,
        keys=keys,
        sent_at=sent_at,
        first_response=n.first_response,
        fulfilment=n.fulfilment,
        full=fulfilled is not None,
        partial=fulfilled is None and found[_PARTIAL] is not None,
        refused=refused,
        refusal_reason=(case.refusal_reason or NO_REASON) if refused else None,
        redirected=found[_REDIRECTED] is not None,
        no_reply_overdue=first is None and n.any_breached,
        legal_met=n.met,
        legal_breached=n.breached,
        legal_breached_open=n.still_open,
        escalations=n.escalations,
        open_breaches=open_breaches,
    )


def _pairs(days: F, work: F, reached: B) -> list[tuple[float, float] | None]:
    """Per row, (calendar days, working days) where ``reached``, else None."""
    return [(d, w) if r else None for d, w, r in zip(days.tolist(), work.tolist(), reached.tolist(), strict=True)]


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

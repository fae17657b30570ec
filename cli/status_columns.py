"""``status --json`` rows written from the batch clock columns (``workflows.clock_batch.ClockBatch``),
without a ``ClockResult`` per clock: the same bytes as ``StatusRows.row`` on ``ClockBatch.results(i)``.

Every instant of a chunk is turned into its local ``isoformat`` text at once: the rounding of
``datetime.fromtimestamp`` (to the microsecond, half to even) done on the columns, the zone's UTC offset
looked up once per hour of UTC time (both ends of the hour: an offset that differs between them is
looked up per instant; no zone in the tz database has two transitions within an hour, the closest
are days apart) and the text written by numpy. A clock that has not started is one text per policy
target, provider and legal basis. What the columns do not make plain (an instant outside the years
1000-9999, a remaining time that is not a number) sends the whole chunk back (``None``): the caller
then writes it the ordinary way, which reports such a case as it always did.

numpy is imported here: import this module lazily (only when there are cases).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from json.encoder import encode_basestring
from operator import attrgetter
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from casebridge.cli.jsonout import ITEM_SEP
from casebridge.cli.status_json import (
    CLOCK_PAD,
    CLOCK_SEP,
    CLOCKS_OPEN,
    ROW_CLOSE,
    ROW_PAD,
    StatusRows,
    case_zone,
    scalar_text,
)
from casebridge.workflows.cases import TrackedCase
from casebridge.workflows.clock_batch import STATES, ClockBatch, ClockColumns, _materialise
from casebridge.workflows.counting import StatementBasis
from casebridge.workflows.legal_periods import ELAPSED
from casebridge.workflows.model import ClockState
from casebridge.workflows.zone_offsets import utc_offsets

__all__ = ["ColumnRows"]

I = NDArray[np.int64]  # noqa: E741
F = NDArray[np.float64]
B = NDArray[np.bool_]
Table = NDArray[np.object_]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_INNER = CLOCK_PAD + "  "  # the next_reminder dict's items
# instants whose UTC and local years stay within 1000-9999 (4-digit years as numpy and isoformat write
# them; a day's margin covers any UTC offset)
_LOW = int((datetime(1000, 1, 2, tzinfo=UTC) - _EPOCH).total_seconds())
_HIGH = int((datetime(9999, 12, 30, tzinfo=UTC) - _EPOCH).total_seconds())
_COUNTING = frozenset({STATES.index(ClockState.RUNNING), STATES.index(ClockState.AT_RISK)})
_IDLE = STATES.index(ClockState.NOT_STARTED)


class _Unplain(Exception):
    """A value the columns do not make plain: the chunk goes the ordinary way."""


def micros_of(e: F) -> tuple[I, B]:
    """``datetime.fromtimestamp(e, UTC)`` as epoch microseconds (its rounding: the fraction to the
    microsecond, half to even, carried into the seconds), and whether e is a number (NaN: None)."""
    known = ~np.isnan(e)
    e = np.where(known, e, 0.0)
    whole = np.trunc(e)
    frac = np.rint((e - whole) * 1e6)
    up, down = frac >= 1e6, frac < 0
    whole = whole + up - down
    frac = np.where(up, frac - 1e6, np.where(down, frac + 1e6, frac))
    if known.any() and not ((whole[known] >= _LOW) & (whole[known] <= _HIGH)).all():
        raise _Unplain
    return whole.astype(np.int64) * 1_000_000 + frac.astype(np.int64), known


_SUFFIX: dict[int, str] = {}


def _suffix(offset: int) -> str:
    """The offset as ``isoformat`` writes it (``+05:45``, ``-03:30``, ``+00:19:32``)."""
    text = _SUFFIX.get(offset)
    if text is None:
        text = _SUFFIX[offset] = datetime(2000, 1, 1, tzinfo=timezone(timedelta(seconds=offset))).isoformat()[19:]
    return text


def local_texts(us: I, known: B, zone_code: I, zones: Sequence[ZoneInfo]) -> list[str]:
    """``local_iso`` of each instant (epoch microseconds) in its zone (``zones[zone_code]``) as a JSON
    string; ``null`` where not ``known``."""
    second = us // 1_000_000  # floor: the local time's microseconds are dropped
    if known.any() and not ((second[known] >= _LOW) & (second[known] <= _HIGH)).all():
        raise _Unplain
    offset = np.zeros(len(us), np.int64)
    for z, zone in enumerate(zones):
        sel = np.flatnonzero(known & (zone_code == z))
        offset[sel] = utc_offsets(second[sel], zone)
    local = np.where(known, second + offset, 0).astype("datetime64[s]")
    texts = np.datetime_as_string(local, unit="s").tolist()
    offsets, inverse = np.unique(offset, return_inverse=True)
    suffixes: NDArray[np.object_] = np.empty(len(offsets), object)
    suffixes[:] = [_suffix(o) + '"' for o in offsets.tolist()]
    ends = suffixes[inverse.ravel()].tolist()
    if known.all():
        return ['"' + t + e for t, e in zip(texts, ends, strict=True)]
    return ['"' + t + e if k else "null" for t, e, k in zip(texts, ends, known.tolist(), strict=True)]


def _minutes(us: I, known: B) -> list[str]:
    """``counting._minute`` of each UTC instant (``2026-12-11 11:00``; years 1000-9999 here)."""
    text = np.datetime_as_string(np.where(known, us // 60_000_000, 0).astype("datetime64[m]"), unit="m")
    return [t.replace("T", " ") for t in text.tolist()]


class ColumnRows:
    """Writes a chunk's ``status --json`` rows from its ``ClockBatch`` (the cases evaluated by the
    scalar engine inside the batch from their results, through ``StatusRows``)."""

    def __init__(self, rows: StatusRows) -> None:
        self.rows = rows
        self._sentences: dict[tuple[int, int], tuple[StatementBasis, str]] = {}

    def chunk(self, cases: Sequence[TrackedCase], batch: ClockBatch) -> Table | None:
        """Every case's row as a row of pieces (each preceded by the array's item separator: joined,
        ``table[a:b].ravel()`` is rows a to b as ``JsonArrayWriter.write_flat`` takes them), in order;
        None when a value is not plain (the caller writes the chunk the ordinary way)."""
        pairs = list(
            zip(map(attrgetter("provider"), batch.cases), map(attrgetter("legal_basis"), batch.cases), strict=True)
        )
        code = {key: k for k, key in enumerate(dict.fromkeys(pairs))}  # a legal basis hashes as its text
        places = np.fromiter(map(code.__getitem__, pairs), np.int64, len(pairs))
        columns = []
        try:
            for name in batch.order:
                c = batch.clocks.get(name)
                if c is not None:
                    texts: Table = np.full(len(cases), None, object)
                    texts[c.rows] = self._clock(c, cases, places, len(code))
                    columns.append(texts)
        except _Unplain:
            return None
        return self._table(cases, batch, columns)

    def _table(self, cases: Sequence[TrackedCase], batch: ClockBatch, columns: list[Table]) -> Table:
        """Row i's pieces are ``table[i]``: the separator, its head, its fields, then per clock column a
        separator (before every clock but its first) and the clock's text ("" for a clock it has not)."""
        n, k = len(cases), len(columns)
        table: Table = np.full((n, 2 * k + 5), "", object)
        table[:, 0], table[:, 3], table[:, -1] = ITEM_SEP, CLOCKS_OPEN, ROW_CLOSE
        present = np.array([column != None for column in columns], np.bool_).T.reshape(n, k)  # noqa: E711
        later = present & (np.cumsum(present, axis=1) > 1)
        for t, column in enumerate(columns):
            table[present[:, t], 5 + 2 * t] = column[present[:, t]]
            table[later[:, t], 4 + 2 * t] = CLOCK_SEP
        rows = self.rows
        references = [tracked.case.reference for tracked in cases]
        if all(type(reference) is str for reference in references):
            table[:, 1] = [f'{{{ROW_PAD}"reference": {encode_basestring(r)},' for r in references]
        else:
            table[:, 1] = [rows.row_head(tracked)[0] for tracked in cases]
        table[:, 2] = [rows.row_middle(tracked) for tracked in cases]
        # the scalar engine's results or no clock at all: written as one text
        for i in sorted(set(batch.scalar) | set(np.flatnonzero(~present.any(axis=1)).tolist())):
            case = cases[i].case
            results = batch.scalar.get(i, [])
            zone, provider, basis = case_zone(case.timezone), case.provider, str(case.legal_basis)
            pieces = rows.row_pieces(cases[i], [rows.clock(c, zone, provider, basis) for c in results])
            table[i, 1:] = ""
            table[i, 1] = "".join(pieces)
        return table

    def _clock(self, c: ClockColumns, cases: Sequence[TrackedCase], places: I, count: int) -> NDArray[np.object_]:
        """Each row of clock column ``c``: its encoded text (``StatusRows.clock``). A clock that has not
        started is the same text for every case of its target, provider and legal basis (``places``)."""
        out: NDArray[np.object_] = np.empty(len(c.rows), object)
        idle = c.state == _IDLE
        js = np.flatnonzero(idle)
        if len(js):
            keys, first, inverse = np.unique(c.group[js] * count + places[c.rows[js]], True, True)
            texts = []
            for j in js[first].tolist():
                case = cases[int(c.rows[j])].case
                result = _materialise(c, j, case)
                texts.append(self.rows.clock(result, case_zone(case.timezone), case.provider, str(case.legal_basis)))
            shared: NDArray[np.object_] = np.empty(len(keys), object)
            shared[:] = texts
            out[js] = shared[inverse.ravel()]
        js = np.flatnonzero(~idle)
        if len(js):
            started: NDArray[np.object_] = np.empty(len(js), object)
            started[:] = self._started(c, js, cases, places, count)
            out[js] = started
        return out

    def _started(self, c: ClockColumns, js: I, cases: Sequence[TrackedCase], places: I, count: int) -> list[str]:
        """The texts of the started clocks at positions ``js`` of column ``c``."""
        which = c.rows[js]
        zone_names = [cases[i].case.timezone for i in which.tolist()]
        names = list(dict.fromkeys(zone_names))
        code = {name: z for z, name in enumerate(names)}
        zone_code = np.fromiter(map(code.__getitem__, zone_names), np.int64, len(which))
        zones = [case_zone(name) for name in names]
        start_us, start_known = micros_of(c.started[js])
        start_us = np.where(c.from_field[js], c.started_us[js], start_us)
        due_us, due_known = micros_of(c.due[js])
        warn_us, warn_known = micros_of(c.warn[js])
        remaining = c.target_s[js] - c.elapsed[js]
        if not np.isfinite(remaining).all():
            raise _Unplain
        started_t = local_texts(start_us, start_known, zone_code, zones)
        due_t = local_texts(due_us, due_known, zone_code, zones)
        warn_t = local_texts(warn_us, warn_known, zone_code, zones)
        minutes = _minutes(due_us, due_known)
        left = [str(int(r)) for r in np.rint(remaining).tolist()]
        groups, states = c.group[js].tolist(), c.state[js].tolist()
        reminders = self._reminders(c, groups, states, remaining.tolist(), due_us, due_known, zone_code, zones)
        # what a clock shares with every clock of its target, provider and legal basis
        _, first, inverse = np.unique(c.group[js] * count + places[which], True, True)
        shared = []
        for j in first.tolist():
            target = c.policy[groups[j]]
            if target is None:  # never in a column: a row has the clock only under a target
                raise _Unplain
            case = cases[int(which[j])].case
            basis, head, tail, source = self.rows.target_texts(target, case.provider, str(case.legal_basis))
            shared.append((basis, head, tail, source, basis.rule == ELAPSED, encode_basestring(basis.text(None))))
        pad, name, kind = CLOCK_PAD, scalar_text(c.name, CLOCK_PAD), scalar_text(str(c.kind), CLOCK_PAD)
        state_text = [scalar_text(str(s), CLOCK_PAD) for s in STATES]
        due_list = due_us.tolist()
        out = []
        for k, (key, start, due, warn) in enumerate(
            zip(inverse.ravel().tolist(), started_t, due_t, warn_t, strict=True)
        ):
            basis, head, tail, source, elapsed, no_due = shared[key]
            if due == "null":
                sentence = no_due
            elif elapsed:
                sentence = f'"due {minutes[k]} UTC, counted as elapsed time"'
            else:
                sentence = encode_basestring(self._sentence(basis, due_list[k]))
            out.append(
                f'{{{pad}"name": {name},{pad}"kind": {kind},{pad}"started_at": {start},{pad}"due_at": {due}'
                f',{pad}"counting": {head}{sentence}{tail},{pad}"warn_at": {warn}'
                f',{pad}"state": {state_text[states[k]]},{pad}"remaining_seconds": {left[k]},{pad}"source": {source}'
                f',{pad}"next_reminder": {reminders[k]}{pad[:-2]}}}'
            )
        return out

    def _sentence(self, basis: StatementBasis, due_us: int) -> str:
        """``basis.text(due)`` (law-counted dues fall on few instants: kept per basis and instant)."""
        key = (id(basis), due_us)
        found = self._sentences.get(key)
        if found is not None and found[0] is basis:
            return found[1]
        text = basis.text(_EPOCH + due_us * _US)
        if len(self._sentences) >= 4096:
            self._sentences.clear()
        self._sentences[key] = (basis, text)
        return text

    def _reminders(
        self,
        c: ClockColumns,
        groups: list[int],
        states: list[int],
        remaining: list[float],
        due_us: I,
        due_known: B,
        zone_code: I,
        zones: Sequence[ZoneInfo],
    ) -> list[str]:
        """``next_reminder`` of each started clock, encoded (``null`` for none)."""
        out = ["null"] * len(groups)
        picked: list[tuple[int, str, int]] = []  # (position, label, reminder instant in microseconds)
        rules: dict[int, list[tuple[float, str, int]]] = {}
        known = due_known.tolist()
        for k, (g, s) in enumerate(zip(groups, states, strict=True)):
            target = c.policy[g]
            rule = None if target is None else target.remind
            if rule is None or s not in _COUNTING or not known[k]:
                continue
            steps = rules.get(g)
            if steps is None:  # (seconds, label, seconds as whole microseconds), largest first
                pairs = sorted(zip(rule.before, rule.labels, strict=True), reverse=True)
                steps = rules[g] = [(sec, label, timedelta(seconds=sec) // _US) for sec, label in pairs]
            left = remaining[k]
            for sec, label, us in steps:
                if left > sec:  # the largest threshold still ahead, as max(ahead)
                    picked.append((k, label, int(due_us[k]) - us))
                    break
        if picked:
            at = np.array([p[2] for p in picked], np.int64)
            where = np.array([p[0] for p in picked], np.int64)
            texts = local_texts(at, np.ones(len(at), np.bool_), zone_code[where], zones)
            for (k, label, _), text in zip(picked, texts, strict=True):
                out[k] = f'{{{_INNER}"before": {encode_basestring(label)},{_INNER}"at": {text}{CLOCK_PAD}}}'
        return out

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
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from casebridge.cli.status_json import CLOCK_PAD, StatusRows, case_zone, scalar_text
from casebridge.workflows.cases import TrackedCase
from casebridge.workflows.clock_batch import STATES, ClockBatch, ClockColumns, _materialise
from casebridge.workflows.legal_periods import ELAPSED
from casebridge.workflows.model import ClockState

__all__ = ["ColumnRows"]

I = NDArray[np.int64]  # noqa: E741
F = NDArray[np.float64]
B = NDArray[np.bool_]

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


def _offset(zone: ZoneInfo, second: int) -> int:
    delta = datetime.fromtimestamp(second, zone).utcoffset()
    return 0 if delta is None else int(delta.total_seconds())


_SUFFIX: dict[int, str] = {}


def _suffix(offset: int) -> str:
    """The offset as ``isoformat`` writes it (``+05:45``, ``-03:30``, ``+00:19:32``)."""
    text = _SUFFIX.get(offset)
    if text is None:
        text = _SUFFIX[offset] = datetime(2000, 1, 1, tzinfo=timezone(timedelta(seconds=offset))).isoformat()[19:]
    return text


def local_texts(us: I, known: B, zone_code: I, zones: Sequence[ZoneInfo]) -> list[str | None]:
    """``local_iso`` of each instant (epoch microseconds) in its zone (``zones[zone_code]``); None where
    not ``known``."""
    second = us // 1_000_000  # floor: the local time's microseconds are dropped
    if known.any() and not ((second[known] >= _LOW) & (second[known] <= _HIGH)).all():
        raise _Unplain
    offset = np.zeros(len(us), np.int64)
    for z, zone in enumerate(zones):
        sel = np.flatnonzero(known & (zone_code == z))
        if not len(sel):
            continue
        hours, inverse = np.unique(second[sel] // 3600, return_inverse=True)
        first = np.array([_offset(zone, h * 3600) for h in hours.tolist()], np.int64)
        last = np.array([_offset(zone, h * 3600 + 3599) for h in hours.tolist()], np.int64)
        offset[sel] = first[inverse.ravel()]
        for k in sel[(first != last)[inverse.ravel()]].tolist():  # an hour with a transition in it
            offset[k] = _offset(zone, int(second[k]))
    local = np.where(known, second + offset, 0).astype("datetime64[s]")
    texts = np.datetime_as_string(local, unit="s").tolist()
    suffixes = [_suffix(o) for o in offset.tolist()]
    return [t + s if k else None for t, s, k in zip(texts, suffixes, known.tolist(), strict=True)]


def _minutes(us: I, known: B) -> list[str]:
    """``counting._minute`` of each UTC instant (``2026-12-11 11:00``; years 1000-9999 here)."""
    text = np.datetime_as_string(np.where(known, us // 60_000_000, 0).astype("datetime64[m]"), unit="m")
    return [t.replace("T", " ") for t in text.tolist()]


class ColumnRows:
    """Writes a chunk's ``status --json`` rows from its ``ClockBatch`` (the cases evaluated by the
    scalar engine inside the batch from their results, through ``StatusRows``)."""

    def __init__(self, rows: StatusRows) -> None:
        self.rows = rows
        self._sentences: dict[tuple[int, int], tuple[object, str]] = {}

    def chunk(self, cases: Sequence[TrackedCase], batch: ClockBatch) -> list[str] | None:
        """Every case's row, in order; None when a value is not plain (the caller writes the chunk the
        ordinary way)."""
        try:
            texts = {name: self._clock(c, cases) for name, c in batch.clocks.items()}
        except _Unplain:
            return None
        out = []
        rows = self.rows
        wheres = [(texts[name], batch.where[name].tolist()) for name in batch.order if name in batch.clocks]
        for i, tracked in enumerate(cases):
            scalar = batch.scalar.get(i)
            if scalar is not None:
                case = tracked.case
                zone, provider, basis = case_zone(case.timezone), case.provider, str(case.legal_basis)
                out.append(rows.row_text(tracked, [rows.clock(c, zone, provider, basis) for c in scalar]))
                continue
            out.append(rows.row_text(tracked, [t[w[i]] for t, w in wheres if w[i] >= 0]))
        return out

    def _clock(self, c: ClockColumns, cases: Sequence[TrackedCase]) -> list[str]:
        """Each row of clock column ``c``: its encoded text (``StatusRows.clock``)."""
        rows_l, groups, states = c.rows.tolist(), c.group.tolist(), c.state.tolist()
        out: list[str] = [""] * len(rows_l)
        idle: dict[tuple[int, str, str], str] = {}
        started = [j for j, s in enumerate(states) if s != _IDLE]
        for j, s in enumerate(states):
            if s != _IDLE:
                continue
            case = cases[rows_l[j]].case
            key = (groups[j], case.provider, str(case.legal_basis))
            text = idle.get(key)
            if text is None:
                result = _materialise(c, j, case)
                text = idle[key] = self.rows.clock(result, case_zone(case.timezone), key[1], key[2])
            out[j] = text
        if started:
            for j, text in zip(started, self._started(c, np.array(started, np.int64), cases), strict=True):
                out[j] = text
        return out

    def _started(self, c: ClockColumns, js: I, cases: Sequence[TrackedCase]) -> list[str]:
        """The texts of the started clocks at positions ``js`` of column ``c``."""
        which = c.rows[js].tolist()
        zone_names = [cases[i].case.timezone for i in which]
        names = list(dict.fromkeys(zone_names))
        code = {name: z for z, name in enumerate(names)}
        zone_code = np.fromiter(map(code.__getitem__, zone_names), np.int64, len(which))
        zones = [case_zone(name) for name in names]
        from_field = c.from_field[js]
        start_us, start_known = micros_of(c.started[js])
        start_us = np.where(from_field, c.started_us[js], start_us)
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
        name = scalar_text(c.name, CLOCK_PAD)
        kind = scalar_text(str(c.kind), CLOCK_PAD)
        state_text = [scalar_text(str(s), CLOCK_PAD) for s in STATES]
        out = []
        target_texts, policy, pad = self.rows.target_texts, c.policy, CLOCK_PAD
        for k, i in enumerate(which):
            case = cases[i].case
            target = policy[groups[k]]
            if target is None:  # never in a column: a row has the clock only under a target
                raise _Unplain
            basis, head, tail, source = target_texts(target, case.provider, str(case.legal_basis))
            if due_t[k] is None:
                sentence = basis.text(None)
            elif basis.rule == ELAPSED:
                sentence = f"due {minutes[k]} UTC, counted as elapsed time"
            else:
                sentence = self._sentence(basis, int(due_us[k]))
            start_text = "null" if started_t[k] is None else f'"{started_t[k]}"'
            due_text = "null" if due_t[k] is None else f'"{due_t[k]}"'
            warn_text = "null" if warn_t[k] is None else f'"{warn_t[k]}"'
            out.append(
                f'{{{pad}"name": {name},{pad}"kind": {kind},{pad}"started_at": {start_text},{pad}"due_at": {due_text}'
                f',{pad}"counting": {head}{encode_basestring(sentence)}{tail},{pad}"warn_at": {warn_text}'
                f',{pad}"state": {state_text[states[k]]},{pad}"remaining_seconds": {left[k]},{pad}"source": {source}'
                f',{pad}"next_reminder": {reminders[k]}{pad[:-2]}}}'
            )
        return out

    def _sentence(self, basis: object, due_us: int) -> str:
        """``basis.text(due)`` (law-counted dues fall on few instants: kept per basis and instant)."""
        key = (id(basis), due_us)
        found = self._sentences.get(key)
        if found is not None and found[0] is basis:
            return found[1]
        text: str = basis.text(_EPOCH + due_us * _US)  # type: ignore[attr-defined]
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
        rules = {}
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
                out[k] = f'{{{_INNER}"before": {encode_basestring(label)},{_INNER}"at": "{text}"{CLOCK_PAD}}}'
        return out

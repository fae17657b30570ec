"""The column kernel of the batch clock path (``workflows.clock_batch``): ``clocks._evaluate`` over
many rows at once, the same float operations in the same order as the scalar engine.

numpy is imported here: import this module lazily (never on a command's start-up path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.calendars import BusinessTimeline, Timeline
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clocks import _ClockSpec
from casebridge.workflows.model import ClockKind, ClockState, ClockTarget

if TYPE_CHECKING:
    from casebridge.workflows.clock_inputs import Law

__all__ = ["NAN", "STATES", "ClockColumns", "evaluate_columns", "seen_changes", "working_between"]

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741
B = NDArray[np.bool_]
STATES = tuple(ClockState)  # state codes of the result columns (NOT_STARTED is 0)
_CODE = {s: i for i, s in enumerate(STATES)}
NAN = float("nan")


@dataclass
class ClockColumns:
    """One clock over the rows (case indexes) that have it; ``group`` indexes ``policy`` (the target of
    the row's request type and legal basis). Instants are epoch seconds, NaN for None."""

    name: str
    kind: ClockKind
    start_field: str | None
    rows: I
    group: I
    policy: list[ClockTarget | None]
    state: I
    started: F
    started_us: I
    from_field: B  # started at the case's start_field (its own datetime is reported)
    due: F
    warn: F
    stopped: F
    elapsed: F
    paused: F
    target_s: F
    cycle: I
    overdue: F


def seen_changes(hist: HistoryColumns, now_e: float) -> I:
    """Per row, how many changes happened at or before now (a prefix: rows are sorted)."""
    before = np.concatenate(([0], np.cumsum(hist.times <= now_e)))
    return before[hist.starts[1:]] - before[hist.starts[:-1]]


def evaluate_columns(spec: _ClockSpec, hist: HistoryColumns, seen_all: I, rows: I, group: I,
                     policy: list[ClockTarget | None], target_s: F, warn_s: F, moment: F, moment_us: I,
                     now_e: float, law: Law | None = None) -> ClockColumns:  # fmt: skip
    """``clocks._evaluate`` over the rows: the cycle scan, then the stretch walk, one history position
    (k) at a time for every row at once; the 24x7 steady path as the scalar engine takes it. ``law``
    gives the targets of law-counted periods from the starts (``clock_inputs.law_targets``)."""
    k_states = len(hist.states) + 1

    def mask(names: frozenset[str]) -> B:
        return np.array([s in names for s in hist.states] + [False], np.bool_)[:k_states]

    is_start, is_stop, is_pause, is_met = (
        mask(spec.start_on),
        mask(spec.stop_on),
        mask(spec.pause_in),
        mask(spec.met_on),
    )
    b0, ns = hist.starts[rows], seen_all[rows]
    times, codes = hist.times, hist.codes
    r = len(rows)
    cycle, begin, stop = _cycles(codes, b0, ns, is_start, is_stop)
    on = cycle > 0
    first = times[np.where(on, b0 + begin, 0)] if len(times) else np.zeros(r)
    from_field = (cycle == 1) & ~np.isnan(moment)
    start = np.where(from_field, moment, first)
    started = on & (start <= now_e)
    first_us = hist.micros[np.where(on, b0 + begin, 0)] if len(times) else np.zeros(r, np.int64)
    start_us = np.where(from_field, moment_us, first_us)
    if law is not None:
        at, law_s, law_warn = law(group, started, start, start_us, target_s)
        if len(at):
            target_s, warn_s = target_s.copy(), warn_s.copy()
            target_s[at], warn_s[at] = law_s, law_warn
    stopped = started & (stop >= 0)
    seg_end = np.where(stop >= 0, stop, ns)
    end = np.where(stopped, times[np.where(stopped, b0 + stop, 0)] if len(times) else 0.0, now_e)
    tl = spec.timeline
    tab = _Tables(tl, times, start[started], np.array([now_e])) if tl is not None else None
    if tab is None:  # 24x7: only a stretch with a pause needs the walk, the rest takes the steady path
        pauses = hist.running_count(is_pause)
        any_pause = started & (pauses[np.where(started, b0 + seg_end, 0)] > pauses[np.where(started, b0 + begin, 0)])
        walk = np.flatnonzero(any_pause)
    else:
        walk = np.flatnonzero(started)
    bounds = (b0[walk], begin[walk], seg_end[walk], start[walk], end[walk])
    walked = _walk(tab, times, codes, is_pause, bounds, target_s[walk], warn_s[walk])
    elapsed, paused = np.zeros(r), np.zeros(r)
    running = np.zeros(r, np.bool_)
    warn_x, due_x, run_a, run_e0 = np.full(r, NAN), np.full(r, NAN), np.zeros(r), np.zeros(r)
    for column, values in zip((elapsed, paused, running, warn_x, due_x, run_a, run_e0), walked, strict=True):
        column[walk] = values
    due, warn = due_x.copy(), warn_x.copy()
    proj = running & np.isnan(due)
    if tab is None:
        due = np.where(proj, run_a + (target_s - run_e0), due)
        warn = np.where(running & np.isnan(warn), run_a + np.maximum(0.0, warn_s - run_e0), warn)
        steady = started & ~any_pause
        last = np.where(seg_end - 1 > begin, times[np.where(steady, b0 + seg_end - 1, 0)] if len(times) else 0, start)
        last = np.where(last < start, start, last)
        s_el = np.where(end > last, end, last) - start
        s_due = np.where(target_s <= 0, start, start + target_s)
        s_warn = np.where(warn_s <= 0, start, start + warn_s)
        elapsed = np.where(steady, s_el, elapsed)
        due, warn = np.where(steady, s_due, due), np.where(steady, s_warn, warn)
        paused, running = np.where(steady, 0.0, paused), running | steady
        due_x = np.where(steady, np.where(s_el > target_s, s_due, NAN), due_x)
    else:
        due = np.where(proj, _advance(tab, run_a, target_s - run_e0, proj), due)
        wproj = running & np.isnan(warn)
        warn = np.where(wproj, _advance(tab, run_a, warn_s - run_e0, wproj), warn)
    breached = elapsed > target_s
    met = is_met[codes[np.where(stopped, b0 + stop, 0)]] if len(codes) else np.zeros(r, np.bool_)
    code = np.where(
        stopped,
        np.where(breached, _CODE[ClockState.BREACHED], np.where(met, _CODE[ClockState.MET], _CODE[ClockState.STOPPED])),
        np.where(breached, _CODE[ClockState.BREACHED], np.where(~running, _CODE[ClockState.PAUSED],
                 np.where(elapsed >= warn_s, _CODE[ClockState.AT_RISK], _CODE[ClockState.RUNNING]))),
    )  # fmt: skip
    code = np.where(started, code, _CODE[ClockState.NOT_STARTED])
    overdue = np.where(breached & ~np.isnan(due_x), end - due_x, 0.0)
    return ClockColumns(
        spec.name, spec.kind, spec.start_field, rows, group, policy, code, np.where(started, start, NAN),
        start_us, from_field & started, due, warn, np.where(stopped, end, NAN),
        elapsed, paused, target_s, np.where(started, cycle, 0), overdue,
    )  # fmt: skip


def _cycles(codes: I, b0: I, ns: I, is_start: B, is_stop: B) -> tuple[I, I, I]:
    """The cycle scan of ``clocks._evaluate`` (per row: cycles started, position of the last start, of
    the stop that ended it or -1), one history position at a time; rows sorted by length, longest first,
    so that position k is a prefix of them."""
    r = len(b0)
    order = np.argsort(-np.minimum(ns, 32_000).astype(np.int16), kind="stable")  # a radix sort
    b0, ns = b0[order], ns[order]
    idle = np.ones(r, np.bool_)
    cycle, begin, stop = np.zeros(r, np.int64), np.full(r, -1, np.int64), np.full(r, -1, np.int64)
    for k in range(int(ns[0]) if r else 0):
        m = int(np.count_nonzero(ns > k))
        c = codes[b0[:m] + k]
        was = idle[:m]
        s_now = was & is_start[c]
        p_now = ~was & is_stop[c]
        cycle[:m] += s_now
        begin[:m][s_now] = k
        stop[:m][s_now] = -1
        stop[:m][p_now] = k
        idle[:m] = np.where(s_now, False, was | p_now)
    out = (np.empty(r, np.int64), np.empty(r, np.int64), np.empty(r, np.int64))
    for column, values in zip(out, (cycle, begin, stop), strict=True):
        column[order] = values
    return out


def _walk(tab: _Tables | None, times: F, codes: I, is_pause: B, bounds: tuple[I, I, I, F, F], target_s: F,
          warn_s: F) -> tuple[F, F, B, F, F, F, F]:  # fmt: skip
    """The stretch walk of started rows (``clocks._evaluate``), one history position at a time: (elapsed,
    paused, running, warn crossed at, due crossed at, last run's start, elapsed before it)."""
    b0, begin, seg_end, start, end = bounds
    r = len(b0)
    elapsed, paused = np.zeros(r), np.zeros(r)
    running = np.zeros(r, np.bool_)
    warn_x, due_x, run_a, run_e0 = np.full(r, NAN), np.full(r, NAN), np.zeros(r), np.zeros(r)
    for k in range(int(seg_end.max()) if r else 0):
        active = (k >= begin) & (k < seg_end)
        if not active.any():
            continue
        idx = np.where(active, b0 + k, 0)
        a = times[idx]
        a = np.where((k == begin) | (a < start), start, a)
        b = np.where(k + 1 < seg_end, times[np.where(active & (k + 1 < seg_end), b0 + k + 1, 0)], end)
        b = np.where(b < a, a, b)
        pz = active & is_pause[codes[idx]]
        paused = np.where(pz, paused + (b - a), paused)
        running &= ~pz
        go = active & ~pz
        e1 = elapsed + (b - a if tab is None else tab.between(a, b))
        w_now = go & np.isnan(warn_x) & (e1 >= warn_s)
        warn_x = np.where(w_now, _advance(tab, a, warn_s - elapsed, w_now), warn_x)
        d_now = go & np.isnan(due_x) & (e1 > target_s)
        due_x = np.where(d_now, _advance(tab, a, target_s - elapsed, d_now), due_x)
        running |= go
        run_a, run_e0 = np.where(go, a, run_a), np.where(go, elapsed, run_e0)
        elapsed = np.where(go, e1, elapsed)
    return elapsed, paused, running, warn_x, due_x, run_a, run_e0


class _Tables:
    """A business timeline's day tables as arrays, covering every instant of the batch."""

    def __init__(self, tl: BusinessTimeline, *instants: F) -> None:
        """The tables covering every one of ``instants`` (not all empty)."""
        self.tl = tl
        pool = np.concatenate(instants)
        tl.between(float(pool.min()), float(pool.max()))  # builds (covers) the table for both ends
        self._load()

    def _load(self) -> None:
        tl = self.tl
        self.opens, self.closes = np.array(tl._opens), np.array(tl._closes)
        self.cum = np.array(tl._cum)

    def worked(self, t: F) -> F:
        i = np.searchsorted(self.opens, t, "right") - 1
        j = np.maximum(i, 0)
        return np.where(i >= 0, self.cum[j] + np.minimum(t, self.closes[j]) - self.opens[j], 0.0)

    def between(self, a: F, b: F) -> F:
        return self.worked(b) - self.worked(a)

    def add(self, start: F, seconds: F) -> F:
        goal = self.worked(start) + seconds
        while len(goal) and goal.max() > self.cum[-1]:  # grow ahead as the scalar add does
            k = int(goal.argmax())
            self.tl.add(float(start[k]), float(seconds[k]))
            self._load()
        i = np.maximum(np.searchsorted(self.cum, goal, "left"), 1) - 1
        landed = self.opens[i] + (goal - self.cum[i])
        return np.where(landed >= start, landed, start)


def working_between(tl: Timeline, a: F, b: F) -> F:
    """``tl.between(a[i], b[i])`` for every i (the same float operations: equal figures)."""
    if not isinstance(tl, BusinessTimeline):
        return b - a
    if not len(a):
        return np.zeros(0)
    return _Tables(tl, a, b).between(a, b)


def _advance(tab: _Tables | None, a: F, seconds: F, want: B) -> F:
    """``clocks._advance`` over the rows in ``want`` (others: a)."""
    if tab is None:
        return np.where(seconds <= 0, a, a + seconds)
    out = a.copy()
    pos = want & (seconds > 0)
    if pos.any():
        out[pos] = tab.add(a[pos], seconds[pos])
    return out

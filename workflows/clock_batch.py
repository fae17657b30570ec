"""The clock engine over columns: every case of a pass at once, for the sync comparison and ``status``.

``evaluate_batch`` applies the rules of ``workflows.clocks`` (the reference, see its docstring) to
numpy columns built from the stored rows (``workflows.clock_columns``): the same float operations in the
same order, so every figure equals the scalar engine's exactly (tests/test_clock_batch_equality.py). The
scalar engine stays the fallback: rows the columns cannot read, targets that end on a case field
(Budapest Art. 29(7)), cases with recorded per-clock extensions and histories longer than
``MAX_CHANGES`` go through ``clocks.evaluate_case``. Law-counted periods (eu-1182-71) take the target
that ends at the law's due instant, as ``clocks._counted`` does, one law look-up per distinct start
bucket. Results stay in columns; ``results(i)`` builds one case's ``ClockResult`` list when asked.

numpy is imported here: import this module lazily (never on a command's start-up path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.calendars import BusinessTimeline
from casebridge.workflows.cases import Case, StatusChange
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clocks import (
    ClockResult,
    _ClockSpec,
    _plan_for,
    _result,
    _spec,
    evaluate_case,
    evaluate_clock,
)
from casebridge.workflows.counting import _BUCKET, Establishments, _law_due, counted_place
from casebridge.workflows.legal_periods import ELAPSED
from casebridge.workflows.model import Calendar, ClockDef, ClockKind, ClockState, ClockTarget, Workflow

__all__ = ["MAX_CHANGES", "ClockBatch", "ClockColumns", "evaluate_batch", "evaluate_clocks", "workflow_states"]

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741
B = NDArray[np.bool_]
STATES = tuple(ClockState)  # state codes of the result columns (NOT_STARTED is 0)
_CODE = {s: i for i, s in enumerate(STATES)}
NAN = float("nan")
MAX_CHANGES = 64  # a longer history (seen by now) is left to the scalar engine
_FLOATS = ("target", "warn", "extension")  # a policy target's float figures
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


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

    def set(self, at: I, other: ClockColumns) -> None:
        for name in ("state", "started", "started_us", "from_field", "due", "warn", "stopped", "elapsed",
                     "paused", "target_s", "cycle", "overdue"):  # fmt: skip
            getattr(self, name)[at] = getattr(other, name)


@dataclass
class ClockBatch:
    """Results of a batch: per clock its columns, per fallback case its scalar results."""

    cases: Sequence[Case]
    clocks: dict[str, ClockColumns]
    order: list[str]  # workflow clock order
    scalar: dict[int, list[ClockResult]]
    where: dict[str, I]  # clock -> per case its position in the clock's columns (-1: none)

    def results(self, i: int) -> list[ClockResult]:
        """Case i's results, equal to what ``clocks.evaluate_case`` returns."""
        if i in self.scalar:
            return self.scalar[i]
        out = []
        for name in self.order:
            j = int(self.where[name][i]) if name in self.where else -1
            if j >= 0:
                out.append(_materialise(self.clocks[name], j, self.cases[i]))
        return out


def _dt(e: float) -> datetime | None:
    return None if e != e else datetime.fromtimestamp(e, UTC)


def _materialise(c: ClockColumns, j: int, case: Case) -> ClockResult:
    target = c.policy[int(c.group[j])]
    state, ts = STATES[int(c.state[j])], float(c.target_s[j])
    if state is ClockState.NOT_STARTED:
        return _result(c.name, c.kind, state, None, None, None, None, 0.0, None, 0.0, ts, 0, target, 0.0)
    started = getattr(case, c.start_field or "") if c.from_field[j] else _dt(float(c.started[j]))
    elapsed = float(c.elapsed[j])
    return _result(
        c.name, c.kind, state, started, _dt(float(c.due[j])), _dt(float(c.warn[j])), _dt(float(c.stopped[j])),
        elapsed, ts - elapsed, float(c.paused[j]), ts, int(c.cycle[j]), target, float(c.overdue[j]),
    )  # fmt: skip


def workflow_states(workflow: Workflow) -> list[str]:
    """Every state name the workflow's clocks react to (the codes of ``HistoryColumns``)."""
    names = set(workflow.states)
    for clock in workflow.clocks.values():
        names |= clock.start_on | clock.stop_on | clock.met_on | clock.pause_in
    return sorted(names)


def evaluate_batch(
    cases: Sequence[Case],
    hist: HistoryColumns,
    workflow: Workflow,
    now: datetime,
    history_of: Callable[[int], Sequence[StatusChange]],
) -> ClockBatch:
    """Every clock of every case at ``now``; ``hist`` row i is case i's history. ``history_of(i)`` reads
    case i's history the ordinary way, for the cases left to the scalar engine."""
    plan = _plan_for(workflow)
    now_e = now.timestamp()
    n = len(cases)
    rt, lb, used_t, recorded_t = (
        list(map(attrgetter(name), cases)) for name in ("request_type", "legal_basis", "extensions_used", "extensions")
    )
    keys = list(zip(rt, lb, strict=True))
    index = {k: g for g, k in enumerate(dict.fromkeys(keys))}
    gid = np.fromiter(map(index.__getitem__, keys), np.int64, n)
    pairs_of = [plan.pairs_for(*key) for key in index]
    used = np.fromiter(used_t, np.int64, n)
    seen = _seen(hist, now_e)
    fallback = ~hist.readable | np.fromiter(map(bool, recorded_t), np.bool_, n) | (seen > MAX_CHANGES)
    for g, pairs in enumerate(pairs_of):
        if any(t.ends_on_field for _s, t in pairs):
            fallback |= gid == g
    batch = ClockBatch(cases, {}, list(plan.specs), {}, {})
    for name, spec in plan.specs.items():
        policy = [next((t for s, t in pairs if s.name == name), None) for pairs in pairs_of]
        has = np.array([t is not None for t in policy], np.bool_)[gid] & ~fallback if n else np.zeros(0, np.bool_)
        rows = np.flatnonzero(has)
        if not len(rows):
            continue
        where = np.full(n, -1, np.int64)
        where[rows] = np.arange(len(rows))
        batch.where[name] = where
        group = gid[rows]
        base, warn0, ext = (np.array([getattr(t, a) if t else 0.0 for t in policy])[group] for a in _FLOATS)
        maxe = np.array([t.max_extensions if t else 0 for t in policy], np.int64)[group]
        target_s: F = np.where(maxe > 0, base + np.minimum(used[rows], maxe) * ext, base)
        warn_s = warn0 + (target_s - base)
        moment, moment_us = _moments(cases, rows, spec.start_field)
        cols = _evaluate(spec, hist, seen, rows, group, policy, target_s, warn_s, moment, moment_us, now_e)
        _law(spec, cols, cases, hist, seen, (moment, moment_us, used), now_e, workflow.establishments)
        batch.clocks[name] = cols
    for i in np.flatnonzero(fallback).tolist():
        batch.scalar[i] = evaluate_case(cases[i], history_of(i), workflow, now)
    return batch


def evaluate_clocks(
    clock: ClockDef,
    target: ClockTarget,
    calendar: Calendar,
    cases: Sequence[Case],
    histories: Sequence[Sequence[StatusChange]],
    now: datetime,
    establishments: Establishments | None = None,
) -> list[ClockResult]:
    """One clock definition over many cases (``clocks.evaluate_clock`` for each, at once)."""
    spec = _spec(clock, calendar)
    states = sorted(clock.start_on | clock.stop_on | clock.met_on | clock.pause_in)
    hist = HistoryColumns.from_changes(histories, states)
    now_e, n = now.timestamp(), len(cases)
    seen = _seen(hist, now_e)
    fallback = ~hist.readable | (seen > MAX_CHANGES) | bool(target.ends_on_field)
    fallback |= np.fromiter((bool(c.extensions) for c in cases), np.bool_, n)
    rows = np.flatnonzero(~fallback)
    used = np.fromiter((c.extensions_used for c in cases), np.int64, n)
    target_s: F = np.full(len(rows), target.target, np.float64)
    if target.max_extensions:
        target_s = target_s + np.minimum(used[rows], target.max_extensions) * target.extension
    warn_s = target.warn + (target_s - target.target)
    moment, moment_us = _moments(cases, rows, spec.start_field)
    group = np.zeros(len(rows), np.int64)
    cols = _evaluate(spec, hist, seen, rows, group, [target], target_s, warn_s, moment, moment_us, now_e)
    _law(spec, cols, cases, hist, seen, (moment, moment_us, used), now_e, establishments)
    out: list[ClockResult | None] = [None] * n
    for j, i in enumerate(rows.tolist()):
        out[i] = _materialise(cols, j, cases[i])
    for i in np.flatnonzero(fallback).tolist():
        out[i] = evaluate_clock(clock, target, calendar, cases[i], histories[i], now)
    return out  # type: ignore[return-value]  # every slot is filled


def _seen(hist: HistoryColumns, now_e: float) -> I:
    """Per row, how many changes happened at or before now (a prefix: rows are sorted)."""
    before = np.concatenate(([0], np.cumsum(hist.times <= now_e)))
    return before[hist.starts[1:]] - before[hist.starts[:-1]]


def _moments(cases: Sequence[Case], rows: I, name: str | None) -> tuple[F, I]:
    """The rows' ``name`` instants: epoch seconds (NaN when unset) and epoch microseconds."""
    if name is None:
        return np.full(len(rows), NAN), np.zeros(len(rows), np.int64)
    values = list(map(attrgetter(name), map(cases.__getitem__, rows.tolist())))
    seconds = np.fromiter((m.timestamp() if m else NAN for m in values), np.float64, len(rows))
    known = ~np.isnan(seconds)
    micros = np.rint(np.where(known, seconds, 0.0) * 1e6).astype(np.int64)
    # seconds = micros / 10**6 correctly rounded; below 2**32 s the float resolves every microsecond
    exact = ~known | ((np.abs(seconds) < 2.0**32) & (micros / 1e6 == seconds))
    for k in np.flatnonzero(~exact).tolist():
        micros[k] = (values[k] - _EPOCH) // _US
    return seconds, micros


def _law(spec: _ClockSpec, c: ClockColumns, cases: Sequence[Case], hist: HistoryColumns, seen: I,
         extra: tuple[F, I, I], now_e: float, establishments: Establishments | None) -> None:  # fmt: skip
    """Started law-counted periods take the target ending at the law's due instant (``clocks._counted``
    with ``counting.law_target``): the due instant depends only on the counted place, the extensions and
    the start's 15-minute bucket (``counting.law_due``), so the law is asked once per distinct triple."""
    moment, moment_us, used_all = extra
    law_groups = [g for g, t in enumerate(c.policy) if t is not None and t.counting != ELAPSED and t.period]
    js = np.flatnonzero(np.isin(c.group, law_groups) & (c.state != 0)) if law_groups else np.zeros(0, np.int64)
    if not len(js):
        return
    rows, group = c.rows[js], c.group[js]
    sub = list(map(cases.__getitem__, rows.tolist()))
    where = list(zip(group.tolist(), map(attrgetter("provider"), sub), map(attrgetter("legal_basis"), sub),
                     strict=True))  # fmt: skip
    index = {k: i for i, k in enumerate(dict.fromkeys(where))}
    place_id = np.fromiter(map(index.__getitem__, where), np.int64, len(js))
    places = [
        (policy, counted_place(policy, provider, str(basis), establishments).place)
        for g, provider, basis in index
        if (policy := c.policy[g]) is not None
    ]
    maxe = np.array([t.max_extensions if t else 0 for t in c.policy], np.int64)[group]
    used = np.where(maxe > 0, np.minimum(used_all[rows], maxe), 0)
    bucket = np.floor_divide(c.started[js], _BUCKET).astype(np.int64)
    # one int64 key per (place, extensions, bucket); buckets span well under 2**40 for any real date
    low, span, uses = int(bucket.min()), int(bucket.max() - bucket.min()) + 1, int(used.max()) + 1
    key = (place_id * uses + used) * span + (bucket - low)
    keys, inverse = np.unique(key, return_inverse=True)
    dues = np.empty(len(keys), np.int64)
    for u, k in enumerate(keys.tolist()):
        rest, b = divmod(k, span)
        pid, n_used = divmod(rest, uses)
        b += low
        target, place = places[pid]
        due = _law_due(target.counting, b, target.period, n_used, target.extension_label, place)
        dues[u] = (due - _EPOCH) // _US
    seconds = (dues[inverse.ravel()] - c.started_us[js]) / 10**6
    warn0 = np.array([t.warn if t else 0.0 for t in c.policy])[group]
    ext = np.array([t.extension if t else 0.0 for t in c.policy])[group]
    warn = np.minimum(warn0 + used * ext, seconds)
    redo = seconds != c.target_s[js]
    at = js[redo]
    if len(at):
        again = _evaluate(spec, hist, seen, c.rows[at], c.group[at], c.policy, seconds[redo], warn[redo] + 0.0,
                          moment[at], moment_us[at], now_e)  # fmt: skip
        c.set(at, again)


def _evaluate(spec: _ClockSpec, hist: HistoryColumns, seen_all: I, rows: I, group: I, policy: list[ClockTarget | None],
              target_s: F, warn_s: F, moment: F, moment_us: I, now_e: float) -> ClockColumns:  # fmt: skip
    """``clocks._evaluate`` over the rows: the cycle scan, then the stretch walk, one history position
    (k) at a time for every row at once; the 24x7 steady path as the scalar engine takes it."""
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
    kmax = int(ns.max()) if r else 0
    idle = np.ones(r, np.bool_)
    cycle = np.zeros(r, np.int64)
    begin = np.full(r, -1, np.int64)
    stop = np.full(r, -1, np.int64)
    for k in range(kmax):
        valid = k < ns
        c = codes[np.where(valid, b0 + k, 0)]
        s_now = valid & idle & is_start[c]
        p_now = valid & ~idle & is_stop[c]
        cycle += s_now
        begin = np.where(s_now, k, begin)
        stop = np.where(s_now, -1, np.where(p_now, k, stop))
        idle = np.where(s_now, False, np.where(p_now, True, idle))
    on = cycle > 0
    first = times[np.where(on, b0 + begin, 0)] if len(times) else np.zeros(r)
    from_field = (cycle == 1) & ~np.isnan(moment)
    start = np.where(from_field, moment, first)
    started = on & (start <= now_e)
    stopped = started & (stop >= 0)
    seg_end = np.where(stop >= 0, stop, ns)
    end = np.where(stopped, times[np.where(stopped, b0 + stop, 0)] if len(times) else 0.0, now_e)
    tl = spec.timeline
    tab = _Tables(tl, times, start, now_e, started) if tl is not None else None
    elapsed, paused = np.zeros(r), np.zeros(r)
    running, any_pause = np.zeros(r, np.bool_), np.zeros(r, np.bool_)
    warn_x, due_x, run_a, run_e0 = np.full(r, NAN), np.full(r, NAN), np.zeros(r), np.zeros(r)
    for k in range(kmax):
        active = started & (k >= begin) & (k < seg_end)
        if not active.any():
            continue
        idx = np.where(active, b0 + k, 0)
        a = times[idx]
        a = np.where((k == begin) | (a < start), start, a)
        b = np.where(k + 1 < seg_end, times[np.where(active & (k + 1 < seg_end), b0 + k + 1, 0)], end)
        b = np.where(b < a, a, b)
        pz = active & is_pause[codes[idx]]
        any_pause |= pz
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
    first_us = hist.micros[np.where(on, b0 + begin, 0)] if len(times) else np.zeros(r, np.int64)
    return ClockColumns(
        spec.name, spec.kind, spec.start_field, rows, group, policy, code, np.where(started, start, NAN),
        np.where(from_field, moment_us, first_us), from_field & started, due, warn, np.where(stopped, end, NAN),
        elapsed, paused, target_s, np.where(started, cycle, 0), overdue,
    )  # fmt: skip


class _Tables:
    """A business timeline's day tables as arrays, covering every instant of the batch."""

    def __init__(self, tl: BusinessTimeline, times: F, start: F, now_e: float, started: B) -> None:
        self.tl = tl
        pool = np.concatenate((times, start[started], [now_e]))
        lo, hi = float(pool.min()), float(pool.max())
        tl.between(lo, hi)  # builds (covers) the table for both ends
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


def _advance(tab: _Tables | None, a: F, seconds: F, want: B) -> F:
    """``clocks._advance`` over the rows in ``want`` (others: a)."""
    if tab is None:
        return np.where(seconds <= 0, a, a + seconds)
    out = a.copy()
    pos = want & (seconds > 0)
    if pos.any():
        out[pos] = tab.add(a[pos], seconds[pos])
    return out

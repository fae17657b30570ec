"""SLA clocks: start, pause and stop from a case's status history; due, warn and breach on a calendar.

Pure code: everything is derived from the status history and ``now`` (nothing is stored), so changing a
case's policy, re-reading its history or running twice gives the same answer, and pause time already
accumulated is never lost.

Rules (see shared/domain/README.md, "Clocks"):
- A clock starts when the case enters one of its ``start_on`` states. If the clock has a
  ``start_field`` (legal clocks: ``submitted_at``, provider receipt) and the case has it set, the first
  cycle starts at that instant instead, and the state that started the clock is taken to have held
  since then: a case created directly in a paused state consumes nothing for the gap.
- Operational clocks pause while the case is in a ``pause_in`` state. Legal clocks never pause.
- Entering a ``stop_on`` state stops the clock: ``met`` (stop state in ``met_on``, within target),
  ``breached`` (over target) or ``stopped``. Entering a start state later begins a new cycle; the
  latest cycle is reported.
- While running, ``due_at`` is when elapsed clock time would reach the target if nothing pauses again,
  projected from the start of the current running stretch, so it is stable between runs and moves
  forward by exactly the paused (working) time on resume. While paused, ``due_at`` is None. Once the
  target is exceeded (breached), ``due_at`` is the historical instant the target was reached; reaching it
  exactly is not a breach, so a pause that follows still moves it forward.

Hot path: 100,000 cases x 3 clocks per sync pass. Instants are epoch floats inside; 24x7 clocks do plain
arithmetic; business clocks use the cumulative tables of ``workflows.calendars``.
"""

from __future__ import annotations

import logging
import weakref
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from casebridge.workflows.calendars import BusinessTimeline, calendar_named, timeline_for
from casebridge.workflows.cases import Case, StatusChange
from casebridge.workflows.counting import Establishments, law_target
from casebridge.workflows.fastbuild import frozen_builder
from casebridge.workflows.legal_periods import ELAPSED
from casebridge.workflows.model import Calendar, ClockDef, ClockKind, ClockState, ClockTarget, Workflow

log = logging.getLogger(__name__)

__all__ = ["ClockResult", "evaluate_case", "evaluate_clock"]

_fromtimestamp = datetime.fromtimestamp


@dataclass(frozen=True, slots=True)
class ClockResult:
    name: str  # clock name from the workflow
    kind: ClockKind  # legal | operational
    state: ClockState  # not_started, running, paused, at_risk, breached, met, stopped
    started_at: datetime | None
    due_at: datetime | None  # None when not started or while paused
    warn_at: datetime | None
    stopped_at: datetime | None
    elapsed_seconds: float  # clock time consumed (working seconds on business calendars)
    remaining_seconds: float | None  # target - elapsed (negative when breached); None if not started
    paused_seconds: float  # wall time spent paused in the current cycle
    target_seconds: float  # target + min(extensions_used, max_extensions) * extension
    cycle: int  # 1 for the first cycle; a restart after a stop starts cycle 2 ...; 0 if not started
    target: ClockTarget  # the policy target used (.source, .escalate, .on_lapse)
    # wall seconds since due_at when breached (until the stop, for a clock stopped late), else 0
    overdue_seconds: float


# Results are built through a plain twin (workflows.fastbuild): a frozen dataclass's own __init__ costs
# about five times as much, and a pass builds 300,000 of them.
_result = frozen_builder(ClockResult)


@dataclass(frozen=True, slots=True)
class _ClockSpec:
    """A clock definition prepared for the hot path."""

    name: str
    kind: ClockKind
    start_on: frozenset[str]
    stop_on: frozenset[str]
    met_on: frozenset[str]
    pause_in: frozenset[str]  # empty for legal clocks, whatever the definition says
    start_field: str | None
    timeline: BusinessTimeline | None  # None: 24x7, plain arithmetic
    # states sequence -> (cycle, begin, stop): histories follow few distinct workflow paths, so the
    # start/stop scan is memoised per clock (bounded; see _latest_cycle).
    cycles: dict[tuple[str, ...], tuple[int, int, int, bool]] = field(default_factory=dict, compare=False)
    idle_results: dict[tuple[int, float], ClockResult] = field(default_factory=dict, compare=False)


def _spec(clock: ClockDef, calendar: Calendar) -> _ClockSpec:
    timeline = timeline_for(calendar)
    return _ClockSpec(
        name=clock.name,
        kind=clock.kind,
        start_on=clock.start_on,
        stop_on=clock.stop_on,
        met_on=clock.met_on,
        # The loader forbids pause_in on legal clocks; ignore it here too, so a hand-built or future
        # definition can never make a legal deadline pause.
        pause_in=frozenset() if clock.kind == ClockKind.LEGAL else clock.pause_in,
        start_field=clock.start_field,
        timeline=timeline if isinstance(timeline, BusinessTimeline) else None,
    )


class _WorkflowPlan:
    """Per-workflow caches: clock specs, and the (spec, target) pairs per (request type, legal basis)."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.specs = {
            name: _spec(clock, calendar_named(workflow, clock.calendar)) for name, clock in workflow.clocks.items()
        }
        self._pairs: dict[tuple[str, str], list[tuple[_ClockSpec, ClockTarget]]] = {}

    def pairs_for(self, request_type: str, legal_basis: str) -> list[tuple[_ClockSpec, ClockTarget]]:
        key = (request_type, legal_basis)
        pairs = self._pairs.get(key)
        if pairs is None:
            targets = self.workflow.targets_for(request_type, legal_basis)
            # Workflow clock order, not policy order.
            pairs = [(spec, targets[name]) for name, spec in self.specs.items() if name in targets]
            self._pairs[key] = pairs
        return pairs


# Keyed by id(workflow); the weak reference guards against a dead workflow's id being reused. A workflow
# is treated as immutable once loaded (the loader builds a fresh one for every load).
_PLANS: dict[int, tuple[weakref.ref[Workflow], _WorkflowPlan]] = {}
_SPECS: dict[tuple[ClockDef, Calendar], _ClockSpec] = {}
# Bound of each per-clock memo (distinct state paths, shared not-started results).
_CYCLE_MEMO_LIMIT = 4096


def _plan_for(workflow: Workflow) -> _WorkflowPlan:
    entry = _PLANS.get(id(workflow))
    if entry is not None and entry[0]() is workflow:
        return entry[1]
    plan = _WorkflowPlan(workflow)
    key = id(workflow)
    # The callback binds the dict's pop: module globals may already be gone at interpreter exit.
    forget = _PLANS.pop
    _PLANS[key] = (weakref.ref(workflow, lambda _ref: forget(key, None)), plan)
    return plan


@dataclass(slots=True)
class _History:
    """A case's status history up to ``now``, prepared once and shared by all its clocks."""

    changes: Sequence[StatusChange]  # time-ordered
    times: list[float]  # epoch seconds of each change
    states: tuple[str, ...]  # states of the changes at or before now (a prefix of changes)


def _prepare(history: Sequence[StatusChange], now_e: float) -> _History:
    times = [change.at.timestamp() for change in history]
    if times != sorted(times):  # trackers return ordered lists; sort (stably) only when they do not
        order = sorted(range(len(times)), key=times.__getitem__)
        history = [history[i] for i in order]
        times = [times[i] for i in order]
    seen = bisect_right(times, now_e)  # changes after now have not happened yet
    if seen == len(times):
        return _History(history, times, tuple([change.state for change in history]))
    return _History(history, times, tuple([history[i].state for i in range(seen)]))


def evaluate_case(case: Case, history: Sequence[StatusChange], workflow: Workflow, now: datetime) -> list[ClockResult]:
    """Every clock that has a target for this case, in workflow clock order."""
    pairs = _plan_for(workflow).pairs_for(case.request_type, case.legal_basis)
    if not pairs:
        return []
    now_e = now.timestamp()
    hist = _prepare(history, now_e)
    results = [_evaluate(spec, target, case, hist, now_e) for spec, target in pairs]
    return _counted(pairs, results, case, hist, now_e, workflow.establishments)


def evaluate_clock(
    clock: ClockDef,
    target: ClockTarget,
    calendar: Calendar,
    case: Case,
    history: Sequence[StatusChange],
    now: datetime,
) -> ClockResult:
    """One clock of one case at ``now`` (aware)."""
    spec = _SPECS.get((clock, calendar))
    if spec is None:
        spec = _SPECS[(clock, calendar)] = _spec(clock, calendar)
    now_e = now.timestamp()
    hist = _prepare(history, now_e)
    return _counted([(spec, target)], [_evaluate(spec, target, case, hist, now_e)], case, hist, now_e, None)[0]


def _counted(
    pairs: Sequence[tuple[_ClockSpec, ClockTarget]],
    results: list[ClockResult],
    case: Case,
    hist: _History,
    now_e: float,
    establishments: Establishments | None,
) -> list[ClockResult]:
    """A separate step after the engine: a period the law counts by its own rule (``workflows.counting``,
    e.g. Reg. 1182/71 Art. 3) is re-evaluated with the target that ends at the law's due instant."""
    for i, (spec, target) in enumerate(pairs):
        if target.counting == ELAPSED or results[i].started_at is None:
            continue
        law = law_target(target, results[i].started_at, case, establishments)
        if law is not None and law.target != results[i].target_seconds:
            results[i] = replace(_evaluate(spec, law, case, hist, now_e), target=target)
    return results


def _not_started(spec: _ClockSpec, target: ClockTarget, target_s: float) -> ClockResult:
    # Results are immutable, so every not-started clock with the same target shares one (many cases
    # never reach a clock such as mla); keyed by identity, checked against the stored target.
    key = (id(target), target_s)
    found = spec.idle_results.get(key)
    if found is not None and found.target is target:
        return found
    found = _result(
        spec.name, spec.kind, ClockState.NOT_STARTED, None, None, None, None,
        0.0, None, 0.0, target_s, 0, target, 0.0,
    )  # fmt: skip
    if len(spec.idle_results) >= _CYCLE_MEMO_LIMIT:
        spec.idle_results.clear()
    spec.idle_results[key] = found
    return found


def _latest_cycle(spec: _ClockSpec, states: tuple[str, ...]) -> tuple[int, int, int, bool]:
    """(cycle number, index that started it, index that stopped it or -1, whether no state of the cycle
    pauses the clock); cycle 0: never started."""
    found = spec.cycles.get(states)
    if found is not None:
        return found
    start_on, stop_on = spec.start_on, spec.stop_on
    cycle = 0
    begin = stop = -1
    idle = True  # not started yet, or stopped
    for i, state in enumerate(states):
        if idle:
            if state in start_on:
                cycle += 1
                begin, stop, idle = i, -1, False
        elif state in stop_on:
            stop, idle = i, True
    steady = cycle > 0 and spec.pause_in.isdisjoint(states[begin : stop if stop >= 0 else len(states)])
    if len(spec.cycles) >= _CYCLE_MEMO_LIMIT:  # unusually many distinct paths: start over
        spec.cycles.clear()
    found = spec.cycles[states] = (cycle, begin, stop, steady)
    return found


def _evaluate(spec: _ClockSpec, target: ClockTarget, case: Case, hist: _History, now_e: float) -> ClockResult:
    target_s = target.target
    if target.max_extensions and (case.extensions_used or case.extensions):
        target_s += min(case.extensions_for(spec.name), target.max_extensions) * target.extension
    states = hist.states
    cycle, begin, stop, steady = _latest_cycle(spec, states)
    if cycle == 0:
        return _not_started(spec, target, target_s)
    times = hist.times
    started_at, start = hist.changes[begin].at, times[begin]
    if cycle == 1 and spec.start_field is not None:
        moment = getattr(case, spec.start_field, None)
        if moment:
            started_at, start = moment, moment.timestamp()
    if start > now_e:
        return _not_started(spec, target, target_s)

    stopped = stop >= 0
    seg_end = stop if stopped else len(states)
    end = times[stop] if stopped else now_e
    ended_at = _ends_on(target, case, start, end) if target.ends_on_field else None
    if ended_at is not None:  # the clock gave way to another regime (Budapest Art. 29(7)) at ended_at
        stopped, end = True, ended_at.timestamp()
        seg_end = bisect_right(times, end, begin + 1, seg_end)
    # an extension moves the warn time with the due time: a clock just extended is not at risk
    warn_s = target.warn + (target_s - target.target)
    tl = spec.timeline
    if steady and (tl is None or seg_end == begin + 1):
        # Never paused in this cycle, and 24x7 or one stretch: the stretches are contiguous from the
        # start, so the walk reduces to one span (the same float operations, the same results).
        due: float | None
        warn: float | None
        if tl is None:
            elapsed = _steady_elapsed(times, begin, seg_end, start, end)
            due, warn = _advance(None, start, target_s), _advance(None, start, warn_s)
        else:
            elapsed, due, warn = tl.stretch(start, end if end > start else start, target_s, warn_s)
        paused, running = 0.0, True
        due_x: float | None = due if elapsed > target_s else None
    else:
        elapsed, paused, running, due_x, due, warn = _walk(spec, hist, begin, seg_end, start, end, target_s, warn_s)
    breached = elapsed > target_s
    if stopped:
        state = (
            ClockState.BREACHED
            if breached
            else ClockState.MET
            if ended_at is not None or states[stop] in spec.met_on
            else ClockState.STOPPED
        )
    else:
        # Breached wins over paused: a pause after the due time does not un-breach the clock.
        state = (
            ClockState.BREACHED
            if breached
            else ClockState.PAUSED
            if not running
            else ClockState.AT_RISK
            if elapsed >= warn_s
            else ClockState.RUNNING
        )
    return _result(
        spec.name,
        spec.kind,
        state,
        started_at,  # the case's own datetime objects are reused (aware, any zone): no conversion
        None if due is None else _fromtimestamp(due, UTC),
        None if warn is None else _fromtimestamp(warn, UTC),
        ended_at if ended_at is not None else hist.changes[stop].at if stopped else None,
        elapsed,
        target_s - elapsed,
        paused,
        target_s,
        cycle,
        target,
        end - due_x if breached and due_x is not None else 0.0,
    )


def _steady_elapsed(times: list[float], begin: int, seg_end: int, start: float, end: float) -> float:
    """Clock time of a cycle with no pause on a 24x7 calendar: from the start to the end, never less
    than the start of the last stretch (the stretches of ``_walk`` are clipped to the start)."""
    last = times[seg_end - 1] if seg_end - 1 > begin else start
    if last < start:
        last = start
    return (end if end > last else last) - start


def _walk(
    spec: _ClockSpec, hist: _History, begin: int, seg_end: int, start: float, end: float, target_s: float, warn_s: float
) -> tuple[float, float, bool, float | None, float | None, float | None]:
    """Stretch by stretch from the start to the end of the cycle -> (elapsed, paused, whether the last
    stretch runs, instant the target was exceeded or None, due, warn); due and warn not reached yet are
    projected from the current running stretch (None while paused)."""
    times, states = hist.times, hist.states
    pause_in, tl = spec.pause_in, spec.timeline
    elapsed = paused = 0.0
    warn_x = due_x = None  # instants the warn / target thresholds were reached
    running = False  # is the last stretch (up to the stop or now) running?
    run_a = run_e0 = 0.0  # ...its start and the elapsed time before it
    for k in range(begin, seg_end):
        a = times[k]
        # The starting state holds from `start` (start_field may be earlier than its entry); when
        # start_field is later, stretches before it are clipped.
        if k == begin or a < start:
            a = start
        b = times[k + 1] if k + 1 < seg_end else end
        if b < a:
            b = a
        if states[k] in pause_in:
            paused += b - a
            running = False
            continue
        e1 = elapsed + (b - a if tl is None else tl.between(a, b))
        if warn_x is None and e1 >= warn_s:
            warn_x = _advance(tl, a, warn_s - elapsed)
        # The due instant is fixed once the target is exceeded. Reaching it exactly is not a breach:
        # a later pause still moves it forward (projected below from the current running stretch).
        if due_x is None and e1 > target_s:
            due_x = _advance(tl, a, target_s - elapsed)
        running, run_a, run_e0 = True, a, elapsed
        elapsed = e1
    due, warn = due_x, warn_x
    if running:
        if due is None:
            due = run_a + (target_s - run_e0) if tl is None else _advance(tl, run_a, target_s - run_e0)
        if warn is None:
            warn = run_a + max(0.0, warn_s - run_e0) if tl is None else _advance(tl, run_a, warn_s - run_e0)
    return elapsed, paused, running, due_x, due, warn


def _ends_on(target: ClockTarget, case: Case, start: float, end: float) -> datetime | None:
    """The case's ``ends_on_field`` instant when it falls inside this cycle (from its start up to its stop
    or now), else None."""
    moment = getattr(case, target.ends_on_field or "", None)
    if not isinstance(moment, datetime) or not start <= moment.timestamp() <= end:
        return None
    return moment


def _advance(tl: BusinessTimeline | None, a: float, seconds: float) -> float:
    """The instant ``seconds`` of clock time after ``a`` (never before ``a``)."""
    if seconds <= 0:
        return a
    return a + seconds if tl is None else tl.add(a, seconds)

"""Independent clock implementations for bench/clocks.py: they share no code with workflows/clocks.py.

- ``day_by_day_case``: the clock rules written the obvious way with datetimes; business time walks local
  calendar days (weekday, holidays from the ``holidays`` package, closed/open dates) and intersects
  each working day with the interval. Slow, used on a sample as the correctness reference.
- ``plain_24x7_case``: the fair speed baseline. What a plain implementation with no business calendars
  would do: epoch floats, the (clock, target) pairs looked up once per case kind, one loop over the
  history per clock, a small tuple per clock. Every clock is treated as 24x7, so it is only comparable
  with the engine on the 24x7 clocks (checked) and only shows what the engine's generality costs.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from casebridge.workflows.calendars import calendar_named
from casebridge.workflows.cases import Case
from casebridge.workflows.model import Calendar, ClockDef, ClockKind, ClockState, ClockTarget, Workflow


class DayByDay:
    """Business time by walking local days."""

    def __init__(self, cal: Calendar) -> None:
        self.cal = cal
        self.tz = ZoneInfo(cal.timezone)
        self.holidays = holidays.country_holidays(cal.holidays_country, years=range(2024, 2030))

    def working(self, day: date) -> bool:
        if day in self.cal.open_dates:
            return True
        return day.weekday() in self.cal.working_days and day not in self.holidays and day not in self.cal.closed_dates

    def window(self, day: date) -> tuple[datetime, datetime]:
        return datetime.combine(day, self.cal.day_start, self.tz), datetime.combine(day, self.cal.day_end, self.tz)

    def between(self, a: datetime, b: datetime) -> float:
        total, day = 0.0, a.astimezone(self.tz).date() - timedelta(days=1)
        while day <= b.astimezone(self.tz).date():
            if self.working(day):
                lo, hi = self.window(day)
                total += max(0.0, (min(hi, b) - max(lo, a)).total_seconds())
            day += timedelta(days=1)
        return total

    def add(self, a: datetime, seconds: float) -> datetime:
        day = a.astimezone(self.tz).date() - timedelta(days=1)
        while True:
            if self.working(day):
                lo, hi = self.window(day)
                lo = max(lo, a)
                room = (hi - lo).total_seconds()
                if room >= seconds and hi > a:
                    return lo + timedelta(seconds=seconds)
                seconds -= max(0.0, room)
            day += timedelta(days=1)


def _day_by_day_clock(clock: ClockDef, target: ClockTarget, cal: Calendar, case: Case, history, now: datetime):
    days = DayByDay(cal) if cal.kind == "business" else None

    def between(a: datetime, b: datetime) -> float:
        return days.between(a, b) if days else (b - a).total_seconds()

    def add(a: datetime, s: float) -> datetime:
        if s <= 0:
            return a
        return days.add(a, s) if days else a + timedelta(seconds=s)

    past = [h for h in history if h.at <= now]
    cycles: list[tuple[int, int | None]] = []  # (start index, stop index)
    for i, h in enumerate(past):
        if (not cycles or cycles[-1][1] is not None) and h.state in clock.start_on:
            cycles.append((i, None))
        elif cycles and cycles[-1][1] is None and h.state in clock.stop_on:
            cycles[-1] = (cycles[-1][0], i)
    if not cycles:
        return ClockState.NOT_STARTED, 0.0, None
    begin, stop = cycles[-1]
    start = past[begin].at
    if len(cycles) == 1 and clock.start_field and getattr(case, clock.start_field, None):
        start = getattr(case, clock.start_field)
    if start > now:
        return ClockState.NOT_STARTED, 0.0, None
    end = past[stop].at if stop is not None else now
    pause = clock.pause_in if clock.kind == ClockKind.OPERATIONAL else frozenset()
    goal = target.target + min(case.extensions_used, target.max_extensions) * target.extension
    elapsed, due, running, last = 0.0, None, False, (start, 0.0)
    last_index = stop if stop is not None else len(past)
    for k in range(begin, last_index):
        a = start if k == begin else max(past[k].at, start)
        b = max(past[k + 1].at if k + 1 < last_index else end, a)
        running = past[k].state not in pause
        if not running:
            continue
        d = between(a, b)
        if due is None and elapsed + d > goal:
            due = add(a, goal - elapsed)
        last, elapsed = (a, elapsed), elapsed + d
    if due is None and running:
        due = add(last[0], goal - last[1])
    if stop is not None:
        met = past[stop].state in clock.met_on
        state = ClockState.BREACHED if elapsed > goal else ClockState.MET if met else ClockState.STOPPED
    elif elapsed > goal:
        state = ClockState.BREACHED
    elif not running:
        state = ClockState.PAUSED
    else:
        warn = target.warn + (goal - target.target)
        state = ClockState.AT_RISK if elapsed >= warn else ClockState.RUNNING
    return state, elapsed, due


def day_by_day_case(case: Case, history, workflow: Workflow, now: datetime) -> list[tuple[Any, float, Any]]:
    """(state, elapsed seconds, due datetime or None) per clock, in workflow clock order."""
    targets = workflow.targets_for(case.request_type, case.legal_basis)
    return [
        _day_by_day_clock(clock, targets[name], calendar_named(workflow, clock.calendar), case, history, now)
        for name, clock in workflow.clocks.items()
        if name in targets
    ]


# ------------------------------------------------------------------------------- plain 24x7 baseline
class Plain24x7:
    """The fair baseline: plain float arithmetic, every clock 24x7."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.pairs: dict[tuple[str, str], list[tuple[ClockDef, ClockTarget, frozenset[str]]]] = {}

    def all(self, cases: list[Case], histories: list, now_e: float) -> list[list[tuple]]:
        return [self.case(case, history, now_e) for case, history in zip(cases, histories, strict=True)]

    def case(self, case: Case, history, now_e: float) -> list[tuple]:
        """(state, elapsed, due epoch, warn epoch) per clock; the history is trusted to be in order."""
        times = [h.at.timestamp() for h in history]
        states = [h.state for h in history]
        key = (case.request_type, case.legal_basis)
        pairs = self.pairs.get(key)
        if pairs is None:
            targets = self.workflow.targets_for(*key)
            pairs = self.pairs[key] = [
                (c, targets[n], c.pause_in if c.kind == ClockKind.OPERATIONAL else frozenset())
                for n, c in self.workflow.clocks.items()
                if n in targets
            ]
        return [self.clock(c, t, pause, case, times, states, now_e) for c, t, pause in pairs]

    @staticmethod
    def clock(c: ClockDef, t: ClockTarget, pause, case: Case, times, states, now_e: float) -> tuple:
        begin = stop = -1
        cycles = 0
        for i, state in enumerate(states):
            if (begin < 0 or stop >= 0) and state in c.start_on:
                begin, stop, cycles = i, -1, cycles + 1
            elif begin >= 0 and stop < 0 and state in c.stop_on:
                stop = i
        if begin < 0:
            return ("not_started", 0.0, None, None)
        start = times[begin]
        if cycles == 1 and c.start_field and getattr(case, c.start_field, None):
            start = getattr(case, c.start_field).timestamp()
        if start > now_e:
            return ("not_started", 0.0, None, None)
        goal = t.target + min(case.extensions_used, t.max_extensions) * t.extension
        warn_goal = t.warn + goal - t.target
        last = stop if stop >= 0 else len(states)
        end = times[stop] if stop >= 0 else now_e
        elapsed, due, warn, running, run_a, run_e = 0.0, None, None, False, start, 0.0
        for k in range(begin, last):
            a = start if k == begin else max(times[k], start)
            b = max(times[k + 1] if k + 1 < last else end, a)
            running = states[k] not in pause
            if running:
                if warn is None and elapsed + b - a >= warn_goal:
                    warn = a + max(0.0, warn_goal - elapsed)
                if due is None and elapsed + b - a > goal:
                    due = a + max(0.0, goal - elapsed)
                run_a, run_e, elapsed = a, elapsed, elapsed + b - a
        if running:
            due = run_a + goal - run_e if due is None else due
            warn = run_a + max(0.0, warn_goal - run_e) if warn is None else warn
        if stop >= 0:
            state = "breached" if elapsed > goal else "met" if states[stop] in c.met_on else "stopped"
        else:
            state = (
                "breached" if elapsed > goal
                else "paused" if not running
                else "at_risk" if elapsed >= warn_goal
                else "running"
            )  # fmt: skip
        return (state, elapsed, due, warn)

"""Benchmark: evaluate 100,000 cases x 3 clocks with the SLA clock engine on one core.

Prints the engine's time and, in the same run, a naive baseline's time per case (datetime arithmetic,
``workflow.targets_for`` per case, business time by stepping minute by minute, as trackers' scripts
often do) on a sample, plus the ratio. The baseline also cross-checks the engine: both must agree on
state, elapsed and due time for every sampled clock (histories are minute-aligned so minute stepping is
exact). Prints figures; never asserts on time.

    .venv/bin/python bench/clocks.py [--cases 100000] [--sample 300] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gc

import holidays

from casebridge.workflows import load_workflow
from casebridge.workflows.calendars import calendar_named
from casebridge.workflows.cases import Case, StatusChange
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.model import Calendar, ClockDef, ClockKind, ClockState, ClockTarget, Workflow

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# (request type, legal basis): in lawful-access each gets exactly 3 clocks: legal_review (agency
# business calendar, Asia/Karachi + holidays.PK), one legal or followup clock, and mla.
KINDS = [
    ("subscriber", "voluntary"),
    ("emergency", "eu-epo"),
    ("preservation", "us-2703f"),
    ("content", "mlat"),
    ("subscriber", "eu-epo"),
]


# --------------------------------------------------------------------------------------------- data
def make_cases(n: int, seed: int) -> list[tuple[Case, list[StatusChange]]]:
    rng = random.Random(seed)
    proto = {"title": "Bench request", "provider": "Example Provider", "timezone": "Asia/Karachi"}
    out = []
    for i in range(n):
        request_type, legal_basis = KINDS[i % len(KINDS)]
        t = NOW - timedelta(minutes=rng.randrange(1, 200 * 24 * 60))
        history = [StatusChange(t, "draft")]

        def step(state: str, max_minutes: int, history: list[StatusChange] = history) -> None:
            nonlocal t
            t += timedelta(minutes=rng.randrange(1, max_minutes))
            if t < NOW:
                history.append(StatusChange(t, state))

        step("legal_review", 3 * 24 * 60)
        step("approved", 4 * 24 * 60)
        step("submitted", 24 * 60)
        submitted_at = history[-1].at if history[-1].state == "submitted" else None
        step("acknowledged", 2 * 24 * 60)
        if rng.random() < 0.4:
            step("awaiting_requester", 5 * 24 * 60)
            step("acknowledged", 10 * 24 * 60)
        ending = rng.random()
        if ending < 0.3:
            step("fulfilled", 30 * 24 * 60)
        elif ending < 0.45:
            step("refused", 20 * 24 * 60)
            step("redirected_mla", 5 * 24 * 60)
        case = Case.model_construct(
            reference=f"BENCH-{i:06d}",
            request_type=request_type,
            legal_basis=legal_basis,
            submitted_at=submitted_at,
            extensions_used=rng.choice((0, 0, 1)),
            **proto,
        )
        out.append((case, history))
    return out


# ------------------------------------------------------------------------------------ naive baseline
class NaiveBusinessMinutes:
    """Business time the obvious way: is this minute inside working hours? Step one minute at a time."""

    def __init__(self, cal: Calendar) -> None:
        self.cal = cal
        self.tz = ZoneInfo(cal.timezone)
        self.holidays = holidays.country_holidays(cal.holidays_country, years=range(2024, 2030))

    def working(self, minute: datetime) -> bool:
        local = minute.astimezone(self.tz)
        day: date = local.date()
        if day in self.cal.open_dates:
            pass
        elif (
            local.weekday() not in self.cal.working_days
            or day in self.holidays
            or day in self.cal.closed_dates
        ):
            return False
        return self.cal.day_start <= local.time() < self.cal.day_end

    def between(self, a: datetime, b: datetime) -> float:
        total, t, one = 0.0, a, timedelta(minutes=1)
        while t < b:
            total += 60.0 if self.working(t) else 0.0
            t += one
        return total

    def add(self, a: datetime, seconds: float) -> datetime:
        t, one = a, timedelta(minutes=1)
        while seconds > 0:
            if self.working(t):
                seconds -= 60.0
            t += one
        return t


def naive_clock(clock: ClockDef, target: ClockTarget, cal: Calendar, case: Case, history, now: datetime):
    minutes = NaiveBusinessMinutes(cal) if cal.kind == "business" else None

    def between(a: datetime, b: datetime) -> float:
        return minutes.between(a, b) if minutes else (b - a).total_seconds()

    def add(a: datetime, s: float) -> datetime:
        return minutes.add(a, s) if minutes else a + timedelta(seconds=s)

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
        if due is None and elapsed + d >= goal:
            due = add(a, goal - elapsed)
        last, elapsed = (a, elapsed), elapsed + d
    if due is None and running:
        due = add(last[0], goal - last[1])
    if stop is not None:
        state = (
            ClockState.BREACHED
            if elapsed > goal
            else ClockState.MET
            if past[stop].state in clock.met_on
            else ClockState.STOPPED
        )
    elif elapsed > goal:
        state = ClockState.BREACHED
    elif not running:
        state = ClockState.PAUSED
    else:
        state = ClockState.AT_RISK if elapsed >= target.warn else ClockState.RUNNING
    return state, elapsed, due


def naive_evaluate_case(case: Case, history, workflow: Workflow, now: datetime) -> list:
    targets = workflow.targets_for(case.request_type, case.legal_basis)
    return [
        naive_clock(clock, targets[name], calendar_named(workflow, clock.calendar), case, history, now)
        for name, clock in workflow.clocks.items()
        if name in targets
    ]


# --------------------------------------------------------------------------------------------- main
def run_engine(data, workflow: Workflow) -> tuple[float, int, dict[str, int]]:
    """Evaluate every case as a sync pass does: look at each result, keep none -> (s, clocks, states)."""
    states: dict[str, int] = {}
    clocks = 0
    t0 = time.perf_counter()
    for case, history in data:
        for result in evaluate_case(case, history, workflow, NOW):
            clocks += 1
            states[result.state] = states.get(result.state, 0) + 1
    return time.perf_counter() - t0, clocks, states


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=300, help="cases for the (slow) naive baseline")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    workflow = load_workflow("lawful-access")
    data = make_cases(args.cases, args.seed)
    evaluate_case(*data[0], workflow, NOW)  # warm the calendar tables and caches (built once per process)

    engine_s, clocks, states = run_engine(data, workflow)
    # The loaded cases are long-lived: freezing them keeps full GC passes from rescanning them.
    gc.collect()
    gc.freeze()
    frozen_s, _, _ = run_engine(data, workflow)
    gc.unfreeze()

    sample = data[: args.sample]
    t0 = time.perf_counter()
    naive = [naive_evaluate_case(case, history, workflow, NOW) for case, history in sample]
    naive_s = time.perf_counter() - t0
    mismatches = 0
    for (case, history), naive_rs in zip(sample, naive, strict=True):
        engine_rs = evaluate_case(case, history, workflow, NOW)
        for r, (state, elapsed, due) in zip(engine_rs, naive_rs, strict=True):
            if r.target.counting != "elapsed":  # the baseline counts elapsed time (bench/counting.py: the law's)
                continue
            if r.state != state or abs(r.elapsed_seconds - elapsed) > 1e-6 or r.due_at != due:
                mismatches += 1

    n = len(data)
    per_case = min(engine_s, frozen_s) / n
    per_case_naive = naive_s / len(sample)
    print(f"engine: {n:,} cases x {clocks / n:.0f} clocks = {clocks:,} clock evaluations, one core")
    print(f"engine: {engine_s:.3f} s (default GC), {frozen_s:.3f} s (gc.freeze() after loading the cases)")
    print(
        f"engine: {per_case * 1e6:.2f} us/case, {per_case * n / clocks * 1e6:.2f} us/clock (best of the two)"
    )
    print(f"states: {dict(sorted((str(k), v) for k, v in states.items()))}")
    print(
        f"naive baseline (datetime, targets_for per case, minute stepping): "
        f"{len(sample)} cases, {naive_s:.3f} s"
    )
    print(f"naive baseline: {per_case_naive * 1e6:.0f} us/case, ~{per_case_naive * n:.0f} s for {n:,} cases")
    print(f"ratio naive/engine per case: {per_case_naive / per_case:.0f}x")
    print(f"cross-check on {len(sample)} cases: {mismatches} mismatching clocks")


if __name__ == "__main__":
    main()

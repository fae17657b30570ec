"""Clock and calendar behaviours an officer relies on (issue 19), each named for what the user sees.

24x7 cases use a 10-day target (warn at 7 days); business cases the agency's working hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from casebridge.workflows.calendars import DEFAULT_24X7, add_working_seconds, working_seconds_between
from casebridge.workflows.cases import StatusChange
from casebridge.workflows.clocks import evaluate_clock
from casebridge.workflows.model import Calendar, ClockKind, ClockState, ClockTarget
from tests.factories import make_case
from tests.test_clocks_properties import clock

H, D = 3600.0, 86400.0
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
TARGET = ClockTarget("c", 10 * D, 7 * D)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def evaluate(history: list[tuple[float, str]], now: float, *, kind: ClockKind = ClockKind.OPERATIONAL,
             submitted: float | None = 0.0, cal: Calendar = DEFAULT_24X7, target: ClockTarget = TARGET):  # fmt: skip
    case = make_case(submitted_at=None if submitted is None else at(submitted))
    changes = [StatusChange(at(s), state) for s, state in history]
    return evaluate_clock(clock(kind, cal.name), target, cal, case, changes, at(now))


@pytest.mark.parametrize("kind", [ClockKind.OPERATIONAL, ClockKind.LEGAL])
def test_a_clock_whose_start_field_lies_after_now_has_not_started(kind: ClockKind) -> None:
    # Entered "submitted" an hour ago, but the provider's receipt (submitted_at) is stamped in an hour.
    result = evaluate([(0, "submitted")], now=1 * H, kind=kind, submitted=2 * H)
    assert (result.state, result.started_at, result.due_at, result.remaining_seconds) == (
        ClockState.NOT_STARTED, None, None, None,
    )  # fmt: skip
    # Everything else a report shows for it: its kind and full target, nothing consumed, nothing overdue.
    assert (result.name, result.kind, result.target_seconds, result.target) == ("c", kind, 10 * D, TARGET)
    assert (result.elapsed_seconds, result.paused_seconds, result.overdue_seconds, result.cycle) == (0, 0, 0, 0)
    assert (result.warn_at, result.stopped_at) == (None, None)
    assert type(result.overdue_seconds) is float and type(result.target_seconds) is float
    started = evaluate([(0, "submitted")], now=2 * H, kind=kind, submitted=2 * H)
    assert started.state is ClockState.RUNNING and started.started_at == at(2 * H)


def test_a_start_field_later_than_the_next_status_change_counts_only_from_the_start_field() -> None:
    # submitted at 0, waiting on the requester 1 h -> 3 h, receipt stamped at 2 h: nothing before 2 h
    # counts, the pause counts only from 2 h, the clock runs from 3 h.
    history = [(0, "submitted"), (1 * H, "awaiting_requester"), (3 * H, "acknowledged")]
    result = evaluate(history, 5 * H, submitted=2 * H)
    assert (result.started_at, result.elapsed_seconds, result.paused_seconds) == (at(2 * H), 2 * H, 1 * H)
    assert result.due_at == at(3 * H + 10 * D)  # the whole target from the resume: nothing ran before it


def test_while_paused_there_is_no_due_instant_and_a_warning_already_reached_stays() -> None:
    before_warn = evaluate([(0, "submitted"), (2 * D, "awaiting_requester")], 9 * D)
    assert (before_warn.state, before_warn.due_at, before_warn.warn_at) == (ClockState.PAUSED, None, None)
    assert before_warn.remaining_seconds == 8 * D
    after_warn = evaluate([(0, "submitted"), (8 * D, "awaiting_requester")], 9 * D)
    assert (after_warn.state, after_warn.due_at, after_warn.warn_at) == (ClockState.PAUSED, None, at(7 * D))


def test_a_pause_that_begins_exactly_at_the_due_instant_is_not_a_breach_and_resuming_breaches_at_once() -> None:
    history = [(0, "submitted"), (10 * D, "awaiting_requester"), (12 * D, "acknowledged")]
    paused = evaluate(history, 11 * D)
    assert (paused.state, paused.remaining_seconds, paused.due_at) == (ClockState.PAUSED, 0.0, None)
    resumed = evaluate(history, 12 * D + 1)
    # Due moved forward by the two paused days; one second later it is breached by one second.
    assert (resumed.state, resumed.due_at, resumed.overdue_seconds) == (ClockState.BREACHED, at(12 * D), 1.0)


def test_several_pauses_in_one_history_all_move_the_due_instant() -> None:
    history = [(0, "submitted"), (1 * D, "awaiting_requester"), (2 * D, "acknowledged"),
               (3 * D, "awaiting_requester"), (5 * D, "acknowledged")]  # fmt: skip
    result = evaluate(history, 6 * D)
    assert (result.elapsed_seconds, result.paused_seconds, result.due_at) == (3 * D, 3 * D, at(13 * D))
    assert result.warn_at == at(10 * D)


def test_a_legal_clock_keeps_running_through_a_wait_on_the_requester() -> None:
    history = [(0, "submitted"), (1 * D, "awaiting_requester"), (3 * D, "acknowledged")]
    result = evaluate(history, 4 * D, kind=ClockKind.LEGAL)
    assert (result.kind, result.state) == (ClockKind.LEGAL, ClockState.RUNNING)  # reported as a legal deadline
    assert (result.elapsed_seconds, result.paused_seconds, result.due_at) == (4 * D, 0.0, at(10 * D))


def test_a_deadline_years_ahead_is_counted_past_the_holiday_table_built_so_far() -> None:
    # A fresh calendar (its own table): the first lookup builds only a year either side; a target of
    # about four working years must widen it, holidays of every year included.
    cal = Calendar("pk-long", "business", "Asia/Karachi", holidays_country="PK")
    start = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # Mon 09:00 PKT
    seconds = 1000 * 8 * H  # 1000 working days
    due = add_working_seconds(cal, start, seconds)
    assert datetime(2029, 12, 1, tzinfo=UTC) < due < datetime(2030, 6, 1, tzinfo=UTC)
    fresh = Calendar("pk-long-2", "business", "Asia/Karachi", holidays_country="PK")
    assert working_seconds_between(fresh, start, due) == pytest.approx(seconds, abs=1e-3)
    # Built year by year on a third calendar, the same due instant.
    stepwise = Calendar("pk-long-3", "business", "Asia/Karachi", holidays_country="PK")
    t = start
    for _ in range(10):
        t = add_working_seconds(stepwise, t, seconds / 10)
    assert t == due


def test_a_regional_holiday_moves_the_due_instant() -> None:
    # Patriots' Day (Mon 20 Apr 2026) is a holiday in Massachusetts, not federally.
    federal = Calendar("us", "business", "America/New_York", holidays_country="US")
    boston = Calendar("us-ma", "business", "America/New_York", holidays_country="US", holidays_subdiv="MA")
    start = datetime(2026, 4, 17, 9, 0, tzinfo=ZoneInfo("America/New_York"))  # Fri 09:00 EDT
    target = ClockTarget("c", 16 * H, 8 * H)
    history = [StatusChange(start, "submitted")]
    case = make_case(submitted_at=start)
    now = start + timedelta(hours=1)
    fed = evaluate_clock(clock(ClockKind.OPERATIONAL, "us"), target, federal, case, history, now)
    ma = evaluate_clock(clock(ClockKind.OPERATIONAL, "us-ma"), target, boston, case, history, now)
    ny = ZoneInfo("America/New_York")
    assert fed.due_at == datetime.combine(datetime(2026, 4, 20).date(), time(17), ny)
    assert ma.due_at == datetime.combine(datetime(2026, 4, 21).date(), time(17), ny)


def test_a_workflow_loaded_where_a_dead_one_lived_gets_its_own_clock_plan() -> None:
    """Plans are cached by id(workflow); CPython reuses the address of a collected object. A cached plan
    whose workflow is gone must never serve the new workflow at that address."""
    import gc
    import weakref

    from casebridge.workflows import clocks as engine
    from casebridge.workflows import load_workflow
    from casebridge.workflows.clocks import evaluate_case

    class Gone:
        pass

    gone = Gone()
    dead = weakref.ref(gone)
    del gone
    gc.collect()
    workflow = load_workflow("lawful-access")
    engine._PLANS[id(workflow)] = (dead, "the plan of a workflow that no longer exists")  # type: ignore[assignment]
    case = make_case(submitted_at=T0)
    results = evaluate_case(case, [StatusChange(T0, "submitted")], workflow, at(1 * H))
    assert results and all(r.started_at == T0 for r in results if r.state is ClockState.RUNNING)


def test_the_warning_instant_stays_where_it_was_reached_after_pauses() -> None:
    # Reached exactly at 7 d, then paused 7 d -> 8 d: the warning stays at 7 d (at risk since then).
    exact = evaluate([(0, "submitted"), (7 * D, "awaiting_requester"), (8 * D, "acknowledged")], 9 * D)
    assert (exact.state, exact.warn_at, exact.due_at) == (ClockState.AT_RISK, at(7 * D), at(11 * D))
    # Paused 1 d -> 2 d first: the warning is reached 6 d into the next stretch, at 8 d.
    later = evaluate([(0, "submitted"), (1 * D, "awaiting_requester"), (2 * D, "acknowledged")], 9 * D)
    assert (later.warn_at, later.due_at) == (at(8 * D), at(11 * D))


def test_on_a_business_calendar_the_warning_reached_overnight_counts_working_hours() -> None:
    pk = Calendar("agency", "business", "Asia/Karachi", holidays_country="PK")
    monday = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)  # Mon 09:00 PKT
    target = ClockTarget("c", 40 * H, 24 * H)
    case = make_case(submitted_at=monday)
    history = [StatusChange(monday, "submitted")]
    result = evaluate_clock(clock(ClockKind.OPERATIONAL, "agency"), target, pk, case, history,
                            datetime(2026, 11, 5, 7, 0, tzinfo=UTC))  # fmt: skip
    assert result.warn_at == datetime(2026, 11, 4, 12, 0, tzinfo=UTC)  # Wed 17:00 PKT: 3 working days
    assert result.due_at == datetime(2026, 11, 6, 12, 0, tzinfo=UTC)  # Fri 17:00 PKT

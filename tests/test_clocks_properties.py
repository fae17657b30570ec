"""Property tests for the clock engine and calendars (hypothesis).

The holiday property compares the bisect tables against a deliberately naive day-by-day reference built
with zoneinfo and the holidays package directly, so the two share no code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_pkg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from casebridge.workflows.calendars import DEFAULT_24X7, add_working_seconds, working_seconds_between
from casebridge.workflows.cases import StatusChange
from casebridge.workflows.clocks import evaluate_clock
from casebridge.workflows.model import Calendar, ClockDef, ClockKind, ClockState, ClockTarget
from tests.factories import make_case

H = 3600.0
D = 86400.0
BASE = datetime(2026, 1, 1, tzinfo=UTC)

PK = Calendar("agency", "business", "Asia/Karachi", holidays_country="PK")
NY = Calendar("ny", "business", "America/New_York", holidays_country="US")
LONDON = Calendar("london", "business", "Europe/London", holidays_country="GB", day_start=time(8, 30))
CALENDARS = [DEFAULT_24X7, PK, NY, LONDON]

OPEN = frozenset({"submitted", "acknowledged", "awaiting_requester", "partial", "escalated"})
ANSWERED = frozenset({"fulfilled", "refused", "redirected_mla", "withdrawn", "closed"})
STATES = ["draft", "submitted", "acknowledged", "awaiting_requester", "partial", "fulfilled", "withdrawn"]


def clock(kind: ClockKind, calendar: str, pause: bool = True) -> ClockDef:
    return ClockDef(
        "c",
        kind,
        calendar=calendar,
        start_on=OPEN,
        stop_on=ANSWERED,
        met_on=frozenset({"fulfilled"}),
        pause_in=frozenset({"awaiting_requester"}) if pause else frozenset(),
        start_field="submitted_at",
    )


TARGET = ClockTarget("c", 10 * D, 7 * D)
BUSINESS_TARGET = ClockTarget("c", 5 * 8 * H, 3 * 8 * H)

instants = st.floats(min_value=0, max_value=3 * 365 * D, allow_nan=False).map(lambda s: BASE + timedelta(seconds=s))
gaps = st.floats(min_value=0, max_value=6 * D, allow_nan=False)
histories = st.lists(st.tuples(gaps, st.sampled_from(STATES)), min_size=1, max_size=8)


def build_history(steps: list[tuple[float, str]], origin: datetime = BASE) -> list[StatusChange]:
    out, t = [], origin
    for gap, state in steps:
        t += timedelta(seconds=gap)
        out.append(StatusChange(t, state))
    return out


def naive_working_seconds(cal: Calendar, a: datetime, b: datetime) -> float:
    """Reference: walk local dates, skip weekends and holidays, intersect each working day with [a, b)."""
    tz = ZoneInfo(cal.timezone)
    hol = holidays_pkg.country_holidays(cal.holidays_country, years=range(a.year - 1, b.year + 2))
    total, day = 0.0, a.astimezone(tz).date() - timedelta(days=1)
    while day <= b.astimezone(tz).date():
        if day.weekday() in cal.working_days and day not in hol:
            lo = max(datetime.combine(day, cal.day_start, tz), a)
            hi = min(datetime.combine(day, cal.day_end, tz), b)
            total += max(0.0, (hi - lo).total_seconds())
        day += timedelta(days=1)
    return total


# ------------------------------------------------------------------------------------------ calendars
@given(st.sampled_from(CALENDARS), instants, st.floats(min_value=0, max_value=400 * 8 * H, allow_nan=False))
def test_add_then_between_is_identity(cal: Calendar, a: datetime, seconds: float) -> None:
    due = add_working_seconds(cal, a, seconds)
    assert due >= a
    assert abs(working_seconds_between(cal, a, due) - seconds) < 1e-3


@given(st.sampled_from(CALENDARS), instants, instants)
def test_between_then_add_lands_at_or_before(cal: Calendar, a: datetime, b: datetime) -> None:
    a, b = min(a, b), max(a, b)
    worked = working_seconds_between(cal, a, b)
    back = add_working_seconds(cal, a, worked)
    # The earliest instant with that much work done: b itself, or the last closing before b.
    assert back <= b + timedelta(microseconds=1)
    assert abs(working_seconds_between(cal, back, b)) < 1e-3


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([PK, NY, LONDON]), instants, st.floats(min_value=0, max_value=40 * D, allow_nan=False))
def test_business_seconds_match_naive_reference_and_skip_holidays(cal: Calendar, a: datetime, span: float) -> None:
    b = a + timedelta(seconds=span)
    assert abs(working_seconds_between(cal, a, b) - naive_working_seconds(cal, a, b)) < 1e-3


@given(st.sampled_from([PK, NY]), st.integers(min_value=2026, max_value=2028), st.data())
def test_a_holiday_never_counts(cal: Calendar, year: int, data: st.DataObject) -> None:
    hol = sorted(holidays_pkg.country_holidays(cal.holidays_country, years=year))
    day: date = data.draw(st.sampled_from(hol))
    tz = ZoneInfo(cal.timezone)
    start = datetime.combine(day, time(0), tz)
    assert working_seconds_between(cal, start, start + timedelta(days=1)) == 0.0
    # A clock running only during the holiday consumes nothing.
    history = [StatusChange(start, "submitted"), StatusChange(start + timedelta(hours=23), "withdrawn")]
    case = make_case(submitted_at=start)
    result = evaluate_clock(clock(ClockKind.OPERATIONAL, cal.name), BUSINESS_TARGET, cal, case, history, start)
    assert result.elapsed_seconds == 0.0


# --------------------------------------------------------------------------------------------- clocks
@given(
    st.sampled_from(CALENDARS),
    # Whole seconds: timedelta rounds to microseconds, which could put the resume after `now`.
    st.integers(min_value=0, max_value=20 * 86400),
    st.integers(min_value=0, max_value=20 * 86400),
    st.integers(min_value=0, max_value=20 * 86400),
    st.integers(min_value=0, max_value=20 * 86400),
)
def test_due_never_earlier_when_pauses_grow(
    cal: Calendar, run_before: int, pause: int, extra_pause: int, run_after: int
) -> None:
    def due_with(pause_seconds: int) -> datetime | None:
        p0 = BASE + timedelta(seconds=run_before)
        p1 = p0 + timedelta(seconds=pause_seconds)
        history = [
            StatusChange(BASE, "submitted"),
            StatusChange(p0, "awaiting_requester"),
            StatusChange(p1, "acknowledged"),
        ]
        now = BASE + timedelta(seconds=run_before + pause + extra_pause + run_after)
        tgt = TARGET if cal.kind == "24x7" else BUSINESS_TARGET
        result = evaluate_clock(
            clock(ClockKind.OPERATIONAL, cal.name), tgt, cal, make_case(submitted_at=BASE), history, now
        )
        assert result.due_at is not None  # resumed before now: running (or breached with a historical due)
        return result.due_at

    assert due_with(pause + extra_pause) >= due_with(pause)


@given(st.sampled_from(CALENDARS), histories, st.floats(min_value=0, max_value=40 * D))
# Issue 19 (seeds 17 and 30): the target is reached exactly at Friday's close (Karachi), the case then
# waits on the requester until Monday 09:00:01; the second of working time paused on Monday moves the
# due instant to the resume (it stayed on Friday, one working second before now).
@example(
    PK,
    [(0.0, "awaiting_requester"), (216000.0, "draft"), (518400.0, "awaiting_requester"), (230401.0, "draft")],
    0.0,
)
def test_running_elapsed_plus_remaining_is_target_and_due_is_consistent(
    cal: Calendar, steps: list[tuple[float, str]], after: float
) -> None:
    history = build_history(steps)
    now = history[-1].at + timedelta(seconds=after)
    tgt = TARGET if cal.kind == "24x7" else BUSINESS_TARGET
    result = evaluate_clock(
        clock(ClockKind.OPERATIONAL, cal.name), tgt, cal, make_case(submitted_at=BASE), history, now
    )
    if result.state in (ClockState.RUNNING, ClockState.AT_RISK):
        assert abs(result.elapsed_seconds + result.remaining_seconds - result.target_seconds) < 1e-6
        assert result.due_at is not None
        if result.remaining_seconds > 0:
            # (At exactly 0 on a business calendar, due may be the last closing instant before now.)
            assert result.due_at >= now - timedelta(microseconds=1)
        # The due time is exactly `remaining` clock seconds ahead.
        assert abs(working_seconds_between(cal, now, result.due_at) - result.remaining_seconds) < 1e-3
        assert (result.state is ClockState.AT_RISK) == (result.elapsed_seconds >= tgt.warn)
    if result.state is ClockState.PAUSED:
        # No projection while paused; only a due instant already reached (elapsed == target) stays.
        assert result.due_at is None or result.remaining_seconds <= 0
    if result.state is ClockState.NOT_STARTED:
        assert result.elapsed_seconds == 0.0 and result.remaining_seconds is None


@given(st.sampled_from(CALENDARS), histories, st.floats(min_value=0, max_value=40 * D))
def test_legal_clocks_ignore_pauses(cal: Calendar, steps: list[tuple[float, str]], after: float) -> None:
    history = build_history(steps)
    now = history[-1].at + timedelta(seconds=after)
    case = make_case(submitted_at=BASE)
    told_to_pause = evaluate_clock(clock(ClockKind.LEGAL, cal.name, pause=True), TARGET, cal, case, history, now)
    plain = evaluate_clock(clock(ClockKind.LEGAL, cal.name, pause=False), TARGET, cal, case, history, now)
    assert told_to_pause == plain
    assert told_to_pause.state is not ClockState.PAUSED and told_to_pause.paused_seconds == 0.0
    if told_to_pause.state in (ClockState.RUNNING, ClockState.AT_RISK, ClockState.BREACHED):
        # Never paused: elapsed is all the clock time from the start to the stop (or now).
        end = told_to_pause.stopped_at or now
        expected = working_seconds_between(cal, told_to_pause.started_at, end)
        assert abs(told_to_pause.elapsed_seconds - expected) < 1e-3


@given(histories, st.floats(min_value=0, max_value=40 * D), st.floats(min_value=1, max_value=30 * D))
def test_policy_change_keeps_history_derived_pause(steps: list[tuple[float, str]], after: float, other: float) -> None:
    history = build_history(steps)
    now = history[-1].at + timedelta(seconds=after)
    c = clock(ClockKind.OPERATIONAL, "24x7")
    case = make_case(submitted_at=BASE)
    first = evaluate_clock(c, TARGET, DEFAULT_24X7, case, history, now)
    second = evaluate_clock(c, ClockTarget("c", other, other / 2), DEFAULT_24X7, case, history, now)
    assert (first.paused_seconds, first.elapsed_seconds, first.cycle) == (
        second.paused_seconds,
        second.elapsed_seconds,
        second.cycle,
    )


def test_a_target_reached_exactly_then_paused_moves_the_due_instant_on_resume() -> None:
    """Reaching the target exactly is not a breach: working time spent paused afterwards extends it."""
    friday_close = datetime(2026, 1, 9, 12, 0, tzinfo=UTC)  # 17:00 PKT, 40 working hours after Sat 3 Jan
    resume = datetime(2026, 1, 12, 4, 0, 1, tzinfo=UTC)  # Mon 09:00:01 PKT: one working second paused
    history = [
        StatusChange(BASE, "awaiting_requester"),
        StatusChange(datetime(2026, 1, 3, 12, 0, tzinfo=UTC), "draft"),
        StatusChange(friday_close, "awaiting_requester"),
        StatusChange(resume, "draft"),
    ]
    c = clock(ClockKind.OPERATIONAL, PK.name)
    case = make_case(submitted_at=BASE)
    at_resume = evaluate_clock(c, BUSINESS_TARGET, PK, case, history, resume)
    assert (at_resume.state, at_resume.remaining_seconds, at_resume.due_at) == (ClockState.AT_RISK, 0.0, resume)
    one_later = evaluate_clock(c, BUSINESS_TARGET, PK, case, history, resume + timedelta(seconds=1))
    # One more working second breaches it, and the overdue time counts from the resume, not from Friday.
    assert (one_later.state, one_later.due_at, one_later.overdue_seconds) == (ClockState.BREACHED, resume, 1.0)

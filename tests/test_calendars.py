"""Business calendars: working seconds, DST switch dates, holidays, closed/open dates, lazy tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casebridge.errors import WorkflowError
from casebridge.workflows.calendars import (
    DEFAULT_24X7,
    BusinessTimeline,
    Timeline,
    add_working_seconds,
    calendar_named,
    timeline_for,
    working_seconds_between,
)
from casebridge.workflows.model import Calendar, Workflow

H = 3600.0
D = 24 * H
_BASE_E = datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp()  # a Monday morning
NY_TZ = ZoneInfo("America/New_York")
LON_TZ = ZoneInfo("Europe/London")
PK_TZ = ZoneInfo("Asia/Karachi")

PK = Calendar("agency", "business", "Asia/Karachi", holidays_country="PK")
US = Calendar("us", "business", "America/New_York", holidays_country="US")
# Every day 00:30-03:30 local: the DST switches of New York (02:00) and London (01:00) fall inside.
NIGHT_NY = Calendar("night-ny", "business", "America/New_York", frozenset(range(7)), time(0, 30), time(3, 30))
NIGHT_LON = Calendar("night-lon", "business", "Europe/London", frozenset(range(7)), time(0, 30), time(3, 30))


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, tz=UTC) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=tz)


def day_span(cal: Calendar, day: date, tz: ZoneInfo) -> float:
    """Working seconds in one whole local day."""
    start = datetime.combine(day, time(0), tz)
    return working_seconds_between(cal, start, datetime.combine(day + timedelta(days=1), time(0), tz))


@pytest.mark.parametrize(
    ("cal", "tz", "day", "hours"),
    [
        # 00:30 EST (05:30Z) -> 03:30 EDT (07:30Z): the skipped hour makes the working day 2 h.
        (NIGHT_NY, NY_TZ, date(2026, 3, 8), 2.0),
        # 00:30 EDT (04:30Z) -> 03:30 EST (08:30Z): the repeated hour makes it 4 h.
        (NIGHT_NY, NY_TZ, date(2026, 11, 1), 4.0),
        (NIGHT_NY, NY_TZ, date(2026, 3, 7), 3.0),  # the day before: normal
        # London: 00:30 GMT (00:30Z) -> 03:30 BST (02:30Z) = 2 h; 00:30 BST (23:30Z) -> 03:30 GMT = 4 h.
        (NIGHT_LON, LON_TZ, date(2026, 3, 29), 2.0),
        (NIGHT_LON, LON_TZ, date(2026, 10, 25), 4.0),
        (NIGHT_LON, LON_TZ, date(2026, 10, 26), 3.0),
        # A 09:00-17:00 calendar is untouched by a switch at night (US switch week, Monday): 8 h.
        (US, NY_TZ, date(2026, 3, 9), 8.0),
    ],
)
def test_dst_switch_day_lengths(cal: Calendar, tz: ZoneInfo, day: date, hours: float) -> None:
    assert day_span(cal, day, tz) == pytest.approx(hours * H)


def test_business_hours_follow_local_time_across_dst() -> None:
    # Mon 9 Mar 2026 (EDT, UTC-4): the working day is 13:00Z-21:00Z; the Friday before (EST) 14:00Z-22:00Z.
    assert working_seconds_between(US, at(2026, 3, 9, 13), at(2026, 3, 9, 21)) == 8 * H
    assert working_seconds_between(US, at(2026, 3, 6, 13), at(2026, 3, 6, 14)) == 0.0
    assert add_working_seconds(US, at(2026, 3, 6, 21), 2 * H) == at(2026, 3, 9, 14)


def test_holidays_count_zero_and_weekends_too() -> None:
    # Pakistan: Eid al-Fitr Fri 20 Mar 2026, Pakistan Day Mon 23 Mar; 21-22 Mar is a weekend.
    for day in (date(2026, 3, 20), date(2026, 3, 21), date(2026, 3, 22), date(2026, 3, 23)):
        assert day_span(PK, day, PK_TZ) == 0.0, day
    assert day_span(PK, date(2026, 3, 24), PK_TZ) == 8 * H
    # US Thanksgiving Thu 26 Nov 2026.
    assert day_span(US, date(2026, 11, 26), NY_TZ) == 0.0
    assert day_span(US, date(2026, 11, 27), NY_TZ) == 8 * H


def test_closed_and_open_dates() -> None:
    cal = Calendar(
        "custom",
        "business",
        "Asia/Karachi",
        holidays_country="PK",
        closed_dates=frozenset({date(2026, 3, 24)}),  # a Tuesday closed by the agency
        open_dates=frozenset({date(2026, 3, 21), date(2026, 3, 23)}),  # a Saturday and a holiday opened
    )
    assert day_span(cal, date(2026, 3, 24), PK_TZ) == 0.0
    assert day_span(cal, date(2026, 3, 21), PK_TZ) == 8 * H
    assert day_span(cal, date(2026, 3, 23), PK_TZ) == 8 * H
    assert day_span(cal, date(2026, 3, 20), PK_TZ) == 0.0  # Eid stays closed


def test_add_lands_on_close_and_zero_is_start() -> None:
    mon_open = datetime(2026, 11, 2, 9, tzinfo=PK_TZ)
    assert add_working_seconds(PK, mon_open, 8 * H) == datetime(2026, 11, 2, 17, tzinfo=PK_TZ)
    assert add_working_seconds(PK, mon_open, 8 * H + 1) == datetime(2026, 11, 3, 9, 0, 1, tzinfo=PK_TZ)
    saturday = datetime(2026, 11, 7, 12, tzinfo=PK_TZ)
    assert add_working_seconds(PK, saturday, 0) == saturday
    # From a weekend, the first working second follows the next opening: Mon 9 Nov is Iqbal Day, so
    # that is Tue 10 Nov 09:00.
    assert add_working_seconds(PK, saturday, 1) == datetime(2026, 11, 10, 9, 0, 1, tzinfo=PK_TZ)


def test_negative_add_goes_back() -> None:
    tue = datetime(2026, 11, 3, 10, tzinfo=PK_TZ)
    back = add_working_seconds(PK, tue, -2 * H)  # 1 h on Tue, 1 h on Mon -> Mon 16:00
    assert back == datetime(2026, 11, 2, 16, tzinfo=PK_TZ)


def test_24x7_counts_real_seconds_across_dst() -> None:
    a = datetime(2026, 3, 7, 12, tzinfo=NY_TZ)
    b = datetime(2026, 3, 8, 12, tzinfo=NY_TZ)  # 23 real hours (wall clock says 24)
    assert working_seconds_between(DEFAULT_24X7, a, b) == 23 * H
    assert add_working_seconds(DEFAULT_24X7, a, 24 * H) == datetime(2026, 3, 8, 13, tzinfo=NY_TZ)


def test_tables_grow_lazily_in_both_directions() -> None:
    cal = Calendar("growth", "business", "Europe/London", holidays_country="GB")
    timeline = timeline_for(cal)
    assert isinstance(timeline, BusinessTimeline)
    # 2026 and 2035 and 1999 in one timeline: results must match a fresh timeline built for each.
    for year in (2026, 2035, 1999):
        start = datetime(year, 6, 1, 12, tzinfo=LON_TZ).timestamp()
        end = datetime(year, 6, 30, 12, tzinfo=LON_TZ).timestamp()
        assert timeline.between(start, end) == BusinessTimeline(cal).between(start, end)
    # 600 working days (~2.4 years) from 2026 builds ahead as needed and inverts exactly.
    a = datetime(2026, 1, 5, 9, tzinfo=LON_TZ)
    due = add_working_seconds(cal, a, 600 * 8 * H)
    assert due.year in (2028, 2029)
    assert working_seconds_between(cal, a, due) == pytest.approx(600 * 8 * H)


def test_timelines_are_cached_per_calendar() -> None:
    assert timeline_for(PK) is timeline_for(Calendar("agency", "business", "Asia/Karachi", holidays_country="PK"))
    assert not isinstance(timeline_for(DEFAULT_24X7), BusinessTimeline)


def test_misconfigured_calendars_raise_workflow_errors() -> None:
    with pytest.raises(WorkflowError, match="hours"):
        timeline_for(Calendar("bad", "business", "UTC", day_start=time(17), day_end=time(9)))
    never = Calendar("never", "business", "UTC", working_days=frozenset())
    assert working_seconds_between(never, at(2026, 1, 1), at(2026, 2, 1)) == 0.0
    with pytest.raises(WorkflowError, match="no working time"):
        add_working_seconds(never, at(2026, 1, 1), 1.0)


def test_calendar_named_knows_implicit_24x7() -> None:
    wf = Workflow("w", "draft", {}, (), {"agency": PK}, {}, ())
    assert calendar_named(wf, "24x7").kind == "24x7"
    assert calendar_named(wf, "agency") is PK
    with pytest.raises(WorkflowError, match="'office' is not defined"):
        calendar_named(wf, "office")


# -- stretches (the clock engine's one-span path) -------------------------------------------------------


@given(
    st.floats(min_value=-365 * D, max_value=2 * 365 * D),
    st.floats(min_value=0, max_value=60 * D),
    st.floats(min_value=-1 * D, max_value=30 * D),
    st.floats(min_value=-1 * D, max_value=30 * D),
)
def test_a_24x7_stretch_is_between_and_add_too(start: float, length: float, target: float, warn: float) -> None:
    # the plain timeline answers the same question as the business one, without a table: every second
    # counts, an amount <= 0 lands on the start
    timeline = Timeline()
    a = _BASE_E + start
    b = a + length
    assert timeline.stretch(a, b, target, warn) == (
        b - a,
        a if target <= 0 else a + target,
        a if warn <= 0 else a + warn,
    )


@given(st.floats(min_value=-3 * 365 * D, max_value=3 * 365 * D), st.floats(min_value=0, max_value=400 * D))
def test_stretch_agrees_when_the_table_must_grow_first(start: float, length: float) -> None:
    # a fresh timeline (no table yet) and one already covering the span give the same figures: the
    # lookup path and the growing path agree, also across years and before the first table year
    fresh, warm = BusinessTimeline(PK), BusinessTimeline(PK)
    a = _BASE_E + start
    b = a + length
    warm.between(a - 400 * D, b + 400 * D)  # the table covers everything below
    assert fresh.stretch(a, b, 8 * H, 2 * H) == warm.stretch(a, b, 8 * H, 2 * H)
    assert fresh.stretch(a, b, 8 * H, 2 * H) == (warm.between(a, b), warm.add(a, 8 * H), warm.add(a, 2 * H))


def test_counting_from_inside_the_first_working_day_of_a_fresh_table() -> None:
    # The per-day table starts with the first working day of the first year it covers; working time
    # counted from inside that very day must count from the start, not from the day's opening.
    jan1 = datetime(2027, 1, 1, tzinfo=PK_TZ).timestamp()
    first_open = BusinessTimeline(PK).add(jan1, 1) - 1  # 1 working second after the first opening
    start = first_open + 1 * H  # 10:00 on that day
    assert BusinessTimeline(PK).add(start, 2 * H) == start + 2 * H
    assert BusinessTimeline(PK).between(first_open, start) == 1 * H
    assert BusinessTimeline(PK).stretch(start, start + 1 * H, 2 * H, 0.5 * H) == (1 * H, start + 2 * H, start + 0.5 * H)

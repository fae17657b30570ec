"""Business calendars at the edges of their lazily built tables: instants at the start of a table built for
a later year, periods longer than the table built so far (forwards and backwards), amounts too small to
count, the limit of a misconfigured calendar, and what a build logs."""

from __future__ import annotations

import logging
import time as time_module
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from casebridge.errors import WorkflowError
from casebridge.workflows.calendars import BusinessTimeline, calendar_named
from casebridge.workflows.model import Calendar, Workflow

H = 3600.0
BERLIN_TZ = ZoneInfo("Europe/Berlin")
LA_TZ = ZoneInfo("America/Los_Angeles")
# Germany, national holidays: 1 Jan 2025 is New Year, so Thu 2 Jan 2025 is the year's first working day.
BERLIN = Calendar("berlin", "business", "Europe/Berlin", holidays_country="DE")
# No holidays, open until 20:00 in a zone eight hours behind UTC: Wed 1 Jan 2025's working hours run
# past midnight UTC (17:00 UTC to 04:00 UTC on 2 Jan).
LA_LATE = Calendar("la-late", "business", "America/Los_Angeles", day_start=time(9), day_end=time(20))
PLAIN = Calendar("plain", "business", "UTC")  # Mon-Fri 09:00-17:00 UTC, no holidays


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN_TZ).timestamp()


def table_built_for_2026(cal: Calendar) -> BusinessTimeline:
    """A timeline whose table was built for an instant in mid-2026: it covers 2025-2027, so the first
    working days of 2025 are the first days of the table."""
    timeline = BusinessTimeline(cal)
    mid = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()
    assert timeline.between(mid, mid + H) >= 0
    return timeline


def test_an_instant_in_the_first_working_day_of_a_table_built_for_a_later_year() -> None:
    timeline = table_built_for_2026(BERLIN)
    ten, noon = berlin(2025, 1, 2, 10), berlin(2025, 1, 2, 12)
    assert timeline.between(ten, noon) == 2 * H
    assert timeline.add(ten, 1 * H) == berlin(2025, 1, 2, 11)
    assert timeline.stretch(ten, noon, 1 * H, 0.5 * H) == (2 * H, berlin(2025, 1, 2, 11), berlin(2025, 1, 2, 10, 30))
    # landing in the first day of the table, from before its opening
    early = berlin(2025, 1, 2, 7)
    assert timeline.stretch(early, early + 0.5 * H, 3 * H, 1 * H) == (0.0, berlin(2025, 1, 2, 12), ten)


def test_an_instant_before_the_first_opening_of_a_table_built_for_a_later_year() -> None:
    # 07:00 on 2 Jan 2025 is inside the table (it covers from 2 Jan 00:00 UTC) but before its first opening
    timeline = table_built_for_2026(BERLIN)
    early, noon = berlin(2025, 1, 2, 7), berlin(2025, 1, 2, 12)
    assert timeline.between(early, noon) == 3 * H
    assert timeline.between(noon, early) == -3 * H
    assert timeline.add(early, 1 * H) == berlin(2025, 1, 2, 10)
    assert timeline.stretch(early, noon, 1 * H, 0.5 * H) == (3 * H, berlin(2025, 1, 2, 10), berlin(2025, 1, 2, 9, 30))
    assert timeline.stretch(early, early + 1 * H, 1 * H, 0.5 * H) == (
        0.0,
        berlin(2025, 1, 2, 10),
        berlin(2025, 1, 2, 9, 30),
    )


def test_working_hours_of_the_first_local_day_of_a_table_that_run_past_midnight_utc() -> None:
    # 2 Jan 2025 01:00-03:00 UTC is 1 Jan 17:00-19:00 in Los Angeles: working time on the table's first day
    timeline = table_built_for_2026(LA_LATE)
    a = datetime(2025, 1, 2, 1, tzinfo=UTC).timestamp()
    b = datetime(2025, 1, 2, 3, tzinfo=UTC).timestamp()
    assert timeline.between(a, b) == 2 * H
    assert timeline.add(a, 1 * H) == datetime(2025, 1, 1, 18, tzinfo=LA_TZ).timestamp()


def test_a_due_instant_further_ahead_than_the_table_built_so_far() -> None:
    # A stretch inside the table whose target lies years beyond it: the table grows, and the due instant
    # is exactly the target's working time after the start.
    timeline = table_built_for_2026(BERLIN)
    start = berlin(2026, 6, 1, 10)
    target = 4 * 250 * 8 * H  # about four working years: past the end of 2027
    elapsed, due, warn = timeline.stretch(start, start + 1 * H, target, 2 * H)
    assert (elapsed, warn) == (1 * H, berlin(2026, 6, 1, 12))
    assert datetime.fromtimestamp(due, BERLIN_TZ).year == 2030
    check = BusinessTimeline(BERLIN)
    assert check.between(start, due) == target
    assert check.between(start, due - 1) < target


def test_a_running_stretch_that_ends_beyond_the_table_built_so_far() -> None:
    timeline = table_built_for_2026(BERLIN)
    start, end = berlin(2026, 6, 1, 10), berlin(2030, 3, 1, 10)
    elapsed, due, warn = timeline.stretch(start, end, 8 * H, 1 * H)
    assert elapsed == BusinessTimeline(BERLIN).between(start, end)
    assert elapsed > 3 * 250 * 8 * H
    assert (due, warn) == (berlin(2026, 6, 2, 10), berlin(2026, 6, 1, 11))


def test_counting_back_further_than_the_table_built_so_far() -> None:
    # From mid-2026 (table 2025-2027) back about four working years, into 2022: the table is built further
    # back; the answer is what a table that already covered those years gives.
    timeline = table_built_for_2026(BERLIN)
    start = berlin(2026, 6, 1, 12)
    back = -4 * 250 * 8 * H
    landed = timeline.add(start, back)
    assert datetime.fromtimestamp(landed, BERLIN_TZ).year == 2022
    wide = BusinessTimeline(BERLIN)
    assert wide.between(berlin(2019, 1, 10), start) > 0  # covers 2018-2027 without growing
    assert landed == wide.add(start, back)
    assert wide.between(landed, start) == -back


def test_counting_back_to_exactly_the_first_opening_of_the_table_gives_the_previous_close() -> None:
    # 2 h back from 11:00 on the table's first working day reaches its 09:00 opening: the earliest instant
    # with that working time is the close of the working day before it, Tue 31 Dec 2024 17:00.
    timeline = table_built_for_2026(BERLIN)
    assert timeline.add(berlin(2025, 1, 2, 11), -2 * H) == berlin(2024, 12, 31, 17)


def test_one_working_second_or_less_moves_the_due_instant() -> None:
    timeline = table_built_for_2026(BERLIN)
    start = berlin(2026, 6, 1, 10)
    assert timeline.stretch(start, start + H, 1.0, 0.5) == (H, start + 1.0, start + 0.5)
    assert timeline.add(start, 0.5) == start + 0.5


def test_an_amount_too_small_to_count_never_lands_before_the_start() -> None:
    # From a Saturday, 1e-10 s is lost in the float sum of the working time so far (about 1.3e7 s): the
    # instant with that working time is the Friday's close, but a due instant never lies before its start.
    timeline = table_built_for_2026(BERLIN)
    saturday = berlin(2026, 6, 6, 12)
    elapsed, due, warn = timeline.stretch(saturday, saturday + H, 1e-10, 1e-10)
    assert elapsed == 0.0
    assert due >= saturday
    assert warn >= saturday
    assert timeline.add(saturday, 1e-10) >= saturday


def test_a_business_day_of_no_length_is_refused() -> None:
    with pytest.raises(WorkflowError, match=r"calendars\.empty\.hours <- day end 09:00:00 must be after"):
        BusinessTimeline(Calendar("empty", "business", "UTC", day_start=time(9), day_end=time(9)))


def test_a_calendar_without_working_time_is_refused_naming_the_calendar_and_what_to_check() -> None:
    # Looking ahead for working time gives up when the table would span more than 200 years.
    never = Calendar("never", "business", "UTC", working_days=frozenset())
    a = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    message = (
        r"^calendars\.never <- no working time found within 200 years "
        r"\(check working_days, hours and closed dates\)$"
    )
    with pytest.raises(WorkflowError, match=message):
        BusinessTimeline(never).add(a, 1.0)


def test_building_a_table_logs_the_calendar_years_and_working_days(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="casebridge.workflows.calendars")
    table_built_for_2026(PLAIN)
    days = sum(
        1 for n in range((date(2028, 1, 1) - date(2025, 1, 1)).days) if (date(2025, 1, 1) + timedelta(n)).weekday() < 5
    )
    assert [r.getMessage() for r in caplog.records] == [f"calendar plain: built {days} working days for 2025-2027"]


def test_an_unknown_calendar_names_the_workflow_file_and_the_known_calendars() -> None:
    cal = Calendar("agency", "business", "Asia/Karachi")
    wf = Workflow("w", "draft", {}, (), {"agency": cal, "office": cal}, {}, ())
    with pytest.raises(WorkflowError, match=r"^w: calendar 'court' is not defined \(known: 24x7, agency, office\)$"):
        calendar_named(wf, "court")
    wf.source_path = "flows/ncb.toml"
    with pytest.raises(WorkflowError, match=r"^flows/ncb\.toml: calendar 'court' is not defined \(known: 24x7, "):
        calendar_named(wf, "court")


def test_the_table_bounds_do_not_depend_on_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a machine at UTC+14 (Kiritimati), a calendar at UTC-11 (Pago Pago) working 00:00-23:59 every day:
    # 1 Jan 2025 10:00-12:00 UTC is 31 Dec 2024 23:00 to 1 Jan 01:00 local, 59 + 60 working minutes, on
    # both sides of the start of a table built for 2026 (it covers local 2025-2027).
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time_module.tzset()
    try:
        samoa = Calendar("samoa", "business", "Pacific/Pago_Pago", frozenset(range(7)), time(0), time(23, 59))
        timeline = table_built_for_2026(samoa)
        a = datetime(2025, 1, 1, 10, tzinfo=UTC).timestamp()
        assert timeline.between(a, a + 2 * H) == 2 * H - 60
    finally:
        monkeypatch.undo()
        time_module.tzset()


def test_a_case_dated_centuries_away_does_not_spoil_the_timeline_for_the_cases_after_it() -> None:
    # a case entered in 1800 (older versions let one in) is asked about first; the timeline is shared by
    # every case of a run, so the next case, in 2026, must get the answer a fresh timeline gives
    shared, fresh = BusinessTimeline(PLAIN), BusinessTimeline(PLAIN)
    old = datetime(1800, 1, 6, 9, tzinfo=UTC).timestamp()
    assert shared.between(old, old + 8 * H) == 8 * H
    start = datetime(2026, 11, 2, 9, tzinfo=UTC).timestamp()  # a Monday
    assert shared.add(start, 10 * H) == fresh.add(start, 10 * H)
    assert shared.between(start, start + 3 * 24 * H) == fresh.between(start, start + 3 * 24 * H) == 24 * H
    # one question spanning centuries still fails, and says so (not "no working time found")
    message = r"^calendars\.plain <- cannot count working time from 1800 to 2026: more than 200 years apart "
    with pytest.raises(WorkflowError, match=message + r"\(check the case's dates\)$"):
        shared.between(old, start)

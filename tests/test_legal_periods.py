"""Legal periods counted under Reg. (EEC, Euratom) No 1182/71 Art. 3, each figure with its arithmetic.

Ireland (Europe/Dublin) is the place of the large US platforms' EU establishments. Irish public holidays
2027 (the ``holidays`` package): May bank holiday Mon 3 May, October bank holiday Mon 25 Oct. Irish
summer time (UTC+1) ends Sun 31 Oct 2027 at 02:00 local.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casebridge.workflows.legal_periods import ELAPSED, EU_1182_71, Place, describe, due, parse_period, place_of

IRELAND = place_of("IE", "Europe/Dublin")
IRELAND_ZONE = ZoneInfo("Europe/Dublin")


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("rule", "event", "period", "expected", "arithmetic"),
    [
        (
            EU_1182_71,
            "2027-05-14T13:45Z",
            "8h",
            "2027-05-14T22:00Z",
            "14:45 Dublin; the hour of the event is not counted: 8 h run from 15:00 (14:00Z) to 23:00 (22:00Z)",
        ),
        (
            EU_1182_71,
            "2027-04-23T11:00Z",
            "10d",
            "2027-05-04T23:00Z",
            "Fri 23 Apr 12:00 Dublin; day 1 = Sat 24 Apr, day 10 = Mon 3 May, the May bank holiday -> "
            "the following working day Tue 4 May ends at 24:00 IST = 23:00Z",
        ),
        (
            EU_1182_71,
            "2027-10-20T09:00Z",
            "10d",
            "2027-11-02T00:00Z",
            "Wed 20 Oct; day 10 = Sat 30 Oct -> Mon 1 Nov (a working day; the bank holiday was 25 Oct); "
            "summer time ended 31 Oct, so 24:00 on 1 Nov is 00:00Z on 2 Nov",
        ),
        (ELAPSED, "2027-04-23T11:00Z", "90d", "2027-07-22T11:00Z", "2703(f): exactly 90 x 24 h"),
    ],
)
def test_golden(rule: str, event: str, period: str, expected: str, arithmetic: str) -> None:
    assert due(rule, z(event), period, IRELAND) == z(expected), arithmetic


def test_the_event_day_is_the_places_day() -> None:
    # Tue 1 Jun 2027 23:30Z is 00:30 on Wed 2 Jun in Dublin (UTC+1): the event's day is 2 Jun.
    # 3 days: day 1 = Thu 3 Jun, day 3 = Sat 5 Jun -> the following working day; Mon 7 Jun 2027 is the
    # June bank holiday -> Tue 8 Jun, ending at 24:00 IST = 2027-06-08T23:00Z.
    assert due(EU_1182_71, z("2027-06-01T23:30Z"), "3d", IRELAND) == z("2027-06-08T23:00Z")
    # counted on UTC's day instead (1 Jun), day 3 would be Fri 4 Jun: the place decides
    utc = Place(zone="UTC", is_holiday=lambda _d: False)
    assert due(EU_1182_71, z("2027-06-01T23:30Z"), "3d", utc) == z("2027-06-05T00:00Z")


def test_months_end_on_the_same_date_or_the_months_last_day() -> None:
    # Art. 3(2)(c): 31 Jan + 1 month -> 28 Feb 2027 (no 31 Feb), a Sunday -> Mon 1 Mar, 24:00 GMT
    assert due(EU_1182_71, z("2027-01-31T10:00Z"), "1mo", IRELAND) == z("2027-03-02T00:00Z")


def test_two_days_include_two_working_days() -> None:
    # Art. 3(5): Fri 26 Mar 2027, 2 days: day 1 = Sat 27, day 2 = Sun 28 -> Art. 3(4): Mon 29 is Easter
    # Monday -> Tue 30. Working days in the period: Tue 30 only -> one more working day: Wed 31 Mar.
    # Ends 24:00 IST (summer time from 28 Mar) on Wed 31 Mar = 2027-03-31T23:00Z.
    assert due(EU_1182_71, z("2027-03-26T10:00Z"), "2d", IRELAND) == z("2027-03-31T23:00Z")
    # Thu 23 Dec 2027, 2 days: day 2 = Sat 25 (Christmas) -> Sun 26 (St Stephen's) -> Mon 27, a working
    # day in the holidays package's Irish calendar; working days Fri 24 and Mon 27: two. 24:00 GMT Mon 27.
    assert due(EU_1182_71, z("2027-12-23T10:00Z"), "2d", IRELAND) == z("2027-12-28T00:00Z")


def test_describe_states_the_rule() -> None:
    text = describe(EU_1182_71, z("2027-05-04T23:00Z"), IRELAND)
    assert text == "due 2027-05-04 24:00 Europe/Dublin, counted under Reg. (EEC, Euratom) No 1182/71 Art. 3"


def test_unknown_rules_and_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown counting rule 'lunar'"):
        due("lunar", z("2027-05-04T23:00Z"), "1d", IRELAND)
    with pytest.raises(ValueError, match="whole number and one unit"):
        parse_period("1.5d")


moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))


@settings(deadline=None, max_examples=200)
@given(event=moments, days=st.integers(min_value=1, max_value=120))
def test_a_period_in_days_never_ends_on_a_weekend_or_holiday_and_never_before_elapsed(
    event: datetime, days: int
) -> None:
    end = due(EU_1182_71, event, f"{days}d", IRELAND)
    # never earlier than elapsed time, but for the hour summer time takes from a local day: hypothesis
    # found Wed 18 Feb 2026 23:00:00.000001Z + 40 days: the law's end, 24:00 IST on Mon 30 Mar, is
    # 23:00Z, one microsecond before 40 x 24 h (the clocks went forward on 29 Mar)
    assert end >= due(ELAPSED, event, f"{days}d", IRELAND) - timedelta(hours=1)
    last_day = (end.astimezone(IRELAND_ZONE) - timedelta(seconds=1)).date()
    assert IRELAND.working(last_day)


@settings(deadline=None, max_examples=200)
@given(event=moments, hours=st.integers(min_value=1, max_value=72))
def test_a_period_in_hours_starts_at_the_next_hour_and_is_not_rolled_forward(event: datetime, hours: int) -> None:
    end = due(EU_1182_71, event, f"{hours}h", IRELAND)
    assert timedelta(hours=hours) < end - event <= timedelta(hours=hours + 1)
    assert end.minute == 0 and end.second == 0


def test_summer_time_can_make_the_laws_end_an_hour_before_elapsed_time() -> None:
    event = z("2026-02-18T23:30Z")  # 23:30 GMT, Wed 18 Feb; day 40 = Mon 30 Mar, summer time since 29 Mar
    assert due(EU_1182_71, event, "40d", IRELAND) == z("2026-03-30T23:00Z")
    assert due(ELAPSED, event, "40d", IRELAND) == z("2026-03-30T23:30Z")


def test_irish_holidays_used_above() -> None:
    assert IRELAND.is_holiday(date(2027, 5, 3)) and IRELAND.is_holiday(date(2027, 10, 25))
    assert IRELAND.is_holiday(date(2027, 6, 7)) and not IRELAND.is_holiday(date(2027, 11, 1))

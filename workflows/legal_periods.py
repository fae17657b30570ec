"""Legal periods counted the way the law counts them, not as elapsed seconds.

``eu-1182-71``: Regulation (EEC, Euratom) No 1182/71 determining the rules applicable to periods, dates
and time limits, Art. 3 (the rule for periods in EU acts, e.g. Reg. (EU) 2023/1543 Art. 10 and 11):

- Art. 3(1): a period in hours from an event starts at the beginning of the hour after the one in which
  the event occurs; a period in days (weeks, months) starts at the beginning of the day after the day of
  the event. Hours and days are those of the place where the act is to be done (Art. 2(1)): the
  addressee's time zone.
- Art. 3(2)(b): a period in days ends with the expiry of the last hour of its last day;
  Art. 3(2)(c): in weeks or months, of the day of the last week or month with the same weekday or date
  as the day of the event; the month's last day where that date does not exist.
- Art. 3(3): Saturdays, Sundays and public holidays count.
- Art. 3(4): when the last day of a period not in hours is a public holiday, Saturday or Sunday, the
  period ends with the expiry of the last hour of the following working day.
- Art. 3(5): a period of two days or more includes at least two working days.

``elapsed``: the period as that many seconds after the event (18 U.S.C. 2703(f), operational targets).

Pure functions of an aware ``event``, the period text ("8h", "10d", "2w", "1mo") and a ``Place`` (zone and
public holidays); the caller chooses the place (the provider's EU establishment, or a stated default).
"""

from __future__ import annotations

import calendar as month_calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ELAPSED = "elapsed"
EU_1182_71 = "eu-1182-71"
RULES = (ELAPSED, EU_1182_71)
CITATION = {
    ELAPSED: "elapsed time",
    EU_1182_71: "Reg. (EEC, Euratom) No 1182/71 Art. 3",
}

_PERIOD = re.compile(r"^\s*(\d+)\s*(h|d|w|mo)\s*$")


@dataclass(frozen=True)
class Place:
    """Where the act is to be done: its IANA zone and its public holidays (a date predicate)."""

    zone: str
    is_holiday: Callable[[date], bool]
    name: str = ""

    def working(self, day: date) -> bool:
        return day.weekday() < 5 and not self.is_holiday(day)


def place_of(country: str, zone: str, subdiv: str | None = None) -> Place:
    """A place from an ISO country code (public holidays from the ``holidays`` package) and a zone."""
    import holidays  # lazily: slow to import, and only legal counting needs it here

    table = holidays.country_holidays(country, subdiv=subdiv)
    return Place(zone=zone, is_holiday=lambda day: day in table, name=country)


def parse_period(text: str) -> tuple[int, str]:
    """``"10d"`` -> (10, "d"). Units: h (hours), d (days), w (weeks), mo (months). Raises ValueError."""
    match = _PERIOD.match(text.lower())
    if match is None:
        raise ValueError(f'legal period {text!r}: write a whole number and one unit h, d, w or mo, like "10d"')
    return int(match.group(1)), match.group(2)


def due(rule: str, event: datetime, period: str, place: Place) -> datetime:
    """The instant the period ends (the expiry of its last hour). Raises ValueError for an unknown rule."""
    amount, unit = parse_period(period)
    if rule == ELAPSED:
        seconds = {"h": 3600, "d": 86400, "w": 7 * 86400}.get(unit)
        if seconds is None:
            raise ValueError("elapsed counting takes h, d or w; months have no fixed length")
        return event + timedelta(seconds=amount * seconds)
    if rule != EU_1182_71:
        raise ValueError(f"unknown counting rule {rule!r} (known: {', '.join(RULES)})")
    zone = ZoneInfo(place.zone)
    local = event.astimezone(zone)
    if unit == "h":
        # Art. 3(1): the hour of the event is not counted. Hours are elapsed hours from the start of the
        # next one (a DST change inside the period neither adds nor removes an hour of the period).
        start = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return start.astimezone(event.tzinfo) + timedelta(hours=amount)
    event_day = local.date()
    last = _last_day(event_day, amount, unit)
    last = _roll_forward(last, place)  # Art. 3(4)
    if (amount >= 2 and unit == "d") or unit in ("w", "mo"):
        last = _two_working_days(event_day, last, place)  # Art. 3(5)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)  # expiry of its last hour
    return end.astimezone(event.tzinfo)


def _last_day(event_day: date, amount: int, unit: str) -> date:
    if unit == "d":
        return event_day + timedelta(days=amount)
    if unit == "w":
        return event_day + timedelta(weeks=amount)  # the same weekday as the event's (Art. 3(2)(c))
    month_index = event_day.month - 1 + amount
    year, month = event_day.year + month_index // 12, month_index % 12 + 1
    last_of_month = month_calendar.monthrange(year, month)[1]
    return date(year, month, min(event_day.day, last_of_month))


def _roll_forward(day: date, place: Place) -> date:
    while not place.working(day):
        day += timedelta(days=1)
    return day


def _two_working_days(event_day: date, last: date, place: Place) -> date:
    first = event_day + timedelta(days=1)
    while sum(place.working(first + timedelta(days=i)) for i in range((last - first).days + 1)) < 2:
        last = _roll_forward(last + timedelta(days=1), place)
    return last


def describe(rule: str, due_at: datetime, place: Place) -> str:
    """How a dossier and ``status`` state the deadline: "due 2027-05-04 24:00 Europe/Dublin, counted
    under Reg. (EEC, Euratom) No 1182/71 Art. 3" (24:00 is the expiry of the last hour of that day)."""
    local = due_at.astimezone(ZoneInfo(place.zone))
    if rule == EU_1182_71 and local.time() == time(0):
        shown = f"{(local - timedelta(days=1)).date().isoformat()} 24:00"
    else:
        shown = local.strftime("%Y-%m-%d %H:%M")
    return f"due {shown} {place.zone}, counted under {CITATION[rule]}"

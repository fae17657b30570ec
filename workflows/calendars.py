"""Working time on a clock's calendar: "24x7" (every second counts) or a business calendar.

A business calendar counts only the working hours (``day_start``..``day_end``, local time in its IANA
zone) of its working days, minus national holidays (the ``holidays`` package), minus extra closed dates,
plus explicitly opened dates. Durations on a business calendar are *working* seconds.

Speed matters (the clock engine runs 100,000 cases per pass), so each business calendar gets a
``BusinessTimeline``: per working day its opening and closing instant as epoch seconds and the working
seconds accumulated before it. Epoch instants make DST free of special cases: a day's working interval
is whatever its two local wall times map to, and an hour skipped or repeated inside working hours is
simply shorter or longer. Lookups are two bisects. Tables are built lazily for a range of years and
widened when an instant falls outside it; timelines are cached per calendar.
"""

from __future__ import annotations

import logging
import math
import zoneinfo
from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from casebridge.errors import WorkflowError
from casebridge.workflows.model import Calendar, Workflow

log = logging.getLogger(__name__)

CALENDAR_24X7 = "24x7"
DEFAULT_24X7 = Calendar(name=CALENDAR_24X7)
# Years built on either side of the first instant asked about; widened on demand.
_YEAR_MARGIN = 1
# A calendar with working days this far apart is surely misconfigured (no working day at all).
_MAX_SPAN_YEARS = 200

__all__ = [
    "CALENDAR_24X7",
    "BusinessTimeline",
    "Timeline",
    "add_working_seconds",
    "calendar_named",
    "timeline_for",
    "working_seconds_between",
]


class Timeline:
    """Every second is working time (the "24x7" calendar). Instants are epoch seconds."""

    def between(self, a: float, b: float) -> float:
        return b - a

    def stretch(self, start: float, end: float, target: float, warn: float) -> tuple[float, float, float]:
        """One running stretch from ``start`` to ``end`` (>= start): (working seconds in it, the instant
        ``target`` working seconds after ``start``, the same for ``warn``); an amount <= 0 gives ``start``."""
        return end - start, self._add_positive(start, target), self._add_positive(start, warn)

    def _add_positive(self, start: float, seconds: float) -> float:
        return start if seconds <= 0 else self.add(start, seconds)

    def add(self, start: float, seconds: float) -> float:
        return start + seconds


class BusinessTimeline(Timeline):
    """Working seconds of one business calendar, from a lazily built per-day table (epoch seconds)."""

    # The table, set by _build on first use: parallel lists over the working days of
    # [_first_year, _last_year], in order.
    _first_year: int
    _last_year: int
    _opens: list[float]  # opening instant of the day
    _closes: list[float]  # closing instant
    _cum: list[float]  # working seconds before day i (len = days + 1)

    def __init__(self, calendar: Calendar) -> None:
        if calendar.day_seconds <= 0:
            raise WorkflowError(
                f"calendars.{calendar.name}.hours <- day end {calendar.day_end} must be after "
                f"day start {calendar.day_start}"
            )
        self.calendar = calendar
        self._tz = zoneinfo.ZoneInfo(calendar.timezone)
        # Instants in [lo, hi) are covered by the table: none until the first lookup builds it.
        self._lo = math.inf
        self._hi = -math.inf

    def stretch(self, start: float, end: float, target: float, warn: float) -> tuple[float, float, float]:
        """One running stretch from ``start`` to ``end`` (>= start), in one table lookup: (working seconds in
        it, the instant ``target`` working seconds after ``start``, the same for ``warn``); an amount
        <= 0 gives ``start``. Each figure is exactly what ``between`` and ``add`` give."""
        lo, hi = self._lo, self._hi
        if not (lo <= start and end < hi):  # both inside the table (end >= start)
            return self.between(start, end), self._add_positive(start, target), self._add_positive(start, warn)
        opens, closes, cum = self._opens, self._closes, self._cum
        i = bisect_right(opens, end) - 1
        worked_end = cum[i] + (end if end < closes[i] else closes[i]) - opens[i] if i >= 0 else 0.0
        i = bisect_right(opens, start) - 1
        worked = cum[i] + (start if start < closes[i] else closes[i]) - opens[i] if i >= 0 else 0.0
        return worked_end - worked, self._landing(start, worked, target), self._landing(start, worked, warn)

    def _landing(self, start: float, worked: float, seconds: float) -> float:
        # add(start, seconds) given the working seconds before start (start covered by the table)
        if seconds <= 0:
            return start
        goal = worked + seconds
        cum = self._cum
        if goal > cum[-1]:  # the table must grow first: the general path
            return self.add(start, seconds)
        i = bisect_left(cum, goal) - 1  # goal > 0 = cum[0]: the smallest day i with cum[i + 1] >= goal
        landed = self._opens[i] + (goal - cum[i])
        return landed if landed >= start else start

    # -- public (epoch seconds) ------------------------------------------------------------------
    def between(self, a: float, b: float) -> float:
        """Working seconds in [a, b) (negative when b < a)."""
        # Hot path: the coverage check and the per-day lookup inlined (the engine calls this per running stretch).
        lo, hi = self._lo, self._hi
        if not (lo <= a < hi and lo <= b < hi):
            self._cover(a, b)
        opens, closes, cum = self._opens, self._closes, self._cum
        i = bisect_right(opens, b) - 1
        worked = cum[i] + (b if b < closes[i] else closes[i]) - opens[i] if i >= 0 else 0.0
        i = bisect_right(opens, a) - 1
        if i >= 0:
            worked -= cum[i] + (a if a < closes[i] else closes[i]) - opens[i]
        return worked

    def add(self, start: float, seconds: float) -> float:
        """The earliest instant at which ``seconds`` working seconds have passed since ``start``.

        Landing exactly on a day's end gives that closing instant, not the next opening. Zero gives
        ``start`` itself (not the previous closing instant, which has the same working-time count).
        """
        if seconds == 0:
            return start
        # Hot path (the engine's due and warn instants): the coverage check and the per-day lookup inlined.
        if not self._lo <= start < self._hi:
            self._cover(start)
        opens = self._opens
        i = bisect_right(opens, start) - 1
        closes = self._closes
        goal = (self._cum[i] + (start if start < closes[i] else closes[i]) - opens[i] if i >= 0 else 0.0) + seconds
        while goal > self._cum[-1]:  # past the table: build further ahead (the origin stays put)
            span = self._last_year - self._first_year + 1
            self._build(self._first_year, self._last_year + span)
        while goal <= 0:  # before the table (negative seconds): build further back
            total = self._cum[-1]
            span = self._last_year - self._first_year + 1
            self._build(self._first_year - span, self._last_year)
            goal += self._cum[-1] - total  # the origin moved back by the working time of the years added
        i = bisect_left(self._cum, goal) - 1  # goal > 0 = cum[0]: the smallest day i with cum[i + 1] >= goal
        landed = self._opens[i] + (goal - self._cum[i])
        # A positive amount too small to change the float sum would land on the previous closing
        # instant (same working-time count); never go back in time.
        return landed if seconds < 0 or landed >= start else start

    # -- internals -------------------------------------------------------------------------------
    def _cover(self, t: float, u: float | None = None) -> None:
        """A table holding ``t`` (and ``u``): the one built so far widened to them, or, when that would
        span more than ``_MAX_SPAN_YEARS``, a fresh one around them alone. One case dated centuries away
        must not make every later question to this (shared) timeline exceed the span."""
        first_t, last_t = (t, t) if u is None else (min(t, u), max(t, u))
        if self._lo <= first_t and last_t < self._hi:
            return
        first = datetime.fromtimestamp(first_t, UTC).year - _YEAR_MARGIN
        last = datetime.fromtimestamp(last_t, UTC).year + _YEAR_MARGIN
        if self._hi != -math.inf:  # a table exists: widen it (it stays one range of years) if that fits
            wide_first, wide_last = min(self._first_year, first), max(self._last_year, last)
            if wide_last - wide_first <= _MAX_SPAN_YEARS:
                first, last = wide_first, wide_last
        if last - first > _MAX_SPAN_YEARS:  # one question about two instants centuries apart
            raise WorkflowError(
                f"calendars.{self.calendar.name} <- cannot count working time from {first + _YEAR_MARGIN} to "
                f"{last - _YEAR_MARGIN}: more than {_MAX_SPAN_YEARS} years apart (check the case's dates)"
            )
        self._build(first, last)

    def _build(self, first_year: int, last_year: int) -> None:
        if last_year - first_year > _MAX_SPAN_YEARS:
            raise WorkflowError(
                f"calendars.{self.calendar.name} <- no working time found within {_MAX_SPAN_YEARS} years "
                "(check working_days, hours and closed dates)"
            )
        cal, tz = self.calendar, self._tz
        opens: list[float] = []
        closes: list[float] = []
        cum = [0.0]
        day = date(first_year, 1, 1)
        end = date(last_year, 12, 31)
        holidays = _holiday_dates(cal, *range(first_year, last_year + 1))
        one = timedelta(days=1)
        while day <= end:
            if _is_working_day(cal, day, holidays):
                # Wall times localised in the zone; fold=0 picks the first of a repeated hour.
                o = datetime.combine(day, cal.day_start, tz).timestamp()
                c = datetime.combine(day, cal.day_end, tz).timestamp()
                if c > o:
                    opens.append(o)
                    closes.append(c)
                    cum.append(cum[-1] + (c - o))
            day += one
        self._opens, self._closes, self._cum = opens, closes, cum
        self._first_year, self._last_year = first_year, last_year
        # Everything from the first local midnight to the last local midnight of the range is covered;
        # use UTC year bounds widened by a day (zones are within +-14 h of UTC).
        self._lo = datetime(first_year, 1, 2, tzinfo=UTC).timestamp()
        self._hi = datetime(last_year, 12, 30, tzinfo=UTC).timestamp()
        log.debug("calendar %s: built %d working days for %d-%d", cal.name, len(opens), first_year, last_year)


def _holiday_dates(cal: Calendar, *years: int) -> frozenset[date]:
    if not cal.holidays_country:
        return frozenset()
    return _country_holidays(cal.holidays_country, cal.holidays_subdiv, tuple(years))


@lru_cache(maxsize=64)
def _country_holidays(country: str, subdiv: str | None, years: tuple[int, ...]) -> frozenset[date]:
    import holidays  # imported lazily: it is slow to import and only business calendars need it

    try:
        return frozenset(holidays.country_holidays(country, subdiv=subdiv, years=years).keys())
    except NotImplementedError:
        raise WorkflowError(f"calendar holidays <- the holidays package knows no country {country!r}") from None


def _is_working_day(cal: Calendar, day: date, holidays: frozenset[date]) -> bool:
    if day in cal.open_dates:  # explicitly opened: wins over weekends, holidays and closed dates
        return True
    return day.weekday() in cal.working_days and day not in holidays and day not in cal.closed_dates


# ------------------------------------------------------------------------------ lookup and datetime API
_TIMELINES: dict[Calendar, Timeline] = {}
_TIMELINE_24X7 = Timeline()


def timeline_for(cal: Calendar) -> Timeline:
    """The (cached) timeline of a calendar; 24x7 calendars share one."""
    if cal.kind != "business":
        return _TIMELINE_24X7
    timeline = _TIMELINES.get(cal)
    if timeline is None:
        timeline = _TIMELINES[cal] = BusinessTimeline(cal)
    return timeline


def calendar_named(workflow: Workflow, name: str) -> Calendar:
    """The workflow's calendar ``name``; "24x7" exists even when the workflow does not declare it."""
    cal = workflow.calendars.get(name)
    if cal is not None:
        return cal
    if name == CALENDAR_24X7:
        return DEFAULT_24X7
    known = ", ".join(sorted({*workflow.calendars, CALENDAR_24X7}))
    raise WorkflowError(f"{workflow.source_path or workflow.name}: calendar {name!r} is not defined (known: {known})")


def working_seconds_between(cal: Calendar, a: datetime, b: datetime) -> float:
    """Working seconds of ``cal`` in [a, b) (aware datetimes; negative when b < a)."""
    return timeline_for(cal).between(a.timestamp(), b.timestamp())


def add_working_seconds(cal: Calendar, start: datetime, seconds: float) -> datetime:
    """The earliest instant (UTC) at which ``seconds`` working seconds of ``cal`` have passed since start."""
    return datetime.fromtimestamp(timeline_for(cal).add(start.timestamp(), seconds), UTC)

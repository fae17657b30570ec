"""The local times ``status --json`` writes from the clock columns (cli/status_columns.py) are the very
text of ``local_iso(datetime.fromtimestamp(e, UTC), zone)``: every second either side of each DST change
and of each half hour over years with transitions, in zones with odd offsets (+05:45, -03:30, +12:45,
Lord Howe's 30-minute change, Monrovia's -00:44:30 before 1972), and fractions that round up into the
next second; an instant outside the years 1000-9999 is not plain (the chunk goes the ordinary way)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from casebridge.cli.status_columns import _Unplain, local_texts, micros_of
from casebridge.cli.status_json import case_zone, local_iso

ZONES = [
    "UTC",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "America/New_York",
    "Pacific/Chatham",
    "Africa/Monrovia",
]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FRACTIONS = [0.0, 0.25, 0.4999995, 0.5, 0.9999994, 0.9999995, 0.9999996, 0.999999999]


def _transitions(zone: str, years: range) -> list[float]:
    """UTC instants where the zone's offset changes (found hour by hour, then to the second)."""
    tz = case_zone(zone)
    out = []
    t = (datetime(years.start, 1, 1, tzinfo=UTC) - EPOCH).total_seconds()
    end = (datetime(years.stop, 1, 1, tzinfo=UTC) - EPOCH).total_seconds()
    before = datetime.fromtimestamp(t, tz).utcoffset()
    while t < end:
        after = datetime.fromtimestamp(t + 3600, tz).utcoffset()
        if after != before:
            lo, hi = t, t + 3600
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if datetime.fromtimestamp(mid, tz).utcoffset() == before else (lo, mid)
            out.append(hi)
        t, before = t + 3600, after
    return out


def _instants(zone: str) -> list[float]:
    years = range(1971, 1973) if zone == "Africa/Monrovia" else range(2026, 2028)
    moments = []
    for change in _transitions(zone, years):
        for step in range(-3, 4):
            for frac in FRACTIONS:
                moments += [change + step + frac, change - 1800 + step + frac, change + 1799 + step + frac]
    start = (datetime(years.start, 3, 1, tzinfo=UTC) - EPOCH).total_seconds()
    moments += [start + k * 1800 + f for k in range(0, 48 * 60, 7) for f in (-1.0, -0.5, 0.0, 0.9999996)]
    return moments


@pytest.mark.parametrize("zone", ZONES)
def test_local_times_from_columns_are_local_iso(zone: str) -> None:
    seconds = np.array([*_instants(zone), float("nan")], np.float64)
    us, known = micros_of(seconds)
    want_us = [
        None if e != e else (datetime.fromtimestamp(e, UTC) - EPOCH) // timedelta(microseconds=1)
        for e in seconds.tolist()
    ]
    assert [int(u) if k else None for u, k in zip(us.tolist(), known.tolist(), strict=True)] == want_us
    got = local_texts(us, known, np.zeros(len(us), np.int64), [case_zone(zone)])
    tz = case_zone(zone)
    want = ["null" if e != e else f'"{local_iso(datetime.fromtimestamp(e, UTC), tz)}"' for e in seconds.tolist()]
    assert got == want


def test_several_zones_at_once() -> None:
    seconds = np.array([s for zone in ZONES for s in _instants(zone)[:200]], np.float64)
    codes = np.repeat(np.arange(len(ZONES)), 200)
    us, known = micros_of(seconds)
    got = local_texts(us, known, codes, [case_zone(z) for z in ZONES])
    want = [
        f'"{local_iso(datetime.fromtimestamp(e, UTC), case_zone(ZONES[c]))}"'
        for e, c in zip(seconds.tolist(), codes.tolist(), strict=True)
    ]
    assert got == want


@pytest.mark.parametrize("year", [999, 10000])
def test_an_instant_outside_four_digit_years_is_not_plain(year: int) -> None:
    moment = datetime(min(year, 9999), 12 if year > 9999 else 1, 31 if year > 9999 else 1, tzinfo=UTC)
    seconds = (moment - EPOCH).total_seconds() + (86400 if year > 9999 else -86400)
    with pytest.raises(_Unplain):
        micros_of(np.array([seconds]))

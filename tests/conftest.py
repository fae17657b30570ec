"""``--clock-shift OFFSET``: run the suite with the test process's wall clock moved (issue 9).

A test that mixes a calendar date written in it with a clock it does not control (a server's, or
``datetime.now()``) passes on the day it was written and fails once the real date passes that date.
Moving the process's clock a year either way finds such a test on the first run:

    python -m pytest --clock-shift=+1y        (or -1y, +36h, -90d, +2w; 0 = as it is)
    tests/clock_shift.sh                      (the suite as it is, then +1y, then -1y)

Only this process's wall clock moves (time.time, datetime.now, ... through time-machine), from the
moment pytest is configured, so module-level ``datetime.now()`` calls see it too; it keeps ticking. The
monotonic clocks, sleeps and timeouts are untouched, and so is everything outside the process: the real
Redmine, OpenSSL's certificate checks, and the ``python -m cli`` processes a test starts (another
process on another clock, as a second host would be). Forked children (the fault harnesses) inherit the
moved clock. libfaketime was tried first: with the monotonic clock left alone its clock_nanosleep fails
with EINVAL on a negative offset (every ``time.sleep``), and with it faked a -1y run hangs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TRAVELLER = pytest.StashKey[object]()


def parse_shift(text: str) -> timedelta:
    """``+1y``, ``-1y``, ``+36h``, ``-90d``, ``+2w``, ``0``: a signed whole number and one unit (a year
    is 365 days)."""
    if text.strip() == "0":
        return timedelta(0)
    match = re.fullmatch(r"\s*([+-])(\d+)([smhdwy])\s*", text)
    if match is None:
        raise pytest.UsageError(f"--clock-shift: {text!r} is not like +1y, -1y, +36h, -90d or 0")
    sign, amount, unit = match.groups()
    value = int(amount) * (365 if unit == "y" else 1)
    delta = timedelta(**{_UNITS.get(unit, "days"): value})
    return -delta if sign == "-" else delta


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-shift",
        default="0",
        metavar="OFFSET",
        help="move this process's wall clock by OFFSET (+1y, -1y, +36h, 0) for the whole run",
    )


def pytest_configure(config: pytest.Config) -> None:
    delta = parse_shift(config.getoption("--clock-shift"))
    if not delta:
        return
    import time_machine  # only a shifted run needs it

    traveller = time_machine.travel(datetime.now(UTC) + delta, tick=True)
    traveller.start()
    config.stash[_TRAVELLER] = traveller


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_TRAVELLER, None)
    if traveller is not None:
        traveller.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    shift = config.getoption("--clock-shift")
    if parse_shift(shift):
        return f"clock shifted by {shift}: this process's wall clock reads {datetime.now(UTC).isoformat()}"
    return None

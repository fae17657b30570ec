"""Fixtures every test module shares, and those several modules use: the CLI run in-process and a scratch
directory to run it in.

Helpers that are not fixtures live in their own modules (tests/factories.py, tests/cli_runner.py,
tests/escalate_e2e.py, ...); tracker servers are plugins (tests/jira_fixtures.py, redmine_fixtures.py,
smtp_fixtures.py) that a module asks for with ``pytest_plugins``.

``--clock-shift OFFSET``: run the suite with the test process's wall clock moved (issue 9).

A test that mixes a calendar date written in it with a clock it does not control (a server's, or
``datetime.now()``) passes on the day it was written and fails once the real date passes that date.
Moving the process's clock a year either way finds such a test on the first run:

    python -m pytest --clock-shift=+1y        (or -1y, +36h, -90d, +2w; 0 = as it is)
    tests/clock_shift.sh                      (the suite as it is, then +1y, then -1y)

Only this process's wall clock moves (time.time, datetime.now, ... through time-machine), from the
moment pytest is configured, so module-level ``datetime.now()`` calls see it too; it keeps ticking. The
monotonic clocks, sleeps and timeouts are untouched, and so is everything outside the process: the real
Redmine, OpenSSL's certificate checks, and the ``python -m casebridge.cli`` processes a test starts (another
process on another clock, as a second host would be). Forked children (the fault harnesses) inherit the
moved clock. libfaketime was tried first: with the monotonic clock left alone its clock_nanosleep fails
with EINVAL on a negative offset (every ``time.sleep``), and with it faked a -1y run hangs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli_runner import Cli, cli_logging_restored

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


@pytest.fixture(autouse=True)
def private_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Without a config, casebridge keeps its files in the user's data and state folders (platformdirs,
    which honours XDG_*): point those at a fresh folder per test, so no test reads or writes the real
    user's cases and no two tests share an embedded tracker. Subprocesses inherit it."""
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    yield home


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``casebridge`` in this process: ``cli(*args)`` -> (exit code, stdout, stderr); ``cli.json(*args)``."""
    return Cli(capsys)


@pytest.fixture
def cli_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working directory of a CLI test: ``tmp_path``, with the root logger put back afterwards (the
    CLI installs a handler on the test's captured stderr; server threads that log after the test would
    write to a closed stream)."""
    monkeypatch.chdir(tmp_path)
    with cli_logging_restored():
        yield tmp_path

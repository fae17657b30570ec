"""The test set-up's two optional pieces: a real Redmine and Atlassian's Jira OpenAPI documents.

Without one of them its tests skip outside CI and fail under ``CI=true`` (CI has both). pytest reports a
skip raised in a fixture at each test's own location, so ``-ra`` would print one line per test; the hook
below files these skips under one location, so each missing piece is ONE line of the summary.
``tests.redmine_fixtures`` and ``tests.jira_fixtures`` import the hook, so a test module that lists
either in ``pytest_plugins`` gets it.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import NoReturn

import pytest

PREFIX = "[optional] "


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test (fail it under CI=true) because an optional piece is missing."""
    if in_ci():
        pytest.fail(f"under CI=true: {reason}", pytrace=False)
    pytest.skip(PREFIX + reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and str(longrepr[2]).removeprefix("Skipped: ").startswith(PREFIX):
        report.longrepr = (__file__, unavailable.__code__.co_firstlineno, longrepr[2])

"""A row's ``state_since`` on a tracker that back-dates (the embedded one) and on one that cannot (Redmine,
Jira: tests/test_intake_redmine_create.py): honoured silently on the first, ignored with one warning
naming how many rows on the second (issue 19)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from casebridge.app.intake import apply_intake, plan_intake
from casebridge.workflows.cases import StatusChange
from casebridge.workflows.intake import IntakeRow
from tests.factories import T0, make_case
from tests.test_sync_support import CountingTracker, Env

NOW = T0 + timedelta(days=1)


def test_a_tracker_that_back_dates_starts_the_history_at_state_since_and_warns_of_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = Env(tmp_path)
    env.write_config()
    tracker = env.tracker(NOW)
    since = NOW - timedelta(hours=5)
    rows = [
        IntakeRow("cases.csv:2", make_case("FIA-B-1", submitted_at=None), "legal_review", since),
        IntakeRow("cases.csv:3", make_case("FIA-B-2", submitted_at=None), None, None),
    ]
    with caplog.at_level(logging.WARNING):
        made = apply_intake(plan_intake(rows, tracker), tracker, None, now=NOW)
    assert "cannot back-date" not in caplog.text
    assert [t.history for t in made] == [
        [StatusChange(since, "legal_review")],
        [StatusChange(NOW, tracker.workflow.initial)],
    ]


class CannotBackDate(CountingTracker):
    """The embedded tracker reporting itself as one that stamps creations with its own time."""

    back_dates = False
    name = "redmine"


def test_a_tracker_that_cannot_back_date_says_once_how_many_state_since_it_ignores(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = Env(tmp_path)
    env.write_config()
    tracker = CannotBackDate(env.tracker(NOW))
    since = NOW - timedelta(hours=5)
    rows = [
        IntakeRow(f"cases.csv:{i + 2}", make_case(f"FIA-C-{i}", submitted_at=None), "legal_review", s)
        for i, s in enumerate([since, None, since])
    ]
    with caplog.at_level(logging.WARNING):
        apply_intake(plan_intake(rows, tracker), tracker, None, now=NOW)
    assert caplog.messages == ["redmine cannot back-date: state_since ignored for 2 new cases"]

"""A tracker answer without the creation time of an issue or a status change is refused with a message
naming the item (issue 19: a history used to be built with a missing time and failed later, far from
the cause, in the clock engine)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from casebridge.connectors.jira.cases import required_time as jira_time
from casebridge.connectors.redmine.mapping import required_time as redmine_time
from casebridge.errors import TrackerError


def test_redmine_times_are_read_to_the_second_in_utc() -> None:
    assert redmine_time("2026-12-05T09:00:07Z", "issue #7") == datetime(2026, 12, 5, 9, 0, 7, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, "", "2026-13-05T09:00:00Z", "5 Dec 2026"])
def test_a_redmine_issue_without_a_readable_creation_time_is_refused_by_name(value: str | None) -> None:
    with pytest.raises(TrackerError, match=r"^redmine: issue #7 journal 12: time .* is not YYYY-MM-DDTHH:MM:SSZ$"):
        redmine_time(value, "issue #7 journal 12")


def test_jira_times_keep_their_offset() -> None:
    moment = jira_time("2026-12-05T14:00:07.000+0500", "the issue")
    assert moment == datetime(2026, 12, 5, 9, 0, 7, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, ""])
def test_a_jira_changelog_entry_without_a_time_is_refused_by_name(value: str | None) -> None:
    with pytest.raises(TrackerError, match=r"^jira: changelog entry 10042 has no time stamp"):
        jira_time(value, "changelog entry 10042")

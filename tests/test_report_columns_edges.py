"""The report over columns (workflows/report_columns.py) at its edges, each compared with ``build_report``
(the reference): a receipt a fraction of a second before 1970 stays in December 1969 (local seconds
are floored, not truncated), the years the columns take end exactly where they say (a receipt from
1700-01-01 UTC, ``now`` before 2200-01-01 UTC, to the microsecond) and say so in their words, an entry
at exactly ``now`` counts, two refusals for one reason in one cell count two, ``working_between`` builds
a fresh timeline's table around both ends, and the UTC offsets of instants on either side of every DST
change are the instant's own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from casebridge.workflows.calendars import BusinessTimeline, calendar_named
from casebridge.workflows.cases import StatusChange, TrackedCase
from casebridge.workflows.clock_eval import working_between
from casebridge.workflows.model import Workflow
from casebridge.workflows.report import Report, build_report
from casebridge.workflows.report_columns import NotColumnar
from casebridge.workflows.zone_offsets import utc_offsets
from tests.test_clock_batch_equality import read, stored
from tests.test_report_columns import BY, WORKFLOWS, ZONES, _canonical, _tracked, columns_report

UTC_24X7 = WORKFLOWS[2 * ZONES.index("UTC") + 1]
US = timedelta(microseconds=1)


def _cases(received: list[datetime], changes: list[list[tuple[datetime, str]]]) -> tuple[list[TrackedCase], list[str]]:
    tracked, _texts = _tracked([(86400.0, [], None, 0)] * len(received), [(0, 0, 0, 0)] * len(received))
    cases = [
        replace(t, case=t.case.model_copy(update={"submitted_at": at})) for t, at in zip(tracked, received, strict=True)
    ]
    texts = [stored([StatusChange(at, state) for at, state in entries]) for entries in changes]
    return cases, texts


def _both(
    received: list[datetime], changes: list[list[tuple[datetime, str]]], now: datetime, workflow: Workflow = UTC_24X7
) -> Report:
    """The columns' report, after checking it equals ``build_report``'s."""
    tracked, texts = _cases(received, changes)
    want = build_report(list(zip(tracked, map(read, texts), strict=True)), workflow, now, by=BY)
    got = columns_report(tracked, texts, workflow, now, 2)
    assert _canonical(got) == _canonical(want)
    return got


def _months(report: Report) -> dict[str, int]:
    return {g.label: g.counts["requests"] for g in report.groupings["month"]}


def test_a_receipt_half_a_second_before_1970_is_counted_in_december_1969() -> None:
    at = datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)
    later = datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    got = _both([at, later], [[(at, "submitted")], [(later, "submitted")]], datetime(1970, 2, 1, tzinfo=UTC))
    assert _months(got) == {"1969-12": 1, "1970-01": 1}


@pytest.mark.parametrize(
    ("at", "now", "columnar"),
    [
        (datetime(1700, 1, 1, tzinfo=UTC), datetime(1700, 1, 3, tzinfo=UTC), True),
        (datetime(1700, 1, 1, tzinfo=UTC) - US, datetime(1700, 1, 3, tzinfo=UTC), False),
        (datetime(2199, 12, 30, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC) - US, True),
        (datetime(2199, 12, 30, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC), False),
    ],
)
def test_the_years_the_columns_take_end_to_the_microsecond(at: datetime, now: datetime, columnar: bool) -> None:
    if columnar:
        got = _both([at], [[(at, "submitted")]], now)
        assert _months(got) == {at.strftime("%Y-%m"): 1}
    else:
        tracked, texts = _cases([at], [[(at, "submitted")]])
        with pytest.raises(NotColumnar, match=r"^a receipt or now outside the years 1700-2199$"):
            columns_report(tracked, texts, UTC_24X7, now, 1)


def test_two_cases_with_one_reference_are_not_columnar_in_these_words() -> None:
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    tracked, texts = _cases([at, at], [[(at, "submitted")]] * 2)
    twice = [tracked[0], replace(tracked[1], case=tracked[0].case)]
    with pytest.raises(NotColumnar, match=r"^two cases share a reference$"):
        columns_report(twice, texts, UTC_24X7, at + timedelta(days=1), 2)


def test_a_receipt_and_a_reply_at_exactly_now_count() -> None:
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    sent = now - timedelta(days=3)
    got = _both(
        [now, sent, sent],
        [
            [(now, "submitted")],
            [(sent, "submitted"), (now, "fulfilled")],
            [(sent, "submitted"), (now + US, "fulfilled")],
        ],
        now,
    )
    assert got.total.counts["requests"] == 3
    assert got.total.counts["answered_full"] == 1
    assert got.not_sent == 0


@pytest.mark.parametrize("zone", ZONES)
def test_utc_offsets_are_each_instants_own_around_every_change(zone: str) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    hours = np.arange(start, start + 366 * 86400, 3600, dtype=np.int64)
    second = np.concatenate([hours + step for step in (-1801, -1, 0, 1, 1799, 1800, 3599)])
    want = [int(datetime.fromtimestamp(s, tz).utcoffset().total_seconds()) for s in second.tolist()]  # type: ignore[union-attr]
    assert utc_offsets(second, tz).tolist() == want
    assert utc_offsets(second[:0], tz).tolist() == []
    assert utc_offsets(second[:0], tz).dtype == np.int64


def test_two_refusals_for_one_reason_in_one_cell_count_two() -> None:
    now = datetime(2026, 3, 20, 9, tzinfo=UTC)
    sent = [now - timedelta(days=9), now - timedelta(days=8), now - timedelta(days=7)]
    got = _both(sent, [[(at, "submitted"), (at + timedelta(days=1), "refused")] for at in sent], now)
    assert got.total.counts["refused"] == 3
    assert sum(got.total.refusals.values()) == 3
    assert [sum(g.refusals.values()) for g in got.groupings["month"]] == [3]


def test_working_between_covers_both_ends_on_a_fresh_timeline() -> None:
    # a timeline no one has asked yet: its table must be built around the starts and the ends alike
    workflow = WORKFLOWS[2 * ZONES.index("Asia/Karachi")]
    calendar = calendar_named(workflow, workflow.report.calendar)
    a = np.array([datetime(2020, 3, 2, 9, tzinfo=UTC).timestamp(), datetime(2026, 3, 2, 9, tzinfo=UTC).timestamp()])
    b = np.array([datetime(2026, 3, 3, 9, tzinfo=UTC).timestamp(), datetime(2032, 3, 3, 9, tzinfo=UTC).timestamp()])
    got = working_between(BusinessTimeline(calendar), a, b).tolist()
    reference = BusinessTimeline(calendar)
    assert got == [reference.between(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    assert min(got) > 365 * 86400  # six years of working hours: both ends were on the table

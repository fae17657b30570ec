"""The report counted over columns (workflows/report_columns.py) equals ``build_report``, the reference:
every group's counts, refusals and times, every listed open breach, the cases not sent, for random cases
and histories, chunk sizes, date filters (boundaries at local midnight), aggregate reports and report
calendars in zones with DST and odd offsets; a history the columns cannot read is read the ordinary way;
``working_between`` gives ``Timeline.between``'s floats exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from casebridge import workflows as workflows_package
from casebridge.workflows import load_workflow
from casebridge.workflows.calendars import BusinessTimeline, calendar_named, timeline_for
from casebridge.workflows.cases import Case, StatusChange, TrackedCase
from casebridge.workflows.clock_batch import evaluate_batch, workflow_states
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clock_eval import working_between
from casebridge.workflows.model import Workflow
from casebridge.workflows.report import Group, Report, build_report
from casebridge.workflows.report_columns import NotColumnar, ReportColumns
from tests.test_clock_batch_equality import KINDS, NOW, case_specs, lawful_cases, read, stored

# the package's own file (not the checkout's: a mutation run stages the package apart from the tests)
BUILTIN = Path(workflows_package.__file__).resolve().parent / "lawful-access.toml"
ZONES = ["Asia/Karachi", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
PROVIDERS = ["Meta Platforms", "Facebook", 'x"\\ \u2028\x1b[31m', "=cmd|' /C calc'!A0", "Ünïcode"]
AGENCIES = [None, "FIA CCW Lahore", "Punjab Police CTD"]
REASONS = [None, "not_held", "other-reason"]
BY = ("provider", "legal_basis", "request_type", "agency", "month")


def _variant(zone: str, kind: str) -> Workflow:
    """The bundled workflow with its report calendar (``agency``) in ``zone``, business or 24x7."""
    text = BUILTIN.read_text()
    head, sep, tail = text.partition("[calendars.agency]\n")
    tail = tail.replace('timezone = "Asia/Karachi"', f'timezone = "{zone}"', 1)
    if kind == "24x7":
        tail = tail.replace('kind = "business"', 'kind = "24x7"', 1)
    path = Path(__file__).parent / f".report-columns-{zone.replace('/', '-')}-{kind}.toml"
    path.write_text(head + sep + tail)
    try:
        return load_workflow(path)
    finally:
        path.unlink()


WORKFLOWS = [_variant(zone, kind) for zone in ZONES for kind in ("business", "24x7")]


def _canonical(report: Report) -> Report:
    """The report with each group's times sorted: the figures are medians and percentiles of them, so
    their order is not part of the result (the columns gather them per cell, not per case)."""

    def group(g: Group) -> Group:
        return replace(g, first_response=sorted(g.first_response), fulfilment=sorted(g.fulfilment))

    groupings = {name: [group(g) for g in groups] for name, groups in report.groupings.items()}
    return replace(report, total=group(report.total), groupings=groupings)


def columns_report(
    tracked: Sequence[TrackedCase],
    texts: Sequence[str | None],
    workflow: Workflow,
    now: datetime,
    chunk: int,
    *,
    by: Sequence[str] = BY,
    min_count: int = 5,
    history_of: Callable[[int], list[StatusChange]] | None = None,
    **options: Any,
) -> Report:
    counter = ReportColumns(
        workflow,
        now,
        date_from=options.get("date_from"),
        date_to=options.get("date_to"),
        aggregate=options.get("aggregate", False),
        provider_of=options.get("provider_of"),
    )
    states = workflow_states(workflow)
    for start in range(0, len(tracked), chunk):
        part = list(tracked[start : start + chunk])
        cases = [t.case for t in part]
        hist = HistoryColumns.from_texts(texts[start : start + chunk], states)

        def history(i: int, start: int = start) -> list[StatusChange]:
            if history_of is not None:
                return history_of(start + i)
            return read(texts[start + i] or "[]")

        batch = evaluate_batch(cases, hist, workflow, now, history)
        counter.add(cases, lambda i, part=part: (part[i].state, part[i].url), hist, batch, history)
    return counter.report(by=by, min_count=min_count)


def _tracked(specs: list[Any], labels: list[tuple[int, int, int, int]]) -> tuple[list[TrackedCase], list[str]]:
    kinds = [k for k, *_ in labels]
    cases, texts = lawful_cases(specs, kinds)
    tracked = []
    for i, (case, text, (_k, p, a, r)) in enumerate(zip(cases, texts, labels, strict=True)):
        labelled = case.model_copy(
            update={"provider": PROVIDERS[p], "requesting_agency": AGENCIES[a], "refusal_reason": REASONS[r]}
        )
        history = read(text)
        tracked.append(TrackedCase(str(i), labelled, history[-1].state if history else "draft", NOW, url=f"u/{i}"))
    return tracked, texts


labels = st.tuples(
    st.integers(0, len(KINDS) - 1),
    st.integers(0, len(PROVIDERS) - 1),
    st.integers(0, len(AGENCIES) - 1),
    st.integers(0, len(REASONS) - 1),
)
days = st.one_of(st.none(), st.integers(-420, 2).map(lambda d: (NOW + timedelta(days=d)).date()))


@given(
    st.lists(case_specs, min_size=1, max_size=3),
    st.data(),
    st.integers(1, 9),
    st.sampled_from(range(len(WORKFLOWS))),
    days,
    days,
    st.booleans(),
    st.integers(1, 4),
)
def test_the_columns_count_what_build_report_counts(
    groups: list[Any],
    data: st.DataObject,
    chunk: int,
    w: int,
    date_from: date | None,
    date_to: date | None,
    aggregate: bool,
    min_count: int,
) -> None:
    specs = [spec for group in groups for spec in group]
    tracked, texts = _tracked(specs, data.draw(st.lists(labels, min_size=len(specs), max_size=len(specs))))
    workflow = WORKFLOWS[w]
    received = [t.case.submitted_at for t in tracked if t.case.submitted_at is not None]
    if received and data.draw(st.booleans()):  # a boundary on a case's own local receipt day
        zone = ZoneInfo(calendar_named(workflow, workflow.report.calendar).timezone)
        day = data.draw(st.sampled_from(received)).astimezone(zone).date()
        date_from, date_to = data.draw(st.sampled_from([(day, None), (None, day), (day, day)]))
    options: dict[str, Any] = {"date_from": date_from, "date_to": date_to, "aggregate": aggregate}
    if data.draw(st.booleans()):
        options["provider_of"] = lambda case: (
            "Meta" if case.provider in ("Facebook", "Meta Platforms") else case.provider
        )
    want = build_report(list(zip(tracked, map(read, texts), strict=True)), workflow, NOW, by=BY,
                        min_count=min_count, **options)  # fmt: skip
    got = columns_report(tracked, texts, workflow, NOW, chunk, min_count=min_count, **options)
    assert _canonical(got) == _canonical(want)


def test_a_history_the_columns_cannot_read_is_read_the_ordinary_way() -> None:
    specs = [(86400.0 * (10 + i), [], None, 0) for i in range(6)]
    tracked, _texts = _tracked(specs, [(0, 0, 0, 0)] * 6)
    sent = [NOW - timedelta(days=10 + i) for i in range(6)]
    texts = [stored([StatusChange(at, "submitted"), StatusChange(at + timedelta(days=3), "fulfilled")]) for at in sent]
    bad = dict(enumerate(texts))
    bad[2] = json.dumps(list(reversed(json.loads(texts[2]))))  # unsorted: the columns leave it
    bad[4] = texts[4].replace('"fulfilled"]', '"no such state"]')  # a state the workflow does not name
    asked: list[int] = []

    def history_of(i: int) -> list[StatusChange]:
        asked.append(i)
        return read(bad[i])

    rows = [bad[i] for i in range(6)]
    got = columns_report(tracked, rows, WORKFLOWS[0], NOW, 6, history_of=history_of)
    want = build_report(list(zip(tracked, map(read, rows), strict=True)), WORKFLOWS[0], NOW, by=BY)
    assert _canonical(got) == _canonical(want)
    assert set(asked) == {2, 4}
    assert got.total.counts["answered_full"] == 5  # the renamed state is no fulfilment: worth comparing


def test_a_repeated_reference_or_a_receipt_outside_1700_2199_is_not_columnar() -> None:
    specs = [(86400.0 * 3, [(3600.0, "submitted")], None, 0)] * 2
    tracked, texts = _tracked(specs, [(0, 0, 0, 0)] * 2)
    twice = [tracked[0], replace(tracked[1], case=tracked[0].case)]
    with pytest.raises(NotColumnar, match="share a reference"):
        columns_report(twice, texts, WORKFLOWS[0], NOW, 2)
    # beyond these years an instant's float seconds are no longer exact from its microseconds
    for at, then in [(datetime(2201, 1, 5, 9, tzinfo=UTC), 30), (datetime(1699, 12, 31, 20, tzinfo=UTC), 10)]:
        moved = [replace(t, case=t.case.model_copy(update={"submitted_at": at})) for t in tracked]
        history = stored([StatusChange(at, "submitted")])
        with pytest.raises(NotColumnar, match="1700-2199"):
            columns_report(moved, [history, history], WORKFLOWS[1], at + timedelta(days=then), 2)
    at = datetime(1700, 1, 1, tzinfo=UTC)  # the first instant taken
    moved = [replace(t, case=t.case.model_copy(update={"submitted_at": at})) for t in tracked]
    history = stored([StatusChange(at, "submitted")])
    got = columns_report(moved, [history, history], WORKFLOWS[1], at + timedelta(days=10), 2)
    want = build_report(
        [(t, [StatusChange(at, "submitted")]) for t in moved], WORKFLOWS[1], at + timedelta(days=10), by=BY
    )
    assert _canonical(got) == _canonical(want) and got.total.counts["requests"] == 2


instants = st.floats(min_value=-86400.0 * 400, max_value=86400.0 * 400, allow_nan=False)


@given(st.sampled_from(WORKFLOWS), st.lists(st.tuples(instants, instants), min_size=1, max_size=30))
def test_working_between_is_the_timelines_between_to_the_last_bit(workflow: Workflow, pairs: list[Any]) -> None:
    timeline = timeline_for(calendar_named(workflow, workflow.report.calendar))
    a = np.array([NOW.timestamp() + x for x, _ in pairs])
    b = np.array([NOW.timestamp() + y for _, y in pairs])
    want = [timeline.between(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    assert working_between(timeline, a, b).tolist() == want
    assert isinstance(timeline, BusinessTimeline) or want == (b - a).tolist()


def test_the_cases_used_are_real_cases() -> None:
    # the strategy's cases validate as stored cases do (a Case built by model_copy skips validation)
    tracked, _texts = _tracked([(86400.0, [], 3600.0, 1)], [(1, 2, 1, 2)])
    case = tracked[0].case
    assert Case.model_validate_json(case.model_dump_json()) == case

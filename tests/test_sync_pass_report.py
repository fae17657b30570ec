"""What `casebridge sync --json` reports, and how the read-only commands read history (issue 19, the
sync job's mutation run): the report's fields are an interface (scripts and monitoring read them by
name), a connector bug is reported in words an administrator can act on, and `status`/`escalate` read
every history in one query on the embedded tracker and one by one only for a case the bulk read missed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from casebridge.app.sync_plan import evaluate_cases, history_reader
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import NotFoundError
from casebridge.workflows.cases import StatusChange, TrackedCase
from tests.factories import T0, make_case
from tests.test_sync_behaviours import Buggy
from tests.test_sync_support import WORKFLOW, CountingTracker, Env, seeded_env

NOW = T0 + timedelta(days=3)
REPORT_FIELDS = [
    "now", "dry_run", "full", "listed", "evaluated", "history_reads", "actions", "applied", "failures",
    "duplicates", "recovered", "stopped", "watermark", "links", "providers", "reminders", "reminded",
]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return seeded_env(tmp_path)


def test_the_json_report_names_every_field_and_the_watermark_it_moved_to(env: Env) -> None:
    report = env.sync(NOW)
    out = report.to_json()
    assert list(out) == REPORT_FIELDS
    assert report.watermark is not None and out["watermark"] == report.watermark.isoformat()
    assert out["now"] == NOW.isoformat() and (out["dry_run"], out["full"], out["stopped"]) == (False, False, False)
    assert out["listed"] == out["evaluated"] == 12 and out["history_reads"] == 12
    assert out["applied"] == len(out["actions"]) > 0 and out["failures"] == {} and out["duplicates"] == {}
    assert out["recovered"] == {"completed": 0, "dropped": 0}
    assert out["links"] == [] and out["providers"] == [] and isinstance(out["reminders"], list)
    assert out["reminded"] == []


def test_without_reminders_the_report_says_none_were_planned_and_a_held_watermark_is_null(env: Env) -> None:
    planned = env.sync(NOW, dry_run=True).plan.actions
    report = env.sync(NOW, Buggy(env.tracker(), planned[0].key), remind=False)
    out = report.to_json()
    assert out["reminders"] is None  # --no-remind: not an empty list, "not asked"
    assert out["watermark"] is None  # a case failed: the watermark stays where it was (none yet)
    assert list(out["failures"]) == [planned[0].reference]


def test_a_connector_bug_is_reported_in_one_line_saying_what_to_do(env: Env) -> None:
    planned = env.sync(NOW, dry_run=True).plan.actions
    report = env.sync(NOW, Buggy(env.tracker(), planned[0].key))
    assert report.result.failures[planned[0].reference] == (
        "the local connector failed unexpectedly (KeyError: 'custom_fields'); the write may or may not have "
        "landed: the next run checks (run with -v for the traceback)"
    )


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[LocalConnector]:
    connector = LocalConnector(LocalConfig(path=str(tmp_path / "t.db")), WORKFLOW)
    connector.use_clock(lambda: T0)
    yield connector
    connector.close()


def _listed(tracker: LocalConnector) -> list[TrackedCase]:
    return list(tracker.list_cases())


def test_status_reads_every_history_in_one_query_and_a_case_the_bulk_read_missed_by_itself(
    tracker: LocalConnector,
) -> None:
    for n in (1, 2):
        tracker.create_case(make_case(f"FIA-H-{n}"))
    counting = CountingTracker(tracker)
    read = history_reader(counting)  # type: ignore[arg-type]  # a proxy with the connector's methods
    first, second = _listed(tracker)
    assert read(first) == [StatusChange(T0, "draft")] and read(second) == [StatusChange(T0, "draft")]
    assert (counting.calls["read_all_histories"], counting.calls["read_history"]) == (1, 0)
    late = tracker.create_case(make_case("FIA-H-3"), at=T0 + timedelta(hours=1))  # after the bulk read
    listed_late = next(t for t in _listed(tracker) if t.key == late.key)
    assert read(listed_late) == [StatusChange(T0 + timedelta(hours=1), "draft")]
    assert (counting.calls["read_all_histories"], counting.calls["read_history"]) == (1, 1)


def test_evaluating_cases_reports_a_case_whose_history_cannot_be_read_and_evaluates_the_rest(
    tracker: LocalConnector,
) -> None:
    for n in (1, 2):
        tracker.create_case(make_case(f"FIA-E-{n}"))
    first, second = _listed(tracker)

    def history_of(tracked: TrackedCase) -> list[StatusChange]:
        if tracked.key == first.key:
            raise NotFoundError("local tracker: no case with key 1")
        return tracker.read_history(tracked.key)

    evaluations, failures = evaluate_cases([first, second], history_of, WORKFLOW, NOW)
    assert [e.tracked.key for e in evaluations] == [second.key]
    assert failures == {"FIA-E-1": "local tracker: no case with key 1"}

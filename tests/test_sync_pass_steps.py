"""Steps of a sync pass an administrator relies on (issue 19, the sync job's mutation run): closed cases
nobody touched are not re-evaluated; the progress bar gets the writes and says what it is doing; a stop
request says how far the pass got; a failed re-read after a write is logged and only costs a history
read; a tracker that reads back by key is asked by key; reminders interrupted by a killed run are resolved
by the next pass, an unconfirmed one is not posted again, each post is audited and retried like a write."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from casebridge.app.intents import SET_FIELDS
from casebridge.app.remind import REMINDER_POST
from casebridge.app.sync_plan import SetFields, SyncResult
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import EXIT_CASES_FAILED, RejectedError, TransientError
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions, SyncReport
from casebridge.workflows.cases import ClockFields, SlaFields, TrackedCase
from casebridge.workflows.reminders import PlannedReminder
from tests.factories import T0
from tests.test_reminders import DUE, RECEIVED, REF, WF, preservation
from tests.test_sync_behaviours import Buggy, DeletesMidRun
from tests.test_sync_support import NO_SLEEP, WORKFLOW, CountingTracker, Env, seeded_env

NOW = T0 + timedelta(days=3)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return seeded_env(tmp_path)


def test_a_closed_case_nobody_touched_is_not_evaluated_again(env: Env) -> None:
    env.sync(NOW)
    tracker = env.tracker(NOW)
    cases = list(tracker.list_cases())
    closed = sum(1 for t in cases if WORKFLOW.states[t.state].terminal)
    tracker.close()
    assert 0 < closed < len(cases)  # the seeded cases have both
    for hours in range(1, 6):  # the listing overlap re-lists the last pass's own writes, until none
        quiet = env.sync(NOW + timedelta(hours=hours))
        if quiet.listed == 0:
            break
    assert quiet.listed == 0 and quiet.plan.evaluated == len(cases) - closed


def test_the_progress_bar_gets_every_write_and_says_what_it_is_doing(env: Env) -> None:
    shown: list[tuple[list[str], str]] = []

    def progress(actions: list[SetFields], label: str) -> Iterable[SetFields]:
        shown.append(([a.key for a in actions], label))
        return actions

    tracker, store, audit = env.tracker(), StateStore(env.state_path), AuditLog(env.audit_path)
    try:
        report = SyncJob(tracker, WORKFLOW, store, audit, SyncOptions(retry=NO_SLEEP), progress=progress).run(NOW)
    finally:
        tracker.close(), store.close(), audit.close()
    assert shown == [([a.key for a in report.plan.actions], "writing SLA fields")]
    assert len(report.result.applied) == len(report.plan.actions) > 0


def test_a_stop_request_says_how_many_writes_were_made(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    asked = iter([False, False, True])
    tracker, store, audit = env.tracker(), StateStore(env.state_path), AuditLog(env.audit_path)
    try:
        with caplog.at_level(logging.INFO, logger="casebridge.sync"):
            job = SyncJob(tracker, WORKFLOW, store, audit, SyncOptions(retry=NO_SLEEP), should_stop=lambda: next(asked))
            report = job.run(NOW)
    finally:
        tracker.close(), store.close(), audit.close()
    assert report.stopped and len(report.result.applied) == 2
    assert f"stop requested: 2 of {len(report.plan.actions)} actions applied" in [
        r.getMessage() for r in caplog.records
    ]


def test_a_failed_re_read_after_a_write_is_logged_and_only_costs_a_history_read(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    planned = env.sync(NOW, dry_run=True).plan.actions
    first = planned[0]
    with caplog.at_level(logging.INFO, logger="casebridge.sync"):
        report = env.sync(NOW, Buggy(env.tracker(), first.reference, "find_case"))  # get_case reads by reference
    assert report.exit_code == 0 and len(report.result.applied) == len(planned)
    messages = [r.getMessage() for r in caplog.records]
    expected = f"{first.reference}: updated_at after write unknown ('custom_fields'); history re-read next pass"
    assert expected in messages
    assert env.sync(NOW).history_reads == 1  # that case only: the others' re-read recorded their own write


class ReadsByKey(LocalConnector):
    """The embedded tracker reading an item back by its key, as the Jira connector does."""

    def get_case(self, key: str, reference: str) -> TrackedCase | None:
        return self._tracked(self._row(key))


def test_a_tracker_that_reads_back_by_key_is_asked_by_key_and_the_next_pass_reads_no_history(tmp_path: Path) -> None:
    env = seeded_env(tmp_path)
    tracker = ReadsByKey(LocalConfig(path=str(env.tracker_path)), WORKFLOW)
    try:
        first = env.sync(NOW, tracker)
        assert first.exit_code == 0 and first.result.applied
        assert env.sync(NOW + timedelta(minutes=1), tracker).history_reads == 0
    finally:
        tracker.close()


def test_a_failure_given_in_words_counts_as_a_failed_case() -> None:
    result = SyncResult()
    result.fail("FIA-1", "an earlier write is not confirmed yet (tracker unreachable); retried next run")
    result.fail("FIA-2", TransientError("HTTP 503"))
    assert result.exit_codes == {"FIA-1": EXIT_CASES_FAILED, "FIA-2": TransientError.exit_code} and not result.ok


def test_what_a_planned_write_says_names_the_counting_rule_and_shows_the_old_due_in_the_cases_zone() -> None:
    old_due, new_due = datetime(2026, 12, 1, 8, 0, tzinfo=UTC), datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    before = SlaFields({"legal": ClockFields(old_due, None, "running")})
    after = SlaFields({"legal": ClockFields(new_due, None, "running"), "ack": ClockFields(None, None, "stopped")})
    action = SetFields("7", "FIA-1", after, before, "Asia/Karachi", {"legal": "eu-1182-71", "ack": "eu-1182-71"})
    assert action.describe() == (
        "set FIA-1: ack: (none) -> stopped due -; "
        "legal: running due 2026-12-01T13:00:00+05:00 -> running due 2026-12-03T13:00:00+05:00 (counted eu-1182-71)"
    )


# ---------------------------------------------------------------------------------- reminders in a pass
class FlakyReminders(LocalConnector):
    """The embedded tracker whose comment API answers 503 to the first post, or whose lookups fail."""

    fail_posts = 0
    lookups_down = False

    def post_reminder(self, key: str, markdown: str, *, notify: frozenset[str] = frozenset()) -> None:
        if self.fail_posts:
            self.fail_posts -= 1
            raise TransientError("HTTP 503 on the comment")
        super().post_reminder(key, markdown, notify=notify)

    def has_comment_marker(self, key: str, marker: str) -> bool:
        if self.lookups_down:
            raise TransientError("HTTP 503 on the search")
        return super().has_comment_marker(key, marker)


@pytest.fixture
def reminding(tmp_path: Path) -> Iterator[tuple[FlakyReminders, StateStore, AuditLog]]:
    tracker = FlakyReminders(LocalConfig(path=str(tmp_path / "t.db")), WF)
    tracker.create_case(preservation().case, state="acknowledged", at=RECEIVED)
    store, audit = StateStore(tmp_path / "state.db"), AuditLog(tmp_path / "audit.db")
    yield tracker, store, audit
    tracker.close(), store.close(), audit.close()


REMIND_AT = DUE - timedelta(days=13)


def _pass(parts: tuple[FlakyReminders, StateStore, AuditLog], now: datetime = REMIND_AT) -> SyncReport:
    tracker, store, audit = parts
    return SyncJob(tracker, WF, store, audit, SyncOptions(retry=NO_SLEEP)).run(now)


def _interrupted(parts: tuple[FlakyReminders, StateStore, AuditLog], landed: bool) -> str:
    tracker, _store, audit = parts
    (item,) = _pass_plan(parts)
    audit.begin_intent(REMINDER_POST, {"dedupe_key": item.dedupe_key, "marker": item.marker, "case_key": item.case_key})
    if landed:
        tracker.post_reminder(item.case_key, item.markdown)
    return item.dedupe_key


def _pass_plan(parts: tuple[FlakyReminders, StateStore, AuditLog]) -> list[PlannedReminder]:
    tracker, store, audit = parts
    return SyncJob(tracker, WF, store, audit, SyncOptions(dry_run=True)).run(REMIND_AT).reminders


def test_a_reminder_posted_by_a_killed_run_is_recorded_by_the_next_pass_and_not_posted_again(
    reminding: tuple[FlakyReminders, StateStore, AuditLog],
) -> None:
    key = _interrupted(reminding, landed=True)
    report = _pass(reminding)
    assert (report.reminder_recovery.completed, report.reminder_recovery.dropped) == (1, 0)
    assert [(o.dedupe_key, o.status) for o in report.reminded] == [(key, "already_posted")]
    tracker = reminding[0]
    assert len(tracker.comments(tracker.find_case(REF).key)) == 1  # type: ignore[union-attr]


def test_a_reminder_whose_earlier_post_cannot_be_checked_is_not_posted_again_this_pass(
    reminding: tuple[FlakyReminders, StateStore, AuditLog],
) -> None:
    tracker, _store, audit = reminding
    key = _interrupted(reminding, landed=False)
    tracker.lookups_down = True
    report = _pass(reminding)
    assert report.reminder_recovery.unresolved == {key}
    assert [(o.dedupe_key, o.status) for o in report.reminded] == [(key, "unresolved")]
    assert len(audit.pending()) == 1 and tracker.comments(tracker.find_case(REF).key) == []  # type: ignore[union-attr]


def test_a_reminder_post_answered_503_is_retried_and_audited_once(
    reminding: tuple[FlakyReminders, StateStore, AuditLog],
) -> None:
    tracker, _store, audit = reminding
    tracker.fail_posts = 1
    report = _pass(reminding)
    assert [o.status for o in report.reminded] == ["posted"] and report.exit_code == 0
    assert [r["kind"] for r in audit.records()].count(REMINDER_POST) == 1 and audit.pending() == []


def test_a_stop_request_during_the_reminders_posts_no_more_of_them(
    reminding: tuple[FlakyReminders, StateStore, AuditLog],
) -> None:
    tracker, store, audit = reminding
    writes = len(SyncJob(tracker, WF, store, audit, SyncOptions(dry_run=True)).run(REMIND_AT).plan.actions)
    asked = {"n": 0}

    def stop_once_the_writes_are_done() -> bool:  # asked before each write, then before each reminder
        asked["n"] += 1
        return asked["n"] > writes

    job = SyncJob(tracker, WF, store, audit, SyncOptions(retry=NO_SLEEP), should_stop=stop_once_the_writes_are_done)
    report = job.run(REMIND_AT)
    assert not report.stopped and len(report.result.applied) == writes
    assert report.reminders and report.reminded == []


# ---------------------------------------------------------------------------------- what a write leaves
def test_each_write_is_audited_with_the_case_and_the_rule_each_due_instant_was_counted_by(env: Env) -> None:
    report = env.sync(NOW)
    audit = AuditLog(env.audit_path)
    try:
        written = {r["data"]["key"]: r["data"] for r in audit.records() if r["kind"] == SET_FIELDS}
    finally:
        audit.close()
    assert set(written) == {a.key for a in report.result.applied}
    for action in report.result.applied:
        data = written[action.key]
        assert data["reference"] == action.reference and data["evaluated_at"] == NOW.isoformat()
        assert data.get("counting") == (action.counting or None)  # stated only when there is a rule to state
    assert any(a.counting for a in report.result.applied)


class Refuses(CountingTracker):
    """A tracker that refuses the write on one case (a 422 with its own words)."""

    def __init__(self, inner: object, key: str) -> None:
        super().__init__(inner)
        object.__setattr__(self, "bad_key", key)

    def _call(self, name, attr, args, kwargs):
        if name == "set_sla_fields" and args[0] == self.bad_key:
            raise RejectedError("field 'SLA due' is not on the screen")
        return super()._call(name, attr, args, kwargs)


def test_a_refused_write_is_logged_by_the_cases_reference(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    refused = env.sync(NOW, dry_run=True).plan.actions[0]
    with caplog.at_level(logging.WARNING, logger="casebridge.sync"):
        env.sync(NOW, Refuses(env.tracker(), refused.key))
    assert f"{refused.reference}: field 'SLA due' is not on the screen" in [r.getMessage() for r in caplog.records]


def test_a_case_deleted_mid_run_is_logged_by_its_reference_and_key(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    planned = env.sync(NOW, dry_run=True).plan.actions
    gone = planned[1]
    with caplog.at_level(logging.WARNING, logger="casebridge.sync"):
        env.sync(NOW, DeletesMidRun(env.tracker(), planned[0].key, gone.key, env.tracker_path))
    messages = [r.getMessage() for r in caplog.records]
    assert f"{gone.reference}: no longer in the tracker (key {gone.key}); forgotten" in messages

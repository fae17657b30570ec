"""Sync behaviours an administrator relies on (issue 19): a connector's own bug in one case fails that
case with a clear message and the run goes on; a case moved between our write and the re-read is not
recorded as fresh; a case deleted mid-run does not stop the writes after it; --dry-run with a pending
intent writes nothing; what a planned write says; where the watermark goes; a failed link is retried."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from casebridge.app.intents import SET_FIELDS, intent_data
from casebridge.app.sync_plan import SetFields
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import TransientError
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions
from casebridge.workflows.cases import ClockFields, SlaFields
from casebridge.workflows.directory import load_directory
from tests.factories import T0, make_case
from tests.test_sync_support import NO_SLEEP, WORKFLOW, CountingTracker, Env, check_invariants, seeded_env

NOW = T0 + timedelta(days=3)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return seeded_env(tmp_path)


class Buggy(CountingTracker):
    """A connector whose response parser breaks on one case (a KeyError, not a casebridge error)."""

    def __init__(self, inner: object, key: str, method: str = "set_sla_fields") -> None:
        super().__init__(inner)
        object.__setattr__(self, "bad_key", key)
        object.__setattr__(self, "bad_method", method)

    def _call(self, name, attr, args, kwargs):
        if name == self.bad_method and args and args[0] == self.bad_key:
            raise KeyError("custom_fields")
        return super()._call(name, attr, args, kwargs)


def test_a_connector_bug_in_one_case_fails_that_case_clearly_and_the_run_goes_on(env: Env) -> None:
    planned = env.sync(NOW, dry_run=True).plan.actions
    bad = planned[len(planned) // 2]
    report = env.sync(NOW, Buggy(env.tracker(), bad.key))
    assert [a.key for a in report.result.applied] == [a.key for a in planned if a.key != bad.key]
    message = report.result.failures[bad.reference]
    assert "KeyError" in message and "custom_fields" in message and "connector" in message
    assert report.exit_code == 1
    store = StateStore(env.state_path)
    assert store.watermark() is None  # not past a case that was not written
    store.close()
    again = env.sync(NOW)  # the bug is gone: the next run writes that case, the watermark moves
    assert again.exit_code == 0 and [a.key for a in again.plan.actions] == [bad.key]
    assert check_invariants(env, NOW).ok


def test_a_connector_bug_while_re_reading_a_written_case_only_costs_a_history_read(env: Env) -> None:
    planned = env.sync(NOW, dry_run=True).plan.actions
    report = env.sync(NOW, Buggy(env.tracker(), planned[0].key, "get_case"))
    assert report.exit_code == 0 and len(report.result.applied) == len(planned)
    assert check_invariants(env, NOW).ok


class MovesOnWrite(CountingTracker):
    """Someone moves the case in the tracker between our write and our re-read of it."""

    def __init__(self, inner: object, key: str) -> None:
        super().__init__(inner)
        object.__setattr__(self, "moved_key", key)

    def _call(self, name, attr, args, kwargs):
        result = super()._call(name, attr, args, kwargs)
        if name == "set_sla_fields" and args[0] == self.moved_key:
            self.inner.transition(self.moved_key, "awaiting_requester", at=NOW)
        return result


def test_a_case_moved_between_our_write_and_the_re_read_is_not_recorded_as_fresh(env: Env) -> None:
    planned = env.sync(NOW, dry_run=True).plan.actions
    tracker = env.tracker()
    moved = next(a for a in planned if WORKFLOW.can_transition(tracker.get_case(a.key, a.reference).state,
                                                                    "awaiting_requester"))  # fmt: skip
    tracker.close()
    env.sync(NOW, MovesOnWrite(env.tracker(), moved.key))
    store = StateStore(env.state_path)
    cached = store.load()
    store.close()
    assert cached[moved.key].tracked.updated_at != env.tracker().get_case(moved.key, moved.reference).updated_at
    report = env.sync(NOW)
    assert report.history_reads == 1  # the moved case's history is read again, and only that one
    assert check_invariants(env, NOW).ok


def test_dry_run_with_a_pending_intent_writes_nothing(env: Env) -> None:
    planned = env.sync(NOW, dry_run=True).plan.actions
    audit = AuditLog(env.audit_path)
    audit.begin_intent(SET_FIELDS, intent_data(planned[0].key, planned[0].reference, planned[0].sla, NOW))
    audit.close()
    tracker = CountingTracker(env.tracker())
    env.sync(NOW, tracker, dry_run=True)
    assert tracker.writes == 0
    audit = AuditLog(env.audit_path)
    assert len(audit.pending()) == 1 and list(audit.records()) == []
    audit.close()


class DeletesMidRun(CountingTracker):
    """Someone deletes a case in the tracker while the pass is writing the cases before it."""

    def __init__(self, inner: object, after_key: str, gone_key: str, path: Path) -> None:
        super().__init__(inner)
        object.__setattr__(self, "after_key", after_key)
        object.__setattr__(self, "gone_key", gone_key)
        object.__setattr__(self, "path", path)

    def _call(self, name, attr, args, kwargs):
        result = super()._call(name, attr, args, kwargs)
        if name == "set_sla_fields" and args[0] == self.after_key:
            with sqlite3.connect(self.path) as db:
                db.execute("DELETE FROM history WHERE case_id = ?", (self.gone_key,))
                db.execute("DELETE FROM cases WHERE id = ?", (self.gone_key,))
        return result


def test_a_case_deleted_mid_run_is_forgotten_and_the_cases_after_it_are_still_written(env: Env) -> None:
    planned = env.sync(NOW, dry_run=True).plan.actions
    assert len(planned) >= 3
    gone = planned[1]
    report = env.sync(NOW, DeletesMidRun(env.tracker(), planned[0].key, gone.key, env.tracker_path))
    assert [a.key for a in report.result.applied] == [a.key for a in planned if a.key != gone.key]
    assert report.exit_code == 0 and not report.result.failures
    store = StateStore(env.state_path)
    assert gone.key not in store.load()  # forgotten: it must not fail every later pass
    assert store.watermark() is not None and store.watermark() == report.watermark  # every case there was written
    store.close()
    audit = AuditLog(env.audit_path)
    written = [r["data"]["key"] for r in audit.records() if r["kind"] == SET_FIELDS]
    assert audit.pending() == [] and gone.key not in written and len(written) == len(planned) - 1
    audit.close()
    assert env.sync(NOW).plan.actions == []  # nothing left over for the next pass


def test_what_a_planned_write_says_shows_each_changed_clock_in_the_cases_zone() -> None:
    due = datetime(2026, 12, 31, 8, 0, tzinfo=UTC)
    before = SlaFields({"legal": ClockFields(None, None, "paused")}, escalation_level=0)
    after = SlaFields(
        {
            "legal": ClockFields(due, due - timedelta(days=2), "running"),
            "followup": ClockFields(None, None, "not_started"),  # does not run for this case: not news
        },
        escalation_level=1,
    )
    action = SetFields("7", "FIA-1", after, before, "Asia/Karachi")
    assert action.describe() == (
        "set FIA-1: legal: paused due - -> running due 2026-12-31T13:00:00+05:00; escalation level 0 -> 1"
    )
    assert action.to_json() == {
        "action": "set_fields",
        "reference": "FIA-1",
        "key": "7",
        "clocks": {
            "followup": {"due_at": None, "warn_at": None, "state": "not_started"},
            "legal": {
                "due_at": "2026-12-31T08:00:00+00:00",
                "warn_at": "2026-12-29T08:00:00+00:00",
                "state": "running",
            },
        },
        "escalation_level": 1,
        "counting": {},  # both clocks count elapsed time: no rule to state
    }
    first = SetFields("8", "FIA-2", SlaFields({"followup": ClockFields(None, None, "not_started")}), SlaFields())
    assert first.describe() == "set FIA-2: initial fields"
    gone = SetFields("9", "FIA-3", SlaFields({"legal": ClockFields(None, None, "stopped")}), SlaFields())
    assert gone.describe() == "set FIA-3: legal: (none) -> stopped due -"


def _newest_update(env: Env) -> datetime:
    tracker = env.tracker()
    try:
        return max(t.updated_at for t in tracker.list_cases())
    finally:
        tracker.close()


def test_the_watermark_is_the_listing_time_by_our_clock_and_never_ahead_of_the_real_time(env: Env) -> None:
    newest = _newest_update(env)
    before = datetime.now(UTC)
    report = env.sync(NOW)
    after = datetime.now(UTC)
    # the newest change listed, or when the listing was taken (--now, but never past the real time)
    assert max(newest, min(NOW, before)) <= report.watermark <= max(newest, min(NOW, after))
    store = StateStore(env.state_path)
    assert store.watermark() == report.watermark
    store.close()
    what_if = after + timedelta(days=400)  # a what-if --now far ahead must not skip real updates later
    newest = _newest_update(env)
    report = env.sync(what_if)
    assert report.exit_code == 0 and report.watermark is not None
    assert report.watermark <= max(datetime.now(UTC), newest)


def test_a_pass_at_an_earlier_now_never_moves_the_watermark_back(env: Env) -> None:
    env.sync(NOW)
    later = NOW + timedelta(days=1)
    store = StateStore(env.state_path)
    store.set_watermark(later)  # a pass already ran with a later --now
    store.close()
    replay = env.sync(NOW)  # lists nothing new, writes nothing
    assert replay.exit_code == 0 and replay.listed == 0 and replay.plan.actions == []
    store = StateStore(env.state_path)
    assert replay.watermark == store.watermark() == later
    store.close()


class LinkDown(LocalConnector):
    """The embedded tracker with its relation API down for a while."""

    down = True

    def link_cases(self, key_a: str, key_b: str, *, note: str) -> None:
        if LinkDown.down:
            raise TransientError("tracker answered 503 on the relation")
        super().link_cases(key_a, key_b, note=note)


def test_a_failed_link_fails_the_first_case_records_nothing_and_is_linked_by_the_next_pass(tmp_path: Path) -> None:
    tracker = LinkDown(LocalConfig(path=str(tmp_path / "t.db")), WORKFLOW)
    store, audit = StateStore(tmp_path / "state.db"), AuditLog(tmp_path / "audit.db")
    try:
        for ref, phone in (("R-1", "+92 300 1234567"), ("R-2", "00923001234567")):
            tracker.create_case(make_case(ref, identifiers=[{"type": "phone", "value": phone}]))
        one, two = tracker.find_case("R-1"), tracker.find_case("R-2")
        assert one is not None and two is not None
        options, directory = SyncOptions(retry=NO_SLEEP), load_directory()
        job = lambda: SyncJob(tracker, WORKFLOW, store, audit, options, directory=directory)  # noqa: E731
        LinkDown.down = True
        failed = job().run(NOW)
        assert failed.links == [] and failed.result.failures == {"R-1": "tracker answered 503 on the relation"}
        assert failed.exit_code > 0 and store.watermark() is None  # not past a pass that did not finish
        assert store.linked_pairs() == set() and not [r for r in audit.records() if r["kind"] == "sync.link"]
        LinkDown.down = False
        linked = job().run(NOW)
        assert [(p.reference_a, p.reference_b) for p in linked.links] == [("R-1", "R-2")] and linked.exit_code == 0
        assert tracker.linked_cases(one.key) == [two.key] and store.linked_pairs() == {(one.key, two.key)}
        [record] = [r["data"] for r in audit.records() if r["kind"] == "sync.link"]
        assert record == {"keys": [one.key, two.key], "references": ["R-1", "R-2"]}
        assert job().run(NOW).links == []  # once
    finally:
        LinkDown.down = True
        tracker.close()
        store.close()
        audit.close()

"""The incremental pass on the embedded tracker: what it reads, what it writes, when the watermark moves."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from casebridge.errors import SafetyValveError, TrackerUnreachable
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.workflows.cases import TrackedCase
from tests.factories import T0, make_case
from tests.test_sync_support import (
    CountingTracker,
    Env,
    check_invariants,
    seeded_env,
)

NOW = T0 + timedelta(days=3)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return seeded_env(tmp_path)


def counted(env: Env) -> CountingTracker:
    return CountingTracker(env.tracker())


def test_first_pass_writes_then_no_change_pass_costs_one_listing_and_no_write(env: Env) -> None:
    first = counted(env)
    report = env.sync(NOW, first)
    assert report.exit_code == 0 and len(report.result.applied) > 0
    assert first.writes == len(report.result.applied)
    again = counted(env)
    report = env.sync(NOW, again)
    assert report.plan.actions == [] and report.history_reads == 0
    assert dict(again.calls) == {"list_cases": 1}
    assert check_invariants(env, NOW).ok


def test_time_passing_crosses_thresholds_without_any_tracker_change(env: Env) -> None:
    env.sync(NOW)
    later = NOW + timedelta(days=40)
    tracker = counted(env)
    report = env.sync(later, tracker)
    # nothing changed in the tracker since the watermark, yet clocks crossed warn/due times
    assert report.history_reads == 0 and tracker.calls["read_history"] == 0
    assert report.result.applied, "40 days later some clock must be at risk or breached"
    assert check_invariants(env, later).ok


def test_only_the_moved_case_has_its_history_read(env: Env) -> None:
    env.sync(NOW)
    tracker = env.tracker(NOW + timedelta(hours=1))
    case = next(t for t in tracker.list_cases() if t.state == "submitted" or t.state == "acknowledged")
    tracker.transition(case.key, "awaiting_requester", at=NOW + timedelta(hours=1))
    tracker.close()
    proxy = counted(env)
    report = env.sync(NOW + timedelta(hours=2), proxy)
    assert proxy.calls["read_history"] == 1 and report.history_reads == 1
    assert check_invariants(env, NOW + timedelta(hours=2)).ok


def test_our_own_write_does_not_cause_a_history_read_next_pass(env: Env) -> None:
    env.sync(NOW)
    store = StateStore(env.state_path)
    cached = store.load()
    store.close()
    tracker = env.tracker()
    listed = {t.key: t.updated_at for t in tracker.list_cases()}
    tracker.close()
    # the store recorded the post-write updated_at of every case we wrote
    assert all(cached[k].history_for and cached[k].tracked.updated_at == at for k, at in listed.items())


def test_dry_run_writes_nothing_anywhere(env: Env) -> None:
    tracker = counted(env)
    report = env.sync(NOW, tracker, dry_run=True)
    assert report.plan.actions and tracker.writes == 0 and not report.result.applied
    store = StateStore(env.state_path)
    assert store.count() == 0 and store.watermark() is None
    store.close()
    audit = AuditLog(env.audit_path)
    assert list(audit.records()) == [] and audit.pending() == []
    audit.close()


class FailOne(CountingTracker):
    def __init__(self, inner: object, reference: str) -> None:
        super().__init__(inner)
        object.__setattr__(self, "reference", reference)

    def _call(self, name, attr, args, kwargs):
        if name == "set_sla_fields" and args[0] == self.reference:
            raise TrackerUnreachable("connection refused (injected)")
        return super()._call(name, attr, args, kwargs)


def test_one_failing_case_never_stops_the_others_and_holds_the_watermark(env: Env) -> None:
    tracker = FailOne(env.tracker(), "3")
    report = env.sync(NOW, tracker)
    failed = [a for a in report.plan.actions if a.key == "3"]
    assert failed and len(report.result.applied) == len(report.plan.actions) - 1
    assert report.exit_code == 3  # unreachable wins over "some cases failed"
    store = StateStore(env.state_path)
    assert store.watermark() is None
    store.close()
    report = env.sync(NOW)
    assert report.exit_code == 0 and [a.key for a in report.plan.actions] == ["3"]
    assert report.watermark is not None
    assert check_invariants(env, NOW).ok


def test_safety_valve_refuses_an_empty_tracker_unless_forced(env: Env) -> None:
    env.sync(NOW)
    db = sqlite3.connect(env.tracker_path)
    db.executescript("DELETE FROM write_log; DELETE FROM history; DELETE FROM cases;")  # the tracker "vanished"
    db.close()
    # a full listing (sync --full, or a store without watermark) that suddenly finds nothing
    with pytest.raises(SafetyValveError, match=r"knows 12.*--force"):
        env.sync(NOW + timedelta(hours=1), full=True, safety_valve=10)
    store = StateStore(env.state_path)
    assert store.count() == 12  # refused before touching anything
    store.close()
    report = env.sync(NOW + timedelta(hours=1), full=True, safety_valve=10, force=True)
    assert report.exit_code == 0 and report.listed == 0


def test_full_reconciles_fields_edited_behind_our_back(env: Env) -> None:
    env.sync(NOW)
    env.sync(NOW + timedelta(hours=1))
    env.sync(NOW + timedelta(hours=1, minutes=30))  # the watermark passes the first pass's writes
    tracker = env.tracker()
    victims = sorted((t.updated_at, t.key) for t in tracker.list_cases())[:2]
    tracker.close()
    keys = sorted(k for _, k in victims)
    db = sqlite3.connect(env.tracker_path)
    # a person (or a script) edits SLA fields without bumping updated_at
    db.executemany("UPDATE cases SET escalation_level = 7 WHERE id = ?", [(k,) for k in keys])
    db.commit()
    db.close()
    later = NOW + timedelta(hours=2)
    # an incremental pass trusts its cache for cases the tracker does not list as changed...
    assert not {a.key for a in env.sync(later).plan.actions} & set(keys)
    # ...a full pass rebuilds the cache from the tracker and fixes them
    report = env.sync(later, full=True)
    assert sorted(a.key for a in report.plan.actions) == keys
    assert report.exit_code == 0 and check_invariants(env, later).lost_updates == []


class Duplicating(CountingTracker):
    """A tracker where two items carry one reference (Jira/Redmine allow it; the local tracker does not):
    item 9999 mirrors item 1."""

    def _call(self, name, attr, args, kwargs):
        if name == "read_history" and args[0] == "9999":
            args = ("1",)
        if name == "set_sla_fields" and args[0] == "9999":
            return None
        result = super()._call(name, attr, args, kwargs)
        if name == "list_cases":
            first = next(t for t in result if t.key == "1")
            result.append(TrackedCase(key="9999", case=first.case, state=first.state, updated_at=first.updated_at))
        return result


def test_full_reports_cases_appearing_twice_under_one_reference(env: Env) -> None:
    report = env.sync(NOW, Duplicating(env.tracker()), full=True)
    assert report.duplicates == {"FIA-T-0000": ["1", "9999"]}
    assert report.exit_code == 1


def test_history_read_failure_skips_that_case_only(env: Env) -> None:
    class NoHistory(CountingTracker):
        def __getattr__(self, name):
            if name == "read_history":

                def fail(key: str) -> None:
                    raise TrackerUnreachable("connection refused (injected)")

                return fail
            if name == "read_all_histories":
                raise AttributeError(name)
            return super().__getattr__(name)

    report = env.sync(NOW, NoHistory(env.tracker()))
    assert len(report.result.failures) == 12 and report.plan.actions == []
    assert report.exit_code == 3


def test_sigterm_stops_between_actions_and_the_next_run_finishes(env: Env) -> None:
    from casebridge.state.lock import RunLock, lock_path_for
    from casebridge.sync import SyncJob, SyncOptions
    from tests.test_sync_support import NO_SLEEP, WORKFLOW

    tracker = counted(env)
    seen = iter(range(100))
    with RunLock(lock_path_for(env.state_path)):
        store, audit = StateStore(env.state_path), AuditLog(env.audit_path)
        job = SyncJob(tracker, WORKFLOW, store, audit, SyncOptions(retry=NO_SLEEP), should_stop=lambda: next(seen) >= 3)
        report = job.run(NOW)
        store.close()
        audit.close()
    assert report.stopped and len(report.result.applied) == 3 and report.exit_code == 0
    assert report.watermark is None or StateStore(env.state_path).watermark() is None
    report = env.sync(NOW)
    assert report.exit_code == 0 and check_invariants(env, NOW).ok


def test_case_without_policy_gets_no_write(tmp_path: Path) -> None:
    env = Env(tmp_path)
    tracker = env.tracker(T0)
    tracker.create_case(make_case("X-1"))
    tracker.close()
    report = env.sync(NOW)
    assert report.exit_code == 0


def test_case_deleted_in_the_tracker_is_forgotten_not_failed_forever(env: Env) -> None:
    env.sync(NOW)
    later = NOW + timedelta(days=60)
    gone = env.sync(later, dry_run=True).plan.actions[0].key  # a case whose clocks move by then
    db = sqlite3.connect(env.tracker_path)
    db.execute("DELETE FROM history WHERE case_id = ?", (gone,))
    db.execute("DELETE FROM cases WHERE id = ?", (gone,))
    db.commit()
    db.close()
    report = env.sync(later)
    assert report.exit_code == 0 and report.watermark is not None
    assert gone not in {a.key for a in report.result.applied}
    store = StateStore(env.state_path)
    assert gone not in store.load()
    store.close()
    assert env.sync(later + timedelta(days=1)).exit_code == 0


def test_a_move_stamped_in_the_same_instant_as_our_write_is_seen(env: Env) -> None:
    """Redmine keeps whole seconds: a person can move a case within the second we wrote its fields, so the
    case lists with the updated_at we recorded after our write. The cache must not be trusted then."""
    env.sync(NOW)
    tracker = env.tracker(NOW)
    moved = next(t for t in tracker.list_cases() if t.state in ("submitted", "acknowledged"))
    tracker.transition(moved.key, "awaiting_requester", at=NOW)  # same instant as our write
    tracker.close()
    report = env.sync(NOW)
    assert report.history_reads == 1
    assert check_invariants(env, NOW).ok


def test_history_that_comes_with_the_listing_costs_no_request(env: Env) -> None:
    """Jira lists issues with their changelog; the pass must not ask again."""

    class ListsHistory(CountingTracker):
        def _call(self, name, attr, args, kwargs):
            result = super()._call(name, attr, args, kwargs)
            if name == "list_cases":
                histories = self.inner.read_all_histories()
                for tracked in result:
                    tracked.history = histories[tracked.key]
            return result

    tracker = ListsHistory(env.tracker())
    report = env.sync(NOW, tracker)
    assert report.exit_code == 0 and report.history_reads == 0
    assert tracker.calls["read_history"] == 0 and tracker.calls["read_all_histories"] == 0
    assert check_invariants(env, NOW).ok


def test_no_stacked_retries_when_the_connector_owns_them(tmp_path: Path) -> None:
    """Jira and Redmine retry inside the connector; the sync job must then make a single attempt."""
    from casebridge.connectors.jira import JiraConnector
    from casebridge.connectors.local import LocalConfig, LocalConnector
    from casebridge.connectors.redmine import RedmineConnector
    from casebridge.sync import SyncJob
    from casebridge.workflows import load_workflow

    assert JiraConnector.owns_retries and RedmineConnector.owns_retries

    class Owning(LocalConnector):
        owns_retries = True

    tracker = Owning(LocalConfig(path=str(tmp_path / "t.db")), load_workflow())
    job = SyncJob(tracker, tracker.workflow, store=None, audit=None)  # type: ignore[arg-type]
    assert job.options.retry.attempts == 1
    plain = SyncJob(
        LocalConnector(LocalConfig(path=str(tmp_path / "u.db")), load_workflow()),
        tracker.workflow,
        store=None,
        audit=None,
    )  # type: ignore[arg-type]
    assert plain.options.retry.attempts == 3

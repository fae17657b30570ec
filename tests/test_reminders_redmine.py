"""Reminders and extensions against the real Redmine 5 (tests/redmine_fixtures.py): the reminder is a
journal note (Redmine notifies the assignee and watchers), posted once; an extension recorded in the
case data moves the due time by exactly 90 days and a second is refused. Moments derive from the
real clock the server stamps with."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casebridge.app.extend import plan_for, record_extension
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions
from casebridge.workflows.extension import ExtensionRefused
from tests.factories import make_case

pytest_plugins = ["tests.redmine_fixtures"]
pytestmark = pytest.mark.redmine
REF = "FIA-RM-0700"


def _sync(tracker: Any, tmp_path: Path, now: datetime):
    store, audit = StateStore(tmp_path / "state.db"), AuditLog(tmp_path / "audit.db")
    try:
        return SyncJob(tracker, tracker.workflow, store, audit, SyncOptions()).run(now)
    finally:
        store.close()
        audit.close()


def test_reminder_is_one_journal_note_then_follows_an_extension(redmine: Any, tmp_path: Path) -> None:
    tracker = redmine.connector()
    try:
        # Redmine stamps the case's move to submitted with its own clock, so `now` is the server's time
        # after the creation: taken before it, that move could lie a second after `now`, and at `now` the
        # clock would (rightly) not have started yet (the test failed about one run in four)
        received = redmine.clock() - timedelta(days=90 - 14, minutes=5)  # just past the 14-day threshold
        case = make_case(REF, request_type="preservation", legal_basis="us-2703f", submitted_at=received,
                         article3_checked_at=received)  # fmt: skip
        tracked = tracker.create_case(case, state="submitted")
        now = redmine.clock()
        first = _sync(tracker, tmp_path, now)
        assert [(o.dedupe_key, o.status) for o in first.reminded] == [(f"{REF}/preservation/T14d", "posted")]
        marker = first.reminders[0].marker
        assert sum(marker in note for note in tracker.comments(tracked.key)) == 1
        again = _sync(tracker, tmp_path, now + timedelta(minutes=1))
        assert [o.status for o in again.reminded] == ["already_posted"]
        assert sum(marker in note for note in tracker.comments(tracked.key)) == 1

        plan = plan_for(tracker, REF, "preservation", now, "renewal sent")
        assert plan.new_due - plan.old_due == timedelta(days=90)  # type: ignore[operator]
        assert record_extension(tracker, plan, None, now=now) == []
        with pytest.raises(ExtensionRefused, match="already extended 1 of 1"):
            plan_for(tracker, REF, "preservation", now, None)
        later = _sync(tracker, tmp_path, now + timedelta(days=90, minutes=2))
        assert [o.dedupe_key for o in later.reminded] == [f"{REF}/preservation/E1/T14d"]
    finally:
        tracker.close()

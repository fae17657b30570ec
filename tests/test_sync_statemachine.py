"""A hypothesis state machine over the sync engine and the embedded tracker: people add and move cases,
record extensions, time passes, the cache is lost, syncs (incremental, full, dry runs, with and without
reminders) are interleaved. After every real sync the tracker's SLA fields equal what the engine
computes at that instant, the audit log holds exactly one record per effective write, and every reminder
due at that instant was posted exactly once (one comment, one audit record)."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from casebridge.app.extend import plan_for, record_extension
from casebridge.state.audit import AuditLog
from casebridge.workflows.extension import ExtensionRefused
from tests.factories import T0, make_case
from tests.test_sync_support import KINDS, WORKFLOW, Env, check_invariants, check_reminders


def _scratch() -> Path:
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="casebridge-sm-", dir=shm if shm.is_dir() else None))


class SyncMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.env = Env(_scratch())
        self.env.write_config()
        self.now = T0
        self.count = 0
        tracker = self.env.tracker(self.now)
        tracker.db  # noqa: B018 - creates the tracker schema so the ground-truth trigger can attach
        tracker.close()
        self.env.install_write_log()
        self.synced_at: object = None
        self.reminded_at: object = None  # the last sync that posted reminders (not --no-remind)
        self.store_kept = True  # False once the state store was deleted and not yet rebuilt

    def teardown(self) -> None:
        shutil.rmtree(self.env.root, ignore_errors=True)

    @rule(kind=st.sampled_from(KINDS), submitted=st.booleans())
    def add_case(self, kind: tuple[str, str], submitted: bool) -> None:
        # a draft, or a request already with the provider (as intake creates one): its clocks run at once
        tracker = self.env.tracker(self.now)
        ref = f"SM-{self.count:04d}"
        case = make_case(ref, request_type=kind[0], legal_basis=kind[1], submitted_at=self.now)
        tracker.create_case(case, state="submitted" if submitted else None)
        tracker.close()
        self.count += 1
        self.synced_at = None

    @rule(pick=st.integers(min_value=0, max_value=10_000), choice=st.integers(min_value=0, max_value=100))
    def move_case(self, pick: int, choice: int) -> None:
        # A person's move takes a moment: it is stamped at least a second after anything before it. (Two
        # moves A -> B -> A stamped in the very instant of our own write would look unchanged to any
        # updated_at-based sync; `sync --full` is the cure. See test_sync_incremental for the
        # single-move case, which the cache does catch.)
        self.now += timedelta(seconds=1)
        tracker = self.env.tracker(self.now)
        cases = sorted(tracker.list_cases(), key=lambda t: t.key)
        if cases:
            tracked = cases[pick % len(cases)]
            targets = sorted({t.target for t in WORKFLOW.transitions if tracked.state in t.sources or "*" in t.sources})
            if targets:
                tracker.transition(tracked.key, targets[choice % len(targets)], at=self.now)
                self.synced_at = None
        tracker.close()

    @rule(pick=st.integers(min_value=0, max_value=10_000), clock=st.sampled_from(["preservation", "followup"]))
    def extend(self, pick: int, clock: str) -> None:
        """An investigator records an extension: the due time moves by exactly the policy's extension,
        or it is refused with one line (no extension in the policy, max used, lapsed, not running)."""
        self.now += timedelta(seconds=1)
        tracker = self.env.tracker(self.now)
        audit = AuditLog(self.env.audit_path)
        try:
            cases = sorted(tracker.list_cases(), key=lambda t: t.key)
            if not cases:
                return
            reference = cases[pick % len(cases)].case.reference
            try:
                plan = plan_for(tracker, reference, clock, self.now, "renewed request sent")
            except ExtensionRefused as exc:
                assert "\n" not in str(exc) and str(exc).startswith(reference)
                event("extension refused")
                return
            target = WORKFLOW.targets_for(plan.case.request_type, plan.case.legal_basis)[clock]
            if plan.old_due is not None:
                assert plan.new_due is not None
                assert (plan.new_due - plan.old_due).total_seconds() == target.extension
            assert record_extension(tracker, plan, audit, now=self.now) == []
            event("extension recorded")
            self.synced_at = None
        finally:
            audit.close()
            tracker.close()

    @rule(minutes=st.integers(min_value=1, max_value=60 * 24 * 45))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        self.synced_at = None

    @rule()
    def sync(self) -> None:
        report = self.env.sync(self.now)
        assert report.exit_code == 0, report.result.failures
        assert all(o.ok for o in report.reminded), report.reminded
        if any(o.status == "posted" for o in report.reminded):
            event("reminder posted")
        self.synced_at = self.reminded_at = self.now
        self.store_kept = True

    @rule()
    def sync_without_reminders(self) -> None:
        report = self.env.sync(self.now, remind=False)
        assert report.exit_code == 0 and report.reminded == []
        self.synced_at = self.now
        self.store_kept = True

    @rule()
    def remind_again_posts_nothing(self) -> None:
        if self.reminded_at == self.now:
            report = self.env.sync(self.now)
            assert [o for o in report.reminded if o.status != "already_posted"] == []

    @rule()
    def full_sync(self) -> None:
        report = self.env.sync(self.now, full=True)
        assert report.exit_code == 0 and not report.duplicates
        self.synced_at = self.reminded_at = self.now
        self.store_kept = True

    @rule()
    def dry_run_writes_nothing(self) -> None:
        db = sqlite3.connect(self.env.tracker_path)
        before = db.execute("SELECT COUNT(*) FROM write_log").fetchone()[0]
        self.env.sync(self.now, dry_run=True)
        assert db.execute("SELECT COUNT(*) FROM write_log").fetchone()[0] == before
        db.close()

    @rule()
    def lose_the_state_store(self) -> None:
        for path in self.env.root.glob("state.db*"):
            path.unlink()
        self.store_kept = False

    @rule()
    def resync_changes_nothing(self) -> None:
        if self.synced_at is not None:
            report = self.env.sync(self.now)
            # a lost store costs history reads (a full rebuild), never a write
            assert report.plan.actions == [] and (report.history_reads == 0 or not self.store_kept)
            self.store_kept = True

    @invariant()
    def tracker_matches_engine_after_a_sync(self) -> None:
        if self.synced_at is None:
            return
        check = check_invariants(self.env, self.now)
        assert check.ok, check
        if self.reminded_at == self.now:
            reminders = check_reminders(self.env, self.now)
            assert reminders.ok, reminders


TestSyncMachine = SyncMachine.TestCase
TestSyncMachine.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

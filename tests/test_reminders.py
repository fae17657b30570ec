"""Reminders before the deadline and extensions, on the embedded tracker: planning (pure), posting exactly
once (audit, crash recovery), the sync job and the CLI (`sync --no-remind`, `status`, `extend`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from casebridge.app.remind import REMINDER_POST, apply_reminders, recover_reminders
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import TransientError
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import StatusChange, TrackedCase
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.extension import ExtensionRefused, plan_extension
from casebridge.workflows.reminders import marker_for, next_reminder, plan_reminders, reminder_key
from casebridge.workflows.render import to_plain
from tests.cli_runner import run
from tests.factories import make_case

WF = load_workflow()
D = 86400.0
RECEIVED = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)  # provider receipt of the 2703(f) preservation
DUE = RECEIVED + timedelta(days=90)  # 30 Nov 2026 00:00Z (1 Sep -> 1 Oct 30 d, -> 1 Nov 31 d, -> 30 Nov 29 d)
REF = "FIA-CCW-2026-0700"


def preservation(reference: str = REF, **extra: object) -> TrackedCase:
    fields = {"submitted_at": RECEIVED, "article3_checked_at": RECEIVED, **extra}
    case = make_case(reference, request_type="preservation", legal_basis="us-2703f", **fields)
    return TrackedCase("1", case, "acknowledged", RECEIVED, history=[StatusChange(RECEIVED, "acknowledged")])


def planned_at(now: datetime, tracked: TrackedCase | None = None):
    tracked = tracked or preservation()
    clocks = evaluate_case(tracked.case, tracked.history or [], WF, now)
    return plan_reminders([(tracked, clocks)], WF, now=now)


# ------------------------------------------------------------------------------------------- planning
def test_nothing_before_the_first_threshold() -> None:
    assert planned_at(DUE - timedelta(days=14, seconds=1)) == []


def test_first_threshold_crossed_gives_one_reminder_with_what_lapses_when_and_what_to_do() -> None:
    (item,) = planned_at(DUE - timedelta(days=13, hours=23))
    assert item.dedupe_key == f"{REF}/preservation/T14d" and item.threshold == "14d"
    text = " ".join(to_plain(item.markdown).split())
    # in the case's zone (Asia/Karachi, +05:00): 30 Nov 00:00Z = 05:00 PKT
    assert "Lapses: 2026-11-30 05:00 Asia/Karachi (2026-11-30T05:00:00+05:00)" in text
    assert "request the one 90-day extension under 18 U.S.C. 2703(f)(2) now" in text
    assert "Source: 18 U.S.C. 2703(f)(2)" in text
    assert item.marker in text and item.marker == marker_for(item.dedupe_key)


def test_a_case_first_seen_late_gets_one_reminder_not_one_per_skipped_threshold() -> None:
    # 12 hours left: 14d, 8d and 1d have all passed; only the nearest (1d) is planned
    items = planned_at(DUE - timedelta(hours=12))
    assert [i.threshold for i in items] == ["1d"]


def test_lapsed_paused_or_closed_clocks_get_no_reminder() -> None:
    assert planned_at(DUE + timedelta(seconds=1)) == []  # lapsed: escalation's job
    closed = preservation()
    closed.state = "closed"
    closed.history = [StatusChange(RECEIVED, "acknowledged"), StatusChange(RECEIVED + timedelta(days=2), "closed")]
    assert planned_at(DUE - timedelta(days=1), closed) == []


def test_extension_keys_follow_the_new_due_time() -> None:
    extended = preservation(extensions=[{"clock": "preservation", "at": DUE - timedelta(days=10)}])
    # the due time moved by exactly 90 days; 20 days before the old due time nothing is due any more
    assert planned_at(DUE - timedelta(days=9), extended) == []
    (item,) = planned_at(DUE + timedelta(days=90 - 13), extended)
    assert item.dedupe_key == f"{REF}/preservation/E1/T14d"
    assert item.due_at == DUE + timedelta(days=90)
    assert "no extension is left" in " ".join(to_plain(item.markdown).split())


def test_key_shape() -> None:
    assert reminder_key("R", "preservation", "3d") == "R/preservation/T3d"
    assert reminder_key("R", "preservation", "3d", cycle=2, extensions=1) == "R/preservation/C2/E1/T3d"


def test_next_reminder_is_the_next_threshold_ahead() -> None:
    now = DUE - timedelta(days=10)
    tracked = preservation()
    pres = next(c for c in evaluate_case(tracked.case, tracked.history or [], WF, now) if c.name == "preservation")
    assert next_reminder(pres) == ("8d", DUE - timedelta(days=8))
    late = next(c for c in evaluate_case(tracked.case, tracked.history or [], WF, DUE - timedelta(hours=1)))
    assert next_reminder(late) is None


# --------------------------------------------------------------------------------------- extensions
def test_extension_moves_the_due_time_by_exactly_its_length_and_is_refused_past_max() -> None:
    tracked = preservation()
    plan = plan_extension(
        tracked.case, tracked.history or [], WF, "preservation", DUE - timedelta(days=5), "ticket 8812"
    )
    assert (plan.old_due, plan.new_due, plan.number, plan.allowed) == (DUE, DUE + timedelta(days=90), 1, 1)
    with pytest.raises(ExtensionRefused, match=r"already extended 1 of 1 time\(s\) under 18 U\.S\.C\. 2703\(f\)\(2\)"):
        plan_extension(plan.case, tracked.history or [], WF, "preservation", DUE - timedelta(days=4))


@pytest.mark.parametrize(
    ("basis", "clock", "at", "message"),
    [
        ("us-2703f", "preservation", DUE + timedelta(hours=1), r"preservation lapsed at 2026-11-30T00:00:00\+00:00"),
        (
            "budapest-29",
            "preservation",
            RECEIVED + timedelta(days=5),
            r"grants no extension; it ends once mla_received_at",
        ),
        ("us-2703f", "legal_deadline", RECEIVED, r"the legal_deadline clock does not run for preservation x us-2703f"),
        ("us-2703f", "nope", RECEIVED, r"unknown clock 'nope'"),
    ],
)
def test_refused_extensions_say_why(basis: str, clock: str, at: datetime, message: str) -> None:
    case = make_case(REF, request_type="preservation", legal_basis=basis, submitted_at=RECEIVED)
    with pytest.raises(ExtensionRefused, match=message):
        plan_extension(case, [StatusChange(RECEIVED, "acknowledged")], WF, clock, at)


# ------------------------------------------------------------------------------ posting exactly once
@pytest.fixture
def tracker(tmp_path: Path):
    t = LocalConnector(LocalConfig(path=str(tmp_path / "t.db")), WF)
    t.create_case(preservation().case, state="acknowledged", at=RECEIVED)
    yield t
    t.close()


@pytest.fixture
def audit(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.db")
    yield log
    log.close()


def _plan(tracker: LocalConnector, now: datetime):
    tracked = [t for t in tracker.list_cases()]
    pairs = [(t, evaluate_case(t.case, tracker.read_history(t.key), WF, now)) for t in tracked]
    return plan_reminders(pairs, WF, now=now)


def _records(audit: AuditLog, kind: str = REMINDER_POST) -> list[dict]:
    return [r for r in audit.records() if r["kind"] == kind]


def test_posted_once_then_found_by_its_marker(tracker: LocalConnector, audit: AuditLog) -> None:
    now = DUE - timedelta(days=13)
    first = apply_reminders(_plan(tracker, now), tracker, audit, now=now)
    again = apply_reminders(_plan(tracker, now), tracker, audit, now=now)
    assert [o.status for o in first] == ["posted"] and [o.status for o in again] == ["already_posted"]
    key = tracker.find_case(REF).key  # type: ignore[union-attr]
    assert len(tracker.comments(key)) == 1 and len(_records(audit)) == 1


def test_crash_after_the_comment_before_the_record_posts_nothing_twice(
    tracker: LocalConnector, audit: AuditLog
) -> None:
    now = DUE - timedelta(days=13)
    (item,) = _plan(tracker, now)
    # the comment landed, then the process died: the intent is still pending, the record not written
    audit.begin_intent(REMINDER_POST, {"dedupe_key": item.dedupe_key, "marker": item.marker, "case_key": item.case_key})
    tracker.post_reminder(item.case_key, item.markdown)
    recovery = recover_reminders(tracker, audit)
    assert (recovery.completed, recovery.dropped) == (1, 0)
    assert [o.status for o in apply_reminders(_plan(tracker, now), tracker, audit, now=now)] == ["already_posted"]
    assert len(tracker.comments(item.case_key)) == 1
    (record,) = _records(audit)
    assert record["data"]["recovered"] is True


def test_crash_before_the_comment_drops_the_intent_and_posts_once(tracker: LocalConnector, audit: AuditLog) -> None:
    now = DUE - timedelta(days=13)
    (item,) = _plan(tracker, now)
    audit.begin_intent(REMINDER_POST, {"dedupe_key": item.dedupe_key, "marker": item.marker, "case_key": item.case_key})
    assert (recover_reminders(tracker, audit).dropped, audit.pending()) == (1, [])
    assert [o.status for o in apply_reminders([item], tracker, audit, now=now)] == ["posted"]
    assert len(tracker.comments(item.case_key)) == 1 and len(_records(audit)) == 1


def test_a_failed_post_keeps_its_intent_and_other_cases_go_on(
    tracker: LocalConnector, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker.create_case(preservation("FIA-CCW-2026-0701").case, state="acknowledged", at=RECEIVED)
    now = DUE - timedelta(days=13)
    plan = _plan(tracker, now)
    real = tracker.post_reminder

    def flaky(key: str, markdown: str, *, notify: frozenset[str] = frozenset()) -> None:
        if REF + "/" in markdown.replace("\\", ""):
            raise TransientError("HTTP 503")
        real(key, markdown, notify=notify)

    monkeypatch.setattr(tracker, "post_reminder", flaky)
    outcomes = {o.reference: o.status for o in apply_reminders(plan, tracker, audit, now=now)}
    assert outcomes == {REF: "failed", "FIA-CCW-2026-0701": "posted"}
    assert len(audit.pending()) == 1  # the next run asks the tracker whether the failed one landed
    monkeypatch.undo()
    assert recover_reminders(tracker, audit).dropped == 1
    assert [o.status for o in apply_reminders(_plan(tracker, now), tracker, audit, now=now)] == [
        "posted",
        "already_posted",
    ]


# ----------------------------------------------------------------------------------------- sync job
def _sync(tracker: LocalConnector, tmp_path: Path, audit: AuditLog, now: datetime, **options: object):
    store = StateStore(tmp_path / "state.db")
    try:
        return SyncJob(tracker, WF, store, audit, SyncOptions(**options)).run(now)  # type: ignore[arg-type]
    finally:
        store.close()


def test_sync_reminds_after_its_pass_and_no_remind_turns_it_off(
    tracker: LocalConnector, tmp_path: Path, audit: AuditLog
) -> None:
    now = DUE - timedelta(days=13)
    off = _sync(tracker, tmp_path, audit, now, remind=False)
    assert (off.reminders, off.reminded) == ([], [])
    on = _sync(tracker, tmp_path, audit, now)
    assert [o.status for o in on.reminded] == ["posted"] and on.exit_code == 0
    rerun = _sync(tracker, tmp_path, audit, now + timedelta(hours=1))
    assert [o.status for o in rerun.reminded] == ["already_posted"]
    dry = _sync(tracker, tmp_path, audit, now + timedelta(days=6), dry_run=True)
    assert [r.threshold for r in dry.reminders] == ["8d"] and dry.reminded == []
    assert len(tracker.comments(tracker.find_case(REF).key)) == 1  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def cli_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    record = preservation().case.to_record() | {"state": "acknowledged", "state_since": RECEIVED.isoformat()}
    (tmp_path / "case.json").write_text(json.dumps([record]))
    code, _, err = run(capsys, "intake", "case.json", "--now", (RECEIVED + timedelta(days=1)).isoformat())
    assert code == 0, err


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_cli_walkthrough_remind_rerun_extend_refuse(cli_case: None, capsys: pytest.CaptureFixture[str]) -> None:
    # just past the 14-day threshold: one comment; a rerun posts none
    now = _iso(DUE - timedelta(days=14) + timedelta(minutes=1))
    code, out, _ = run(capsys, "sync", "--now", now)
    assert code == 0 and f"reminded {REF}: key {REF}/preservation/T14d" in out
    code, out, _ = run(capsys, "sync", "--now", now)
    assert code == 0 and "reminded" not in out
    code, out, _ = run(capsys, "status", REF, "--now", now)
    assert "next reminder 8d before due, at 2026-11-22T05:00:00+05:00" in out
    # extend: due 90 days later, counted from the current due time
    code, out, _ = run(capsys, "extend", REF, "preservation", "--at", now, "--note", "Renewal via portal", "--now", now)
    assert code == 0, out
    assert out.strip() == (
        f"{REF}: preservation extended by 90d under 18 U.S.C. 2703(f)(2) (1 of 1): "
        "due 2026-11-30T05:00:00+05:00 -> 2027-02-28T05:00:00+05:00"
    )
    code, out, _ = run(capsys, "status", REF, "--json", "--now", now)
    pres = next(c for c in json.loads(out)[0]["clocks"] if c["name"] == "preservation")
    assert pres["due_at"] == "2027-02-28T05:00:00+05:00" and pres["state"] == "running"
    assert pres["next_reminder"] == {"before": "14d", "at": "2027-02-14T05:00:00+05:00"}
    # a second extension: refused, one line, exit 2
    code, out, err = run(capsys, "extend", REF, "preservation", "--now", now)
    assert code == 2 and out == ""
    assert err.strip() == (
        f"casebridge: {REF}: preservation already extended 1 of 1 time(s) under 18 U.S.C. 2703(f)(2); "
        "no further extension"
    )
    # the next reminder follows the new due time
    later = _iso(DUE + timedelta(days=90 - 14) + timedelta(minutes=1))
    code, out, _ = run(capsys, "sync", "--now", later)
    assert code == 0 and f"reminded {REF}: key {REF}/preservation/E1/T14d" in out


def test_cli_extend_dry_run_records_nothing(cli_case: None, capsys: pytest.CaptureFixture[str]) -> None:
    now = _iso(DUE - timedelta(days=3))
    code, out, _ = run(capsys, "extend", REF, "preservation", "--dry-run", "--now", now)
    assert code == 0 and out.startswith(f"would record: {REF}: preservation extended by 90d")
    code, out, _ = run(capsys, "status", REF, "--json", "--now", now)
    assert json.loads(out)[0]["clocks"][1]["due_at"] == "2026-11-30T05:00:00+05:00"


def test_cli_extend_future_at_is_refused(cli_case: None, capsys: pytest.CaptureFixture[str]) -> None:
    now = DUE - timedelta(days=3)
    code, _, err = run(
        capsys, "extend", REF, "preservation", "--at", _iso(now + timedelta(hours=1)), "--now", _iso(now)
    )
    assert code == 2 and "is after --now" in err and len(err.strip().splitlines()) == 1


def test_cli_sync_no_remind(cli_case: None, capsys: pytest.CaptureFixture[str]) -> None:
    now = _iso(DUE - timedelta(days=2))
    code, out, _ = run(capsys, "sync", "--no-remind", "--now", now)
    assert code == 0 and "reminded" not in out
    code, out, _ = run(capsys, "sync", "--dry-run", "--now", now)
    assert f"would remind {REF}: Reminder: {REF}: Preservation lapses in 2 d (key {REF}/preservation/T8d)" in out


def test_a_retry_after_a_lost_answer_does_not_comment_twice(
    tracker: LocalConnector, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # found by the fault harness: the comment landed, its answer was lost, and the retry posted again
    from casebridge.app.fetch import RetryPolicy

    now = DUE - timedelta(days=13)
    (item,) = _plan(tracker, now)
    real, lost = tracker.post_reminder, [True]

    def lost_answer(key: str, markdown: str, *, notify: frozenset[str] = frozenset()) -> None:
        real(key, markdown, notify=notify)
        if lost.pop() if lost else False:
            raise TransientError("connection dropped after the request was sent")

    monkeypatch.setattr(tracker, "post_reminder", lost_answer)
    retry = RetryPolicy(attempts=3, sleep=lambda _s: None)
    (outcome,) = apply_reminders([item], tracker, audit, now=now, call=retry.call)
    assert outcome.status == "posted" and len(tracker.comments(item.case_key)) == 1
    assert len(_records(audit)) == 1 and audit.pending() == []


def test_an_escalation_posted_for_the_old_due_time_is_not_repeated(tracker: LocalConnector, audit: AuditLog) -> None:
    from casebridge.app.escalate import apply_escalations
    from casebridge.workflows.escalation import plan_escalations

    def escalate(now: datetime):
        pairs = [(t, evaluate_case(t.case, tracker.read_history(t.key), WF, now)) for t in tracker.list_cases()]
        return apply_escalations(plan_escalations(pairs, WF, now=now), tracker, tracker, audit, now=now)

    lapsed = DUE + timedelta(hours=2)
    assert [o.status for o in escalate(lapsed)] == ["posted"]  # the renewal was sent but not yet recorded
    # recorded late: the renewed request went out a day before the old due time
    tracked = tracker.find_case(REF)
    assert tracked is not None
    history = tracker.read_history(tracked.key)
    plan = plan_extension(tracked.case, history, WF, "preservation", DUE - timedelta(days=1))
    tracker.update_case(tracked.key, plan.case)
    assert escalate(lapsed + timedelta(hours=1)) == []  # running again: nothing to escalate
    # the extended period lapses too: same key (case x clock x level), already in the queue
    assert [o.status for o in escalate(DUE + timedelta(days=91))] == ["already_posted"]
    assert len(tracker.liaison_items()) == 1

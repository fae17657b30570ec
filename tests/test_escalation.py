"""Escalation selection (levels, repeats, dedupe keys, Art. 3 gate, allowlist) and the exactly-once
executor, run against the real embedded tracker (connectors/local.py).

Clock results are built here as ``FakeClock`` (the attributes ``workflows.clocks.ClockResult`` has)
because the clock engine is written concurrently; selection only reads those attributes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casebridge.app.escalate import apply_escalations, find_posted
from casebridge.connectors import PostedEscalation
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import ConfigError, EscalationBlocked, TransientError
from casebridge.workflows import load_workflow
from casebridge.workflows.escalation import EscalationConfig, dedupe_key, due_step, plan_escalations
from casebridge.workflows.model import ClockTarget, Workflow
from casebridge.workflows.render import to_plain
from tests.factories import T0, make_case

H = 3600.0
D = 86400.0
WF = load_workflow()


@dataclass
class FakeClock:
    name: str
    state: str
    due_at: datetime | None
    overdue_seconds: float
    target: ClockTarget
    stopped_at: datetime | None = None
    kind: str = "legal"
    cycle: int = 1


def target(request_type: str, basis: str, clock: str) -> ClockTarget:
    return WF.targets_for(request_type, basis)[clock]


def breached(request_type: str, basis: str, clock: str, overdue: float, due: datetime = T0) -> FakeClock:
    return FakeClock(clock, "breached", due, overdue, target(request_type, basis, clock))


EMERGENCY = ("emergency", "eu-epo", "legal_deadline")
VOLUNTARY = ("subscriber", "voluntary", "followup")


# ------------------------------------------------------------------------------------- levels, repeats
@pytest.mark.parametrize(
    ("overdue", "expected"),
    [
        (0, (1, 0)),  # level 1 "after 0h": at once
        (3.99 * H, (1, 0)),
        (4 * H, (2, 0)),  # level 2 reached: its own clock for repeats starts here
        (7.99 * H, (2, 0)),
        (8 * H, (2, 1)),
        (12 * H, (2, 2)),
        (16 * H, (2, 3)),
        (100 * H, (2, 3)),  # max_repeats = 3
    ],
)
def test_emergency_levels_and_repeats(overdue: float, expected: tuple[int, int]) -> None:
    level, repeat = due_step(breached(*EMERGENCY, overdue))  # type: ignore[misc]
    assert (level.level, repeat) == expected


@pytest.mark.parametrize(
    ("overdue", "expected"),
    [(13 * D, (1, 0)), (14 * D, (1, 1)), (28 * D, (1, 2)), (30 * D, (2, 0)), (44 * D, (2, 1)), (90 * D, (2, 2))],
)
def test_voluntary_repeats_at_the_current_level(overdue: float, expected: tuple[int, int]) -> None:
    level, repeat = due_step(breached(*VOLUNTARY, overdue))  # type: ignore[misc]
    assert (level.level, repeat) == expected


def test_nothing_due_says_why() -> None:
    running = FakeClock("legal_deadline", "running", T0, 0, target(*EMERGENCY))
    late_answer = FakeClock("legal_deadline", "breached", T0, 5 * H, target(*EMERGENCY), stopped_at=T0)
    no_rule = FakeClock("followup", "breached", T0, 5 * D, target("content", "mlat", "followup"))
    assert due_step(running) == "clock is running, not breached"
    assert "answered late" in str(due_step(late_answer))
    assert "does not escalate" in str(due_step(no_rule)) and "central-authority" in str(due_step(no_rule))


def test_dedupe_key_format() -> None:
    assert dedupe_key("FIA-1", "legal_deadline", 2) == "FIA-1/legal_deadline/L2"
    assert dedupe_key("FIA-1", "legal_deadline", 2, 3) == "FIA-1/legal_deadline/L2/R3"
    assert dedupe_key("FIA-1", "mla", 1, 0, cycle=2) == "FIA-1/mla/C2/L1"


def test_second_cycle_of_a_clock_escalates_under_its_own_key() -> None:
    clock = breached(*VOLUNTARY, H)
    clock.cycle = 2
    plan = plan_escalations([(tracked("A"), [clock])], WF, now=NOW)
    assert [p.dedupe_key for p in plan] == ["A/followup/C2/L1"]


# ------------------------------------------------------------------------------------------- planning
def tracked(reference: str, state: str = "acknowledged", key: str = "1", **fields: Any):
    from casebridge.workflows.cases import TrackedCase

    return TrackedCase(key=key, case=make_case(reference, **fields), state=state, updated_at=T0)


NOW = T0 + timedelta(days=40)


def test_plan_one_item_per_breached_escalating_clock() -> None:
    cases = [
        (tracked("A", request_type="emergency", legal_basis="eu-epo", key="1"), [breached(*EMERGENCY, 9 * H)]),
        (
            tracked("B", key="2"),
            [breached(*VOLUNTARY, 1 * H), FakeClock("mla", "running", None, 0, target(*VOLUNTARY))],
        ),
        (tracked("C", key="3"), [FakeClock("followup", "at_risk", T0, 0, target(*VOLUNTARY))]),
    ]
    plan = plan_escalations(cases, WF, now=NOW)
    assert [p.dedupe_key for p in plan] == ["A/legal_deadline/L2/R1", "B/followup/L1"]
    first = plan.escalations[0]
    assert first.level_name == "NCB head of bureau" and first.repeat == 1
    assert first.title.startswith("NCB escalation L2 R1: A: Legal deadline overdue")
    assert "Second escalation: still no answer" in first.markdown
    assert plan.blocked == [] and plan.not_due == []  # reasons are reported only for --case selections


def test_missing_article3_blocks_only_that_case() -> None:
    cases = [
        (tracked("NOCHECK", article3_checked_by=None, key="1"), [breached(*VOLUNTARY, H)]),
        (tracked("NODATE", article3_checked_at=None, key="2"), [breached(*VOLUNTARY, H)]),
        (tracked("OK", key="3"), [breached(*VOLUNTARY, H)]),
    ]
    plan = plan_escalations(cases, WF, now=NOW)
    assert [p.reference for p in plan] == ["OK"]
    assert [(b.reference, b.field) for b in plan.blocked] == [
        ("NOCHECK", "article3_checked_by"),
        ("NODATE", "article3_checked_at"),
    ]
    assert all(isinstance(b, EscalationBlocked) for b in plan.blocked)
    assert str(plan.blocked[0]).startswith("NOCHECK: article3_checked_by is not set")


def test_case_without_due_clock_is_not_blocked_for_article3() -> None:
    plan = plan_escalations([(tracked("X", article3_checked_by=None), [])], WF, now=NOW)
    assert plan.blocked == [] and len(plan) == 0


def test_named_cases_say_why_not() -> None:
    cases = [
        (tracked("A", key="1"), [FakeClock("followup", "running", T0, 0, target(*VOLUNTARY))]),
        (tracked("B", key="2"), [breached(*VOLUNTARY, H)]),
        (tracked("DONE", state="closed", key="3"), [breached(*VOLUNTARY, H)]),
    ]
    plan = plan_escalations(cases, WF, now=NOW, only=["A", "DONE", "NOPE"])
    assert len(plan) == 0  # B was not named
    assert [str(n) for n in plan.not_due] == [
        "A/followup: clock is running, not breached",
        "DONE: case is closed (a terminal state)",
        "NOPE: no such case among the tracked cases",
    ]


def test_allowlist_rejects_unknown_fields_and_drops_excluded_ones() -> None:
    with pytest.raises(ConfigError, match=r"escalation\.allowlist <- .*'disclosed_data'"):
        EscalationConfig.from_raw({"allowlist": ["reference", "disclosed_data"]})
    config = EscalationConfig.from_raw({"allowlist": ["reference", "offence", "provider"]})
    case = tracked("A", facts="SECRET-FACTS", officer_email="x.y@example.org", ncb_action="NCB-ASK")
    plan = plan_escalations([(case, [breached(*VOLUNTARY, H)])], WF, now=NOW, config=config)
    md = plan.escalations[0].markdown
    assert "SECRET\\-FACTS" not in md and "SECRET" not in md and "example\\.org" not in md
    assert "Extortion via social media" in md  # offence allowed
    assert "Insp\\. A\\. Khan" in md  # the Art. 3 self-check (always included) names the checker
    assert "NCB\\-ASK" not in md and "Voluntary request unanswered" in md  # ncb_action not allowed: policy action
    assert "Subscriber info" not in plan.escalations[0].title  # title not allowed


def test_unknown_config_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"escalation\.allow_list <- unknown key; did you mean 'allowlist'\?"):
        EscalationConfig.from_raw({"allow_list": []})


# -------------------------------------------------------------------------- applying, on the local tracker
@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[LocalConnector]:
    conn = LocalConnector(LocalConfig(path=str(tmp_path / "cases.db")), WF)
    conn.clock = lambda: NOW
    yield conn
    conn.close()


class Audit:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def append(self, kind: str, data: dict[str, Any]) -> None:
        self.records.append((kind, data))

    def find_posted(self, dedupe_key: str) -> dict[str, Any] | None:
        # as state.audit.AuditLog.find_posted: the escalation.posted record of that key
        hits = [d for k, d in self.records if k == "escalation.posted" and d["dedupe_key"] == dedupe_key]
        return hits[-1] if hits else None

    def find_handled(self, dedupe_key: str) -> dict[str, Any] | None:
        hits = [d for k, d in self.records if k == "escalation.handled" and d["dedupe_key"] == dedupe_key]
        return hits[-1] if hits else None


def seed(tracker: LocalConnector, reference: str, state: str = "acknowledged", **fields: Any):
    return tracker.create_case(make_case(reference, **fields), state=state, at=T0)


def plan_for(tracker: LocalConnector, overdue: float = H, clock: tuple[str, str, str] = VOLUNTARY):
    cases = [(tc, [breached(*clock, overdue)]) for tc in tracker.list_cases()]
    return plan_escalations(cases, tracker.workflow, now=NOW)


def test_posts_links_comments_and_moves_case_then_rerun_posts_nothing(tracker: LocalConnector) -> None:
    a, b = seed(tracker, "A"), seed(tracker, "B")
    audit = Audit()
    outcomes = apply_escalations(plan_for(tracker), tracker, tracker, audit, now=NOW)
    assert [(o.reference, o.status, o.ok) for o in outcomes] == [("A", "posted", True), ("B", "posted", True)]
    assert [p.dedupe_key for p in tracker.liaison_items()] == ["A/followup/L1", "B/followup/L1"]
    assert tracker.find_case("A").state == "escalated"  # type: ignore[union-attr]
    assert "A/followup/L1" in tracker.comments(a.key)[-1] and "level 1: NCB liaison" in tracker.comments(a.key)[-1]
    assert "Escalated to the INTERPOL NCB liaison queue: local:liaison/1 " in to_plain(tracker.comments(a.key)[-1])
    kinds = ["escalation.posted", "escalation.handled"]
    assert [k for k, _ in audit.records] == kinds + kinds  # the post, then its case side done
    assert audit.records[0][1]["dedupe_key"] == "A/followup/L1" and audit.records[0][1]["target"] == "local"
    assert audit.records[1][1] == {
        "dedupe_key": "A/followup/L1",
        "reference": "A",
        "case_key": a.key,
        "case_state": "escalated",
    }

    comments_before = tracker.comments(b.key)
    again = apply_escalations(plan_for(tracker), tracker, tracker, audit, now=NOW)
    assert {o.status for o in again} == {"already_posted"}
    assert len(tracker.liaison_items()) == 2 and tracker.comments(b.key) == comments_before
    assert len(audit.records) == 4


def test_crash_after_post_is_repaired_without_reposting(tracker: LocalConnector) -> None:
    seed(tracker, "A")
    item = plan_for(tracker).escalations[0]
    tracker.post_escalation(item.escalation())  # the process died right after the target accepted it
    outcomes = apply_escalations([item], tracker, tracker, now=NOW)
    assert outcomes[0].status == "already_posted" and outcomes[0].case_state == "escalated"
    assert len(tracker.liaison_items()) == 1
    assert tracker.find_case("A").state == "escalated"  # type: ignore[union-attr]


def test_liaison_on_another_tracker_survives_lost_case_state(tmp_path: Path, tracker: LocalConnector) -> None:
    seed(tracker, "A")
    liaison = LocalConnector(LocalConfig(path=str(tmp_path / "liaison.db")), WF)
    apply_escalations(plan_for(tracker), liaison, tracker, now=NOW)
    # a fresh connector on the same liaison file (the casebridge state store is gone): still one item
    reopened = LocalConnector(LocalConfig(path=str(tmp_path / "liaison.db")), WF)
    outcomes = apply_escalations(plan_for(tracker), reopened, tracker, now=NOW)
    assert outcomes[0].status == "already_posted" and len(reopened.liaison_items()) == 1
    liaison.close()
    reopened.close()


def test_the_audit_log_alone_never_decides_already_posted(tmp_path: Path, tracker: LocalConnector) -> None:
    seed(tracker, "A")

    class RememberingAudit(Audit):
        def find_posted(self, key: str) -> dict[str, Any] | None:
            return next((d for k, d in self.records if k == "escalation.posted" and d["dedupe_key"] == key), None)

    audit = RememberingAudit()
    first = LocalConnector(LocalConfig(path=str(tmp_path / "l1.db")), WF)
    apply_escalations(plan_for(tracker), first, tracker, audit, now=NOW)
    amnesiac = LocalConnector(LocalConfig(path=str(tmp_path / "l2.db")), WF)  # e.g. a forged "posted" record
    outcomes = apply_escalations(plan_for(tracker), amnesiac, tracker, audit, now=NOW)
    assert outcomes[0].status == "posted" and len(amnesiac.liaison_items()) == 1  # the target decides
    first.close()
    amnesiac.close()


def test_one_failing_case_does_not_stop_the_others(tracker: LocalConnector) -> None:
    seed(tracker, "A"), seed(tracker, "B"), seed(tracker, "C")

    class Flaky(LocalConnector):  # the real connector with one fault injected
        def post_escalation(self, escalation):  # type: ignore[no-untyped-def]
            if escalation.case_reference == "B":
                raise TransientError("liaison tracker answered 503", case="B")
            return super().post_escalation(escalation)

    flaky = Flaky(tracker.config, WF)  # type: ignore[arg-type]
    audit = Audit()
    outcomes = apply_escalations(plan_for(tracker), flaky, tracker, audit, now=NOW)
    assert [(o.reference, o.status) for o in outcomes] == [("A", "posted"), ("B", "failed"), ("C", "posted")]
    assert outcomes[1].error == "liaison tracker answered 503" and not outcomes[1].ok
    assert tracker.find_case("B").state == "acknowledged"  # type: ignore[union-attr]
    assert (
        "escalation.failed",
        {"dedupe_key": "B/followup/L1", "error": "liaison tracker answered 503", "at": NOW.isoformat()},
    ) in audit.records
    retry = apply_escalations(plan_for(tracker), tracker, tracker, now=NOW)
    assert [o.status for o in retry] == ["already_posted", "posted", "already_posted"]
    flaky.close()


def test_failure_after_posting_is_reported_and_not_reposted(tracker: LocalConnector) -> None:
    tc = seed(tracker, "A")

    class NoLink(LocalConnector):
        def link_escalation(self, key: str, posted: PostedEscalation) -> None:
            raise TransientError("tracker answered 502")

    cases = NoLink(tracker.config, WF)  # type: ignore[arg-type]
    outcome = apply_escalations(plan_for(tracker), tracker, cases, now=NOW)[0]
    assert outcome.status == "posted" and not outcome.ok
    assert outcome.error == "posted, but linking the case failed: tracker answered 502"
    # the later steps still ran: the case is escalated and its comment names the posted item
    assert outcome.case_state == "escalated" and "A/followup/L1" in tracker.comments(tc.key)[-1]
    rerun = apply_escalations(plan_for(tracker), tracker, tracker, now=NOW)[0]
    assert rerun.status == "already_posted" and rerun.ok and len(tracker.liaison_items()) == 1
    cases.close()


def test_crash_before_transition_is_repaired_on_rerun(tracker: LocalConnector) -> None:
    seed(tracker, "A")

    class NoMove(LocalConnector):
        def transition(self, key: str, state: str, **kw: Any) -> None:
            raise TransientError("tracker answered 503")

    cases = NoMove(tracker.config, WF)  # type: ignore[arg-type]
    first = apply_escalations(plan_for(tracker), tracker, cases, now=NOW)[0]
    assert first.error == "posted, but moving the case failed: tracker answered 503"
    assert first.case_state == "acknowledged"
    rerun = apply_escalations(plan_for(tracker), tracker, tracker, now=NOW)[0]
    assert rerun.status == "already_posted" and rerun.case_state == "escalated" and rerun.ok
    assert len(tracker.liaison_items()) == 1
    cases.close()


def test_repeat_on_an_escalated_case_comments_without_transition(tracker: LocalConnector) -> None:
    tc = seed(tracker, "A")
    apply_escalations(plan_for(tracker, H), tracker, tracker, now=NOW)
    n = len(tracker.comments(tc.key))
    outcome = apply_escalations(plan_for(tracker, 14 * D), tracker, tracker, now=NOW)[0]
    assert outcome.dedupe_key == "A/followup/L1/R1" and outcome.status == "posted"
    assert len(tracker.comments(tc.key)) == n + 1 and "repeat 1" in tracker.comments(tc.key)[-1]
    assert [h.state for h in tracker.read_history(tc.key)].count("escalated") == 1


def test_case_whose_state_cannot_move_is_commented_and_left(tracker: LocalConnector) -> None:
    tc = seed(tracker, "A", state="fulfilled")  # not terminal, but no transition fulfilled -> escalated
    outcome = apply_escalations(plan_for(tracker), tracker, tracker, now=NOW)[0]
    assert outcome.ok and outcome.case_state == "fulfilled"
    assert outcome.notes == ("case left in fulfilled: the workflow has no transition fulfilled -> escalated",)
    assert "A/followup/L1" in tracker.comments(tc.key)[-1]


def test_two_clocks_of_one_case_move_it_once(tracker: LocalConnector) -> None:
    tc = seed(tracker, "A", request_type="emergency", legal_basis="eu-epo")
    clocks = [breached(*EMERGENCY, H), breached("emergency", "us-2702-emergency", "followup", H)]
    plan = plan_escalations([(tracker.find_case("A"), clocks)], WF, now=NOW)  # type: ignore[list-item]
    outcomes = apply_escalations(plan, tracker, tracker, now=NOW)
    assert [o.ok for o in outcomes] == [True, True] and len(tracker.liaison_items()) == 2
    assert [h.state for h in tracker.read_history(tc.key)] == ["acknowledged", "escalated"]


def _workflow_without_escalated_state() -> Workflow:
    from dataclasses import replace

    return replace(WF, escalated_state=None)


def test_workflow_without_escalated_state_only_comments(tmp_path: Path) -> None:
    conn = LocalConnector(LocalConfig(path=str(tmp_path / "c.db")), _workflow_without_escalated_state())
    tc = seed(conn, "A")
    outcome = apply_escalations(plan_for(conn), conn, conn, now=NOW)[0]
    assert outcome.ok and outcome.case_state == "acknowledged" and len(conn.comments(tc.key)) == 1
    conn.close()


def test_plan_and_outcome_json_carry_dedupe_keys(tracker: LocalConnector) -> None:
    seed(tracker, "A")
    plan = plan_for(tracker)
    assert plan.escalations[0].to_json()["dedupe_key"] == "A/followup/L1"
    out = apply_escalations(plan, tracker, tracker, now=NOW)[0].to_json()
    assert out["dedupe_key"] == "A/followup/L1" and out["status"] == "posted" and out["posted_key"]


def test_now_is_used_for_the_art3_future_check() -> None:
    future = NOW + timedelta(days=1)
    plan = plan_escalations([(tracked("A", article3_checked_at=future), [breached(*VOLUNTARY, H)])], WF, now=NOW)
    assert plan.blocked and plan.blocked[0].field == "article3_checked_at"


def test_threat_to_life_is_planned_first_then_most_overdue() -> None:
    cases = [
        (tracked("ROUTINE", key="1"), [breached(*VOLUNTARY, 20 * D)]),
        (tracked("LATER", key="2"), [breached(*VOLUNTARY, 2 * D)]),
        (tracked("LIFE", urgency="threat_to_life", key="3"), [breached(*VOLUNTARY, H)]),
    ]
    plan = plan_escalations(cases, WF, now=NOW)
    assert [p.reference for p in plan] == ["LIFE", "ROUTINE", "LATER"]
    assert plan.escalations[0].to_json()["threat_to_life"] is True


def test_find_posted_tells_a_dry_run_what_is_already_there(tracker: LocalConnector) -> None:
    seed(tracker, "A"), seed(tracker, "B")
    plan = plan_for(tracker)
    assert find_posted(plan, tracker) == {}
    tracker.post_escalation(plan.escalations[0].escalation())
    assert list(find_posted(plan, tracker)) == ["A/followup/L1"]
    assert len(tracker.liaison_items()) == 1  # read-only


def test_a_record_from_before_handled_records_existed_is_not_redone(tracker: LocalConnector) -> None:
    """An `escalation.posted` record without `follow_up_recorded` (written by an earlier version, whose
    case side ran then and whose comments carry no marker) is left alone: no duplicate comment."""
    tc = seed(tracker, "A")
    item = plan_for(tracker).escalations[0]
    posted = tracker.post_escalation(item.escalation())
    audit = Audit()
    audit.append("escalation.posted", {"dedupe_key": item.dedupe_key, "key": posted.key})
    outcome = apply_escalations([item], tracker, tracker, audit, now=NOW)[0]
    assert outcome.status == "already_posted" and outcome.notes == ("already posted; case already handled",)
    assert tracker.comments(tc.key) == [] and [k for k, _ in audit.records] == ["escalation.posted"]


def test_a_crash_before_the_audit_record_is_recorded_once_on_rerun(tracker: LocalConnector) -> None:
    seed(tracker, "A")
    item = plan_for(tracker).escalations[0]
    tracker.post_escalation(item.escalation())  # killed right after the target accepted it
    audit = Audit()
    first = apply_escalations([item], tracker, tracker, audit, now=NOW)[0]
    assert first.status == "already_posted" and first.case_state == "escalated"
    assert [(k, d.get("recovered")) for k, d in audit.records] == [
        ("escalation.posted", True),
        ("escalation.handled", True),
    ]
    again = apply_escalations([item], tracker, tracker, audit, now=NOW)[0]
    assert again.notes == ("already posted; case already handled",) and len(audit.records) == 2

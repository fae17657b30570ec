"""Escalation behaviours the NCB liaison desk relies on (issue 19): a breach before level 1 posts
nothing and says when level 1 starts; max_repeats = 1 re-posts exactly once; the case's move to the
escalated state is stamped with the run's --now; the target is asked which keys it holds one page at a
time, and a failed lookup fails only its page; what a posted (or resent) escalation records, reports and
comments; a rerun for a case already escalated leaves it alone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from casebridge.app import escalate
from casebridge.app.escalate import apply_escalations
from casebridge.app.escalate_followup import escalation_marker
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import TransientError
from casebridge.workflows.cases import TrackedCase
from casebridge.workflows.directory import load_directory
from casebridge.workflows.escalation import EscalationConfig, due_step, plan_escalations
from casebridge.workflows.model import EscalationLevel, EscalationRule
from casebridge.workflows.render import to_plain
from tests.factories import T0, make_case
from tests.test_escalation import NOW, WF, FakeClock, H, breached, target

LATE_RULE = EscalationRule(levels=(EscalationLevel(1, 2 * H, "NCB liaison"),), repeat_after=24 * H, max_repeats=1)


def late_clock(overdue: float) -> FakeClock:
    base = target("subscriber", "voluntary", "followup")
    return FakeClock("followup", "breached", T0, overdue, replace(base, escalate=LATE_RULE))


def test_a_breach_before_level_1_is_due_posts_nothing_and_says_when_it_starts() -> None:
    assert due_step(late_clock(1 * H)) == "overdue 1 h; level 1 starts 2 h past due"
    level, repeat = due_step(late_clock(2 * H))  # type: ignore[misc]
    assert (level.level, repeat) == (1, 0)


@pytest.mark.parametrize(("overdue", "repeat"), [(25 * H, 0), (26 * H, 1), (100 * 24 * H, 1)])
def test_max_repeats_1_re_posts_exactly_once(overdue: float, repeat: int) -> None:
    level, got = due_step(late_clock(overdue))  # type: ignore[misc]
    assert (level.level, got) == (1, repeat)


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[LocalConnector]:
    conn = LocalConnector(LocalConfig(path=str(tmp_path / "cases.db")), WF)
    conn.use_clock(lambda: T0)  # the tracker's own clock is NOT the run's --now
    yield conn
    conn.close()


def test_the_escalated_move_is_stamped_with_the_runs_now(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-ESC-1"), state="acknowledged", at=T0)
    plan = plan_escalations([(tracker.find_case("FIA-ESC-1"), [breached("subscriber", "voluntary", "followup", H)])],
                            WF, now=NOW)  # fmt: skip
    [outcome] = apply_escalations(plan, tracker, tracker, now=NOW)
    assert outcome.ok and outcome.case_state == "escalated"
    assert tracker.read_history(created.key)[-1].at == NOW


class PagedLiaison(LocalConnector):
    """The real embedded liaison queue, recording each bulk lookup; one page's lookup can fail."""

    def __init__(self, config: LocalConfig, fail_page: int | None = None, error: Exception | None = None) -> None:
        super().__init__(config, WF)
        self.lookups: list[list[str]] = []
        self.fail_page, self.error = fail_page, error

    def find_escalations(self, dedupe_keys):  # type: ignore[no-untyped-def]
        keys = list(dedupe_keys)
        self.lookups.append(keys)
        if len(self.lookups) == self.fail_page and self.error is not None:
            raise self.error
        return super().find_escalations(keys)


def five_cases(tracker: LocalConnector):  # type: ignore[no-untyped-def]
    for ref in "ABCDE":
        tracker.create_case(make_case(ref), state="acknowledged", at=T0)
    clocks = [breached("subscriber", "voluntary", "followup", H)]
    return plan_escalations([(tc, clocks) for tc in tracker.list_cases()], WF, now=NOW)


def test_the_target_is_asked_once_per_page_of_keys_and_a_key_it_holds_is_never_posted_again(
    tmp_path: Path, tracker: LocalConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(escalate, "LOOKUP_PAGE", 2)
    plan = five_cases(tracker)
    liaison = PagedLiaison(LocalConfig(path=str(tmp_path / "liaison.db")))
    liaison.post_escalation(plan.escalations[3].escalation())  # D: posted by a run that crashed
    outcomes = apply_escalations(plan, liaison, tracker, now=NOW)
    keys = [f"{ref}/followup/L1" for ref in "ABCDE"]
    assert liaison.lookups == [keys[0:2], keys[2:4], keys[4:5]]
    assert [(o.reference, o.status) for o in outcomes] == [
        ("A", "posted"), ("B", "posted"), ("C", "posted"), ("D", "already_posted"), ("E", "posted"),
    ]  # fmt: skip
    assert sorted(p.dedupe_key for p in liaison.liaison_items()) == keys
    liaison.close()


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (TransientError("liaison tracker answered 503"), "liaison tracker answered 503"),
        (KeyError("issues"), "KeyError: 'issues'"),  # a connector's own bug: that page only
    ],
)
def test_a_failed_lookup_fails_only_its_page_and_posts_nothing_for_it(
    tmp_path: Path,
    tracker: LocalConnector,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    said: str,
) -> None:
    monkeypatch.setattr(escalate, "LOOKUP_PAGE", 2)
    plan = five_cases(tracker)
    liaison = PagedLiaison(LocalConfig(path=str(tmp_path / "liaison.db")), fail_page=2, error=error)
    audit = RecordingAudit()
    outcomes = apply_escalations(plan, liaison, tracker, audit, now=NOW)
    assert [(o.reference, o.status, o.error) for o in outcomes] == [
        ("A", "posted", None), ("B", "posted", None), ("C", "failed", said), ("D", "failed", said),
        ("E", "posted", None),
    ]  # fmt: skip
    assert sorted(p.dedupe_key for p in liaison.liaison_items()) == [f"{ref}/followup/L1" for ref in "ABE"]
    failed = [d for kind, d in audit.records if kind == "escalation.failed"]
    assert failed == [{"dedupe_key": f"{ref}/followup/L1", "error": said, "at": NOW.isoformat()} for ref in "CD"]
    assert tracker.find_case("C").state == "acknowledged"  # type: ignore[union-attr]
    if isinstance(error, KeyError):  # a bug: logged with its traceback, for the maintainer
        [bug] = [r for r in caplog.records if r.exc_info]
        assert bug.getMessage() == "looking up 2 escalation keys failed"
    liaison.close()


class RecordingAudit:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []

    def append(self, kind: str, data: dict) -> None:
        self.records.append((kind, data))


class UrlLiaison(LocalConnector):
    """The embedded liaison queue answering with a web address (as Jira and Redmine do), and, when told,
    saying that this send repeats one it could not confirm (as the mail target does after a crash)."""

    def __init__(self, config: LocalConfig, resent: bool = False) -> None:
        super().__init__(config, WF)
        self.resent = resent
        self.use_clock(lambda: T0)  # its own clock, not the run's --now

    def post_escalation(self, escalation):  # type: ignore[no-untyped-def]
        self.sent = escalation
        posted = super().post_escalation(escalation)
        return replace(posted, key=f"NCB-{posted.key}", url=f"https://ncb.example/browse/NCB-{posted.key}",
                       resent=self.resent)  # fmt: skip


def test_a_posted_escalation_is_recorded_reported_and_commented_with_its_link(
    tmp_path: Path, tracker: LocalConnector
) -> None:
    created = tracker.create_case(make_case("FIA-ESC-2"), state="acknowledged", at=T0)
    tracked = replace(tracker.find_case("FIA-ESC-2"), url="https://cases.example/FIA-ESC-2")  # type: ignore[type-var]
    plan = plan_escalations([(tracked, [breached("subscriber", "voluntary", "followup", H)])], WF, now=NOW)
    liaison, audit = UrlLiaison(LocalConfig(path=str(tmp_path / "liaison.db"))), RecordingAudit()
    [outcome] = apply_escalations(plan, liaison, tracker, audit, now=NOW)
    assert outcome.to_json() == {
        "dedupe_key": "FIA-ESC-2/followup/L1",
        "reference": "FIA-ESC-2",
        "status": "posted",
        "posted_key": "NCB-1",
        "url": "https://ncb.example/browse/NCB-1",
        "case_state": "escalated",
        "error": None,
        "notes": ["case moved to escalated"],
    }
    sent = liaison.sent
    assert (sent.case_key, sent.case_url) == (created.key, "https://cases.example/FIA-ESC-2")  # for the NCB
    assert (sent.case_reference, sent.level, sent.clock) == ("FIA-ESC-2", 1, "followup")
    assert sent.attributes == {"repeat": 0, "level_name": "NCB liaison"}
    # what was posted, then (once the link, comment and move are done) that its case side was handled
    assert [kind for kind, _ in audit.records] == ["escalation.posted", "escalation.handled"]
    [(_, data), _handled] = audit.records
    assert data == {
        "dedupe_key": "FIA-ESC-2/followup/L1",
        "reference": "FIA-ESC-2",
        "case_key": created.key,
        "clock": "followup",
        "level": 1,
        "repeat": 0,
        "key": "NCB-1",
        "url": "https://ncb.example/browse/NCB-1",
        "posted_at": T0.isoformat(),  # the liaison tracker's own stamp
        "target": "local",
        "resent": False,
        "follow_up_recorded": True,  # its case side is recorded by escalation.handled (issue 11)
    }
    assert tracker.comments(created.key)[-1] == (
        r"Escalated to the INTERPOL NCB liaison queue: [NCB\-1](https://ncb.example/browse/NCB-1) "
        r"(level 1: NCB liaison). Dedupe key: FIA\-ESC\-2/followup/L1 "  # Markdown, its text escaped
        f"({escalation_marker('FIA-ESC-2/followup/L1')})."  # what a rerun searches the comments for
    )
    liaison.close()


def test_a_send_the_target_could_not_confirm_before_is_reported_as_resent(
    tmp_path: Path, tracker: LocalConnector
) -> None:
    tracker.create_case(make_case("FIA-ESC-3"), state="acknowledged", at=T0)
    plan = plan_escalations([(tracker.find_case("FIA-ESC-3"), [breached("subscriber", "voluntary", "followup", H)])],
                            WF, now=NOW)  # fmt: skip
    liaison, audit = UrlLiaison(LocalConfig(path=str(tmp_path / "liaison.db")), resent=True), RecordingAudit()
    [outcome] = apply_escalations(plan, liaison, tracker, audit, now=NOW)
    assert outcome.status == "resent" and outcome.ok
    assert outcome.notes == (
        "resent: an earlier send was never confirmed; the NCB may receive NCB-1 twice",
        "case moved to escalated",
    )
    assert audit.records[0][1]["resent"] is True
    liaison.close()


def test_a_rerun_for_a_case_already_escalated_leaves_the_case_alone_and_says_so(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-ESC-4"), state="acknowledged", at=T0)

    def plan():  # type: ignore[no-untyped-def]
        clocks = [breached("subscriber", "voluntary", "followup", H)]
        return plan_escalations([(tracker.find_case("FIA-ESC-4"), clocks)], WF, now=NOW)

    apply_escalations(plan(), tracker, tracker, now=NOW)
    comments, history = tracker.comments(created.key), tracker.read_history(created.key)
    [again] = apply_escalations(plan(), tracker, tracker, now=NOW)
    assert (again.status, again.ok, again.case_state) == ("already_posted", True, "escalated")
    assert again.notes == ("already posted; case already handled",)
    assert tracker.comments(created.key) == comments and tracker.read_history(created.key) == history


def test_what_a_dry_run_shows_for_a_planned_escalation(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-ESC-5", urgency="threat_to_life"), state="acknowledged", at=T0)
    clocks = [breached("subscriber", "voluntary", "followup", 14 * 24 * H + 2 * H)]  # a repeat is due
    [item] = plan_escalations([(tracker.find_case("FIA-ESC-5"), clocks)], WF, now=NOW)
    assert item.to_json() == {
        "dedupe_key": "FIA-ESC-5/followup/L1/R1",
        "reference": "FIA-ESC-5",
        "case_key": created.key,
        "clock": "followup",
        "level": 1,
        "level_name": "NCB liaison",
        "repeat": 1,
        "overdue": "14 d 2 h",
        "threat_to_life": True,
        "title": item.title,
    }
    assert item.title.startswith("NCB escalation L1 R1: FIA-ESC-5: ")


def test_a_failed_escalation_is_logged_and_reported_under_its_dedupe_key(
    tmp_path: Path, tracker: LocalConnector, caplog: pytest.LogCaptureFixture
) -> None:
    plan = five_cases(tracker)
    liaison = PagedLiaison(LocalConfig(path=str(tmp_path / "liaison.db")), fail_page=1,
                           error=TransientError("liaison tracker answered 503"))  # fmt: skip
    with caplog.at_level("ERROR", logger="casebridge.app.escalate"):
        outcomes = apply_escalations(plan.escalations[:1], liaison, tracker, now=NOW)
    assert outcomes[0].to_json() == {
        "dedupe_key": "A/followup/L1",
        "reference": "A",
        "status": "failed",
        "posted_key": None,
        "url": None,
        "case_state": None,
        "error": "liaison tracker answered 503",
        "notes": [],
    }
    assert "escalation A/followup/L1 not posted: liaison tracker answered 503" in caplog.messages
    liaison.close()


class Broken(LocalConnector):
    """The real embedded tracker with one step broken: a casebridge error or a connector's own bug."""

    def __init__(self, config: LocalConfig, broken: dict[str, Exception], workflow=WF) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config, workflow)
        self.broken = broken

    def _maybe(self, step: str) -> None:
        if step in self.broken:
            raise self.broken[step]

    def post_escalation(self, escalation):  # type: ignore[no-untyped-def]
        self._maybe("post")
        return super().post_escalation(escalation)

    def link_escalation(self, key, posted) -> None:  # type: ignore[no-untyped-def]
        self._maybe("link")
        super().link_escalation(key, posted)

    def transition(self, key, state, **kw) -> None:  # type: ignore[no-untyped-def]
        self._maybe("move")
        super().transition(key, state, **kw)

    def comment(self, key, text) -> None:  # type: ignore[no-untyped-def]
        self._maybe("comment")
        super().comment(key, text)


def test_a_connector_bug_while_posting_fails_that_item_clearly_and_the_others_go_on(
    tmp_path: Path, tracker: LocalConnector, caplog: pytest.LogCaptureFixture
) -> None:
    plan = five_cases(tracker)
    liaison = Broken(LocalConfig(path=str(tmp_path / "liaison.db")), {"post": KeyError("id")})
    audit = RecordingAudit()
    with caplog.at_level("INFO", logger="casebridge.app.escalate"):
        failed = apply_escalations(plan.escalations[:2], liaison, tracker, audit, now=NOW)
    assert [(o.dedupe_key, o.status, o.error) for o in failed] == [
        ("A/followup/L1", "failed", "KeyError: 'id'"),
        ("B/followup/L1", "failed", "KeyError: 'id'"),
    ]
    assert audit.records[0] == ("escalation.failed", {"dedupe_key": "A/followup/L1", "error": "KeyError: 'id'",
                                                      "at": NOW.isoformat()})  # fmt: skip
    assert [r.getMessage() for r in caplog.records if r.exc_info] == ["escalation A/followup/L1 failed",
                                                                      "escalation B/followup/L1 failed"]  # fmt: skip
    caplog.clear()
    with caplog.at_level("INFO", logger="casebridge.app.escalate"):
        [posted] = apply_escalations(plan.escalations[2:3], tracker, tracker, now=NOW)
    assert f"posted escalation C/followup/L1 as {posted.posted.key}" in caplog.messages  # type: ignore[union-attr]
    liaison.close()


def test_when_linking_and_moving_both_fail_after_posting_both_are_reported(
    tracker: LocalConnector, caplog: pytest.LogCaptureFixture
) -> None:
    tracker.create_case(make_case("FIA-ESC-6"), state="acknowledged", at=T0)
    cases = Broken(tracker.config, {"link": TransientError("502 on link"), "move": TransientError("503 on move")})
    clocks = [breached("subscriber", "voluntary", "followup", H)]
    plan = plan_escalations([(tracker.find_case("FIA-ESC-6"), clocks)], WF, now=NOW)
    [outcome] = apply_escalations(plan, tracker, cases, now=NOW)
    assert outcome.status == "posted" and not outcome.ok and outcome.case_state == "acknowledged"
    assert outcome.error == "posted, but linking the case failed: 502 on link; moving the case failed: 503 on move"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["linking the case failed: 502 on link", "moving the case failed: 503 on move"]
    cases.close()


def test_a_workflow_without_an_escalated_state_only_comments_and_notes_nothing(tmp_path: Path) -> None:
    workflow = replace(WF, escalated_state=None)
    conn = LocalConnector(LocalConfig(path=str(tmp_path / "c.db")), workflow)
    created = conn.create_case(make_case("FIA-ESC-7"), state="acknowledged", at=T0)
    clocks = [breached("subscriber", "voluntary", "followup", H)]
    [outcome] = apply_escalations(plan_escalations([(conn.find_case("FIA-ESC-7"), clocks)], workflow, now=NOW),
                                  conn, conn, now=NOW)  # fmt: skip
    assert outcome.ok and outcome.notes == () and outcome.case_state == "acknowledged"
    assert len(conn.comments(created.key)) == 1
    conn.close()


@pytest.mark.parametrize(
    ("broken", "error"),
    [
        ({"link": TransientError("502 on link")}, "posted, but linking the case failed: 502 on link"),
        ({"comment": TransientError("503 on comment")}, "posted, but commenting on the case failed: 503 on comment"),
    ],
)
def test_a_failed_link_is_never_overwritten_by_a_later_success_on_a_case_that_cannot_move(
    tracker: LocalConnector, broken: dict[str, Exception], error: str
) -> None:
    tracker.create_case(make_case("FIA-ESC-8"), state="fulfilled", at=T0)  # no transition fulfilled -> escalated
    cases = Broken(tracker.config, broken)
    clocks = [breached("subscriber", "voluntary", "followup", H)]
    plan = plan_escalations([(tracker.find_case("FIA-ESC-8"), clocks)], WF, now=NOW)
    [outcome] = apply_escalations(plan, tracker, cases, now=NOW)
    assert outcome.status == "posted" and outcome.error == error and not outcome.ok
    assert outcome.case_state == "fulfilled"
    cases.close()


def test_the_dossier_carries_the_step_the_run_the_ncb_the_restrictions_and_the_providers_entry() -> None:
    config = EscalationConfig(requesting_ncb="NCB Islamabad", handling_restrictions="Police use only, case FIA-D-1.")
    case = make_case("FIA-D-1", provider="snapchat")
    tracked = TrackedCase(key="7", case=case, state="acknowledged", updated_at=T0)
    clocks = [breached("subscriber", "voluntary", "followup", 15 * 24 * H)]
    [item] = plan_escalations([(tracked, clocks)], WF, now=NOW, config=config, directory=load_directory())
    text = to_plain(item.markdown)
    for said in (
        "Level 1: NCB liaison, repeat 1.",
        "Dedupe key: FIA-D-1/followup/L1/R1",
        f"Prepared: {NOW:%Y-%m-%d %H:%M} UTC",
        "Requesting NCB: NCB Islamabad",
        "Police use only, case FIA-D-1.",
        "Directory entry: Snap",
    ):
        assert said in text, said
    [plain] = plan_escalations([(tracked, clocks)], WF, now=NOW)  # no directory: the case's own words only
    assert "Directory entry" not in to_plain(plain.markdown)


def test_the_title_names_level_repeat_case_and_clock_and_the_case_title_only_when_allowed() -> None:
    case = make_case("FIA-T-1", title="Extortion account", ncb_action="Phone the provider's LE desk")
    tracked = TrackedCase(key="7", case=case, state="acknowledged", updated_at=T0)
    first = [breached("subscriber", "voluntary", "followup", H)]
    [item] = plan_escalations([(tracked, first)], WF, now=NOW)
    label = WF.clocks["followup"].label
    assert item.title == f"NCB escalation L1: FIA-T-1: {label} overdue: Extortion account"
    assert item.action == "Phone the provider's LE desk"  # the case's own request wins over the level's
    allow = [f for f in EscalationConfig().allowlist if f != "title"]
    repeat = [breached("subscriber", "voluntary", "followup", 15 * 24 * H)]
    [item] = plan_escalations([(tracked, repeat)], WF, now=NOW, config=EscalationConfig(allowlist=allow))
    assert item.title == f"NCB escalation L1 R1: FIA-T-1: {label} overdue"
    plain = TrackedCase(key="8", case=make_case("FIA-T-2"), state="acknowledged", updated_at=T0)
    [item] = plan_escalations([(plain, first)], WF, now=NOW)
    assert item.action == "Voluntary request unanswered after 30 days: ask the NCB to follow up"


def test_the_article_3_gate_names_the_case_and_what_to_record() -> None:
    clocks = [breached("subscriber", "voluntary", "followup", H)]

    def blocked(**fields):  # type: ignore[no-untyped-def]
        tracked = TrackedCase(key="7", case=make_case("FIA-A3", **fields), state="acknowledged", updated_at=T0)
        return [str(b) for b in plan_escalations([(tracked, clocks)], WF, now=NOW).blocked]

    assert blocked(article3_checked_by=None) == [
        "FIA-A3: article3_checked_by is not set; record who completed the INTERPOL Article 3 self-check and "
        "when (article3_checked_by, article3_checked_at)"
    ]
    assert blocked(article3_checked_at=NOW + timedelta(seconds=1)) == [
        "FIA-A3: article3_checked_at is in the future; correct it"
    ]
    assert blocked(article3_checked_at=NOW) == []  # checked at the very instant of the run: fine


def test_a_named_case_without_clock_results_says_so_and_an_emergency_goes_first() -> None:
    quiet = TrackedCase(key="1", case=make_case("FIA-Q"), state="acknowledged", updated_at=T0)
    plan = plan_escalations([(quiet, [])], WF, now=NOW, only=["FIA-Q"])
    assert [str(n) for n in plan.not_due] == ["FIA-Q: no clock results (no clock runs for this case)"]
    assert plan_escalations([(quiet, [])], WF, now=NOW).not_due == []  # only said for a case asked about
    routine = TrackedCase(key="2", case=make_case("FIA-R"), state="acknowledged", updated_at=T0)
    urgent = TrackedCase(key="3", case=make_case("FIA-E", request_type="emergency"), state="acknowledged",
                         updated_at=T0)  # fmt: skip
    cases = [(routine, [breached("subscriber", "voluntary", "followup", 20 * 24 * H)]),
             (urgent, [breached("subscriber", "voluntary", "followup", H)])]  # fmt: skip
    plan = plan_escalations(cases, WF, now=NOW)
    assert [(p.reference, p.threat_to_life) for p in plan] == [("FIA-E", True), ("FIA-R", False)]


def test_a_long_case_title_is_cut_to_250_characters() -> None:
    case = make_case("FIA-L", title="x" * 255)
    tracked = TrackedCase(key="1", case=case, state="acknowledged", updated_at=T0)
    [item] = plan_escalations([(tracked, [breached("subscriber", "voluntary", "followup", H)])], WF, now=NOW)
    assert len(item.title) == 250 and item.title.startswith("NCB escalation L1: FIA-L: ")


ONE_LEVEL = (EscalationLevel(1, 2 * H, "NCB liaison"),)


@pytest.mark.parametrize("rule", [EscalationRule(ONE_LEVEL), EscalationRule(ONE_LEVEL, repeat_after=H)])
def test_a_policy_without_repeats_never_posts_a_repeat(rule: EscalationRule) -> None:
    base = target("subscriber", "voluntary", "followup")
    clock = FakeClock("followup", "breached", T0, 400 * H, replace(base, escalate=rule))
    level, repeat = due_step(clock)  # type: ignore[misc]
    assert (level.level, repeat) == (1, 0)

"""Escalation behaviours the NCB liaison desk relies on (issue 19): a breach before level 1 posts
nothing and says when level 1 starts; max_repeats = 1 re-posts exactly once; the case's move to the
escalated state is stamped with the run's --now; the target is asked which keys it holds one page at a
time, and a failed lookup fails only its page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from casebridge.app import escalate
from casebridge.app.escalate import apply_escalations
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import TransientError
from casebridge.workflows.escalation import due_step, plan_escalations
from casebridge.workflows.model import EscalationLevel, EscalationRule
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
    tmp_path: Path, tracker: LocalConnector, monkeypatch: pytest.MonkeyPatch, error: Exception, said: str
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
    liaison.close()


class RecordingAudit:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []

    def append(self, kind: str, data: dict) -> None:
        self.records.append((kind, data))

"""Escalation behaviours the NCB liaison desk relies on (issue 19): a breach before level 1 posts
nothing and says when level 1 starts; max_repeats = 1 re-posts exactly once; the case's move to the
escalated state is stamped with the run's --now."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from casebridge.app.escalate import apply_escalations
from casebridge.connectors.local import LocalConfig, LocalConnector
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

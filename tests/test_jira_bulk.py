"""Jira in bulk (connectors/jira/bulk.py) on the spec-checked fake Jira: ``find_cases`` is one search per 50
references, ``create_cases`` one ``POST issue/bulk`` per 50 new issues, never a second issue for a
reference (existing ones returned, a lost answer settled by a search, not by sending again), and an
intake stopped halfway is completed by a rerun that creates only what is missing."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from casebridge.app.intake import apply_intake, plan_intake
from casebridge.connectors.jira import JiraConnector
from casebridge.workflows.intake import IntakeRow
from tests.factories import make_case
from tests.jira_server import JiraServer

pytest_plugins = ["tests.jira_fixtures"]


def routes(server: JiraServer) -> Counter[str]:
    out: Counter[str] = Counter()
    for route, n in server.counter.snapshot().items():
        method, path = route.split(" ", 1)
        out[f"{method} {path.split('/rest/api/')[-1][2:]}"] += n
    return out


def references(jira: JiraConnector) -> Counter[str]:
    return Counter(t.case.reference for t in jira.list_cases())


def test_sixty_cases_one_existing_take_two_searches_and_two_bulk_creates(
    jira: JiraConnector, jira_server: JiraServer
) -> None:
    first = jira.create_case(make_case("FIA-BULK-000"))
    cases = [make_case(f"FIA-BULK-{i:03d}") for i in range(60)]
    jira_server.counter.reset()
    made = list(jira.create_cases(cases, states={"FIA-BULK-001": "legal_review"}))
    assert [t.case.reference for t in made] == [c.reference for c in cases]
    assert made[0].key == first.key and made[1].state == "legal_review"
    calls = routes(jira_server)
    assert calls["POST issue/bulk"] == 2 and calls["POST issue"] == 0, calls  # 50 + 9 new issues
    assert sum(n for r, n in calls.items() if "search" in r) == 2, calls  # 60 references, 50 a search
    assert set(references(jira).values()) == {1}
    jira_server.counter.reset()
    found = jira.find_cases([c.reference for c in cases] + ["FIA-BULK-404"])
    assert set(found) == {c.reference for c in cases}
    assert sum(routes(jira_server).values()) == 2


def test_a_lost_bulk_answer_is_settled_by_a_search_and_nothing_is_created_twice(
    jira: JiraConnector, jira_server: JiraServer
) -> None:
    jira_server.faults.add("drop_after_write", method="POST", path=r"/issue/bulk$")
    made = list(jira.create_cases([make_case(f"FIA-LOST-{i}") for i in range(5)]))
    assert [t.case.reference for t in made] == [f"FIA-LOST-{i}" for i in range(5)]
    assert set(references(jira).values()) == {1}, references(jira)
    assert routes(jira_server)["POST issue/bulk"] == 1  # applied once; the lost answer was not resent


def test_an_intake_stopped_halfway_is_completed_by_a_rerun_that_creates_only_the_rest(
    jira: JiraConnector, jira_server: JiraServer
) -> None:
    now = jira_server.clock()  # type: ignore[attr-defined]
    rows = [
        IntakeRow(f"test:{i}", make_case(f"FIA-RES-{i}", submitted_at=now - timedelta(days=1)), "submitted", None)
        for i in range(8)
    ]
    apply_intake(plan_intake(rows[:3], jira), jira, now=now)  # the run that was killed after three
    jira_server.counter.reset()
    actions = plan_intake(rows, jira)
    assert Counter(a.kind for a in actions) == {"create": 5, "unchanged": 3}
    apply_intake(actions, jira, now=now)
    assert references(jira) == Counter(f"FIA-RES-{i}" for i in range(8))
    calls = routes(jira_server)
    assert calls["POST issue/bulk"] == 1 and calls["POST issue"] == 0, calls

"""Fixtures for the Jira tests: a fake Jira per test (Cloud or Data Center) and a connector on it.

Use from a test module with ``pytest_plugins = ["tests.jira_fixtures"]``. The fake checks every request
and response against Atlassian's OpenAPI documents; a test fails at teardown if any did not match.
Without the documents (tests/jira_server/validate.py says where they are looked for) the tests that
start a fake Jira skip with one line under ``-ra``, except under ``CI=true``, where they fail; documents
whose SHA-256 differs always fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from casebridge.connectors.jira import JiraConnector
from casebridge.workflows import load_workflow
from casebridge.workflows.model import Workflow
from tests import optional
from tests.jira_server import JiraServer, validate
from tests.optional import pytest_runtest_makereport  # noqa: F401 (the hook: one skip line)

EMAIL, CLOUD_TOKEN, DC_PAT = "bot@agency.example", "cloud-api-token-7f3a", "dc-personal-access-token-91b2"


def load_test_workflow() -> Workflow:
    return load_workflow("lawful-access")


def require_jira_documents() -> None:
    """Call before starting a fake Jira: skip (fail under CI=true) without Atlassian's documents."""
    problem = validate.documents_problem()
    if problem is None:
        return
    if problem.missing:
        optional.unavailable(f"spec-checked Jira tests: {problem}")
    pytest.fail(str(problem), pytrace=False)


@pytest.fixture
def jira_documents() -> None:
    """For a test that starts its own fake Jira."""
    require_jira_documents()


class Clock:
    """The fake server's clock: moves only when a test says so."""

    def __init__(self) -> None:
        self.at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> None:
        self.at += timedelta(**kwargs)


def build_jira(server: JiraServer, workflow: Workflow, *, skip: set[tuple[str, str]] = frozenset()) -> None:  # type: ignore[assignment]
    """Projects CASE (the workflow's statuses and transitions, minus ``skip`` (source, target) state
    pairs) and NCB (the liaison queue)."""
    labels = {name: s.status_for("jira") for name, s in workflow.states.items()}
    statuses = [labels[workflow.initial]] + [label for name, label in labels.items() if name != workflow.initial]
    transitions: list[tuple[str, list[str] | None, str]] = []
    for t in workflow.transitions:
        sources = [labels[s] for s in sorted(t.sources) if (s, t.target) not in skip]
        if sources:
            transitions.append((t.name or f"To {labels[t.target]}", sources, labels[t.target]))
    server.state.add_project("CASE", name="Data requests", statuses=statuses, transitions=transitions)
    server.state.add_project(
        "NCB", name="NCB liaison", statuses=["Open", "Done"], transitions=[("Done", ["Open"], "Done")]
    )


def connector_config(server: JiraServer, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "url": server.url,
        "project": "CASE",
        "liaison_project": "NCB",
        "retry_floor": 0.5,
    }
    if server.mode == "cloud":
        base.update(deployment="cloud", email=EMAIL, api_token={"env": "CB_TEST_JIRA_TOKEN"})
    else:
        base.update(deployment="datacenter", personal_access_token={"env": "CB_TEST_JIRA_TOKEN"})
    base.update(extra)
    return base


class SleepRecorder:
    """Stands in for time.sleep in retry waits: records, never sleeps."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="session")
def jira_workflow() -> Workflow:
    return load_test_workflow()


@pytest.fixture(params=["cloud", "datacenter"])
def jira_server(request: pytest.FixtureRequest, jira_workflow: Workflow) -> Iterator[JiraServer]:
    require_jira_documents()
    clock = Clock()
    server = JiraServer(request.param, now=clock).start()
    server.clock = clock  # type: ignore[attr-defined]
    build_jira(server, jira_workflow)
    try:
        yield server
    finally:
        server.stop()
    assert server.mismatches == [], "traffic did not match Atlassian's OpenAPI document:\n" + "\n".join(
        server.mismatches
    )


@pytest.fixture
def make_connector(jira_server: JiraServer, jira_workflow: Workflow, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CB_TEST_JIRA_TOKEN", CLOUD_TOKEN if jira_server.mode == "cloud" else DC_PAT)
    made: list[JiraConnector] = []

    def make(*, setup: bool = True, **extra: object) -> JiraConnector:
        config = JiraConnector.config_model.model_validate(connector_config(jira_server, **extra))
        connector = JiraConnector(config, jira_workflow, sleep=SleepRecorder())
        if setup:
            connector.setup(apply=True)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


@pytest.fixture
def jira(make_connector) -> JiraConnector:
    return make_connector()

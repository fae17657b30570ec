"""Fixtures for the Jira tests: a fake Jira per test (Cloud or Data Center) and a connector on it.

Use from a test module with ``pytest_plugins = ["tests.jira_fixtures"]``. The fake checks every request
and response against Atlassian's OpenAPI documents; a test fails at teardown if any did not match.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.jira import JiraConnector
from tests.jira_server import JiraServer
from workflows.model import ClockDef, ClockKind, State, Transition, Workflow

WORKFLOW_FILE = Path(__file__).resolve().parent.parent / "workflows" / "lawful-access.toml"
EMAIL, CLOUD_TOKEN, DC_PAT = "bot@agency.example", "cloud-api-token-7f3a", "dc-personal-access-token-91b2"


def load_test_workflow() -> Workflow:
    """The bundled workflow. Uses ``workflows.load_workflow`` once the lead's loader lands; until then a
    minimal reader of the states, transitions and clocks (all the connector needs)."""
    try:
        from workflows import load_workflow  # type: ignore[attr-defined]

        return load_workflow("lawful-access")
    except ImportError:
        pass
    data = tomllib.loads(WORKFLOW_FILE.read_text(encoding="utf-8"))
    states = {
        name: State(name, s["label"], s.get("terminal", False), dict(s.get("status", {})))
        for name, s in data["states"].items()
    }
    transitions = tuple(
        Transition(frozenset(t["from"]), t["to"], t.get("name", "")) for t in data["transitions"]
    )
    clocks = {
        name: ClockDef(name, ClockKind(c["kind"]), label=c.get("label", ""))
        for name, c in data["clocks"].items()
    }
    wf = data["workflow"]
    return Workflow(wf["name"], wf["initial"], states, transitions, {}, clocks, (), wf.get("escalated_state"))


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
    statuses = [labels[workflow.initial]] + [
        label for name, label in labels.items() if name != workflow.initial
    ]
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
def workflow() -> Workflow:
    return load_test_workflow()


@pytest.fixture(params=["cloud", "datacenter"])
def jira_server(request: pytest.FixtureRequest, workflow: Workflow) -> Iterator[JiraServer]:
    clock = Clock()
    server = JiraServer(request.param, now=clock).start()
    server.clock = clock  # type: ignore[attr-defined]
    build_jira(server, workflow)
    try:
        yield server
    finally:
        server.stop()
    assert server.mismatches == [], "traffic did not match Atlassian's OpenAPI document:\n" + "\n".join(
        server.mismatches
    )


@pytest.fixture
def make_connector(jira_server: JiraServer, workflow: Workflow, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CB_TEST_JIRA_TOKEN", CLOUD_TOKEN if jira_server.mode == "cloud" else DC_PAT)
    made: list[JiraConnector] = []

    def make(*, setup: bool = True, **extra: object) -> JiraConnector:
        config = JiraConnector.config_model.model_validate(connector_config(jira_server, **extra))
        connector = JiraConnector(config, workflow, sleep=SleepRecorder())
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

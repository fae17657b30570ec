"""`casebridge escalate` end to end with Jira (the fake Jira, Cloud and Data Center; every request and
answer checked against Atlassian's OpenAPI documents, the fixture fails the test on any mismatch),
through the real CLI and a real casebridge.toml:

- Jira holds the cases AND the liaison queue (``liaison_project``): cases imported with
  ``casebridge intake``, escalations as issues in NCB carrying the dedupe key in a field, linked to the
  case, the case moved to Escalated;
- Jira is only the liaison queue, the embedded tracker holds the cases.

A rerun posts nothing; a connection dropped after Jira applied a write never makes a second issue.
"""

from __future__ import annotations

import os
import re
import signal
import tomllib
from pathlib import Path
from typing import Any

import pytest

from casebridge.connectors.jira import JiraConnector
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from casebridge.workflows.render import to_plain
from tests.cli_runner import Cli
from tests.escalate_e2e import (
    BLOCKED,
    EXAMPLES,
    EXPECTED_KEYS,
    INTAKE_NOW,
    NOW,
    STATE_AFTER,
    dry_run_dossiers,
    hostile_examples,
    posted_keys,
    spawn,
    write_config,
)
from tests.jira_server import JiraServer
from tests.jira_server.state import Issue

pytest_plugins = ["tests.jira_fixtures"]
pytestmark = pytest.mark.usefixtures("cli_dir")  # tests/conftest.py
WF = load_workflow()
ESCALATED = WF.states["escalated"].status_for("jira")


def jira_section(server: JiraServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from tests.jira_fixtures import CLOUD_TOKEN, DC_PAT, EMAIL  # a plugin of this module: import it late

    monkeypatch.setenv("CB_E2E_JIRA_TOKEN", CLOUD_TOKEN if server.mode == "cloud" else DC_PAT)
    raw: dict[str, Any] = {
        "connector": "jira",
        "url": server.url,
        "project": "CASE",
        "liaison_project": "NCB",
        "retry_floor": 0,  # the CLI's connector really sleeps between retries: keep the waits tiny
        "backoff_base": 0.01,
    }
    if server.mode == "cloud":
        raw.update(deployment="cloud", email=EMAIL, api_token={"env": "CB_E2E_JIRA_TOKEN"})
    else:
        raw.update(deployment="datacenter", personal_access_token={"env": "CB_E2E_JIRA_TOKEN"})
    return raw


def issues(server: JiraServer, project: str) -> list[Issue]:
    return sorted((i for i in server.state.issues.values() if i.project == project), key=lambda i: i.id)


def field_value(server: JiraServer, issue: Issue, name: str) -> Any:
    fdef = server.state.field_by_name(name)
    assert fdef is not None, f"custom field {name!r} was never created"
    return issue.values.get(fdef.id)


def liaison_by_key(server: JiraServer) -> dict[str, Issue]:
    """NCB issues by the dedupe key in their "Escalation key" field; fails on a duplicate key."""
    found: dict[str, Issue] = {}
    for issue in issues(server, "NCB"):
        key = field_value(server, issue, "Escalation key")
        assert key not in found, f"two liaison issues carry {key}: {found[key].key} and {issue.key}"
        found[key] = issue
    return found


def case_issue(server: JiraServer, reference: str) -> Issue:
    matches = [i for i in issues(server, "CASE") if field_value(server, i, "Case reference") == reference]
    assert len(matches) == 1, (reference, [i.key for i in matches])
    return matches[0]


def linked_keys(server: JiraServer, issue: Issue) -> list[str]:
    peers = [link.get("outwardIssue") or link.get("inwardIssue") for link in issue.links]
    return [server.state.issues[peer].key for peer in peers]


def comment_texts(issue: Issue) -> str:
    return "\n".join(str(c["body"]) for c in issue.comments)


def setup_jira(cli: Cli, tmp_path: Path, section: dict[str, Any]) -> None:
    """``casebridge setup --apply`` with Jira as the tracker: creates the custom fields over the API.
    (``setup`` knows only [tracker]; a liaison-only Jira is set up through a config naming it tracker.)"""
    folder = tmp_path / "setup"
    folder.mkdir(exist_ok=True)
    config = write_config(folder, section)
    code, out, err = cli("--config", str(config), "setup", "--apply")
    assert code == 0 and "is ready for workflow 'lawful-access'" in out, out + err


# ----------------------------------------------------------------------- Jira: cases and liaison queue
def test_jira_cases_and_liaison_queue(
    cli: Cli, tmp_path: Path, jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, jira_section(jira_server, monkeypatch))
    assert cli("setup", "--apply")[0] == 0
    code, out, err = cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    assert code == 0 and "created 14" in out, out + err
    assert len(issues(jira_server, "CASE")) == 14

    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert code == 1 and data["blocked_cases"] == BLOCKED
    assert posted_keys(data) == EXPECTED_KEYS
    queue = liaison_by_key(jira_server)
    assert set(queue) == EXPECTED_KEYS
    for outcome in data["outcomes"]:
        ncb = queue[outcome["dedupe_key"]]
        assert outcome["posted_key"] == ncb.key and outcome["url"] == f"{jira_server.url}/browse/{ncb.key}"
        assert field_value(jira_server, ncb, "Case reference") == outcome["reference"]
        case = case_issue(jira_server, outcome["reference"])
        assert linked_keys(jira_server, case) == [ncb.key]  # one issue link, case -> escalation
        assert linked_keys(jira_server, ncb) == [case.key]
        want = ESCALATED if STATE_AFTER[outcome["reference"]] == "escalated" else case.status
        assert case.status == want and outcome["case_state"] == STATE_AFTER[outcome["reference"]]
        assert ncb.key in comment_texts(case) and len(case.comments) == 1
    assert case_issue(jira_server, "FIA-CCW-2026-0159").links == []  # blocked: nothing posted or linked

    before = jira_server.counter.writes
    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert code == 1 and posted_keys(data) == set()
    # every planned item is already in the queue: nothing is applied (so no outcomes are listed)
    assert {o["status"] for o in data["outcomes"]} <= {"already_posted"}
    assert jira_server.counter.writes == before  # the rerun wrote nothing at all
    assert set(liaison_by_key(jira_server)) == EXPECTED_KEYS


def test_jira_dropped_connections_after_applied_writes_still_one(
    cli: Cli, tmp_path: Path, jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, jira_section(jira_server, monkeypatch))
    cli("setup", "--apply")
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    # Jira applies the write, then the connection drops without an answer
    create = jira_server.faults.add("drop_after_write", method="POST", path=r"/issue$")
    link = jira_server.faults.add("drop_after_write", method="POST", path=r"/issueLink$")
    move = jira_server.faults.add("drop_after_write", method="POST", path=r"/transitions$")
    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert (create.fired, link.fired, move.fired) == (1, 1, 1)
    assert code == 1 and posted_keys(data) == EXPECTED_KEYS
    assert all(o["error"] is None for o in data["outcomes"]), data["outcomes"]
    queue = liaison_by_key(jira_server)  # fails on a duplicate
    assert set(queue) == EXPECTED_KEYS and len(issues(jira_server, "NCB")) == 3
    for key, ncb in queue.items():
        case = case_issue(jira_server, key.split("/")[0])
        assert linked_keys(jira_server, case) == [ncb.key] and len(case.comments) == 1
        moves = [c for c in case.changelog if any(i.get("toString") == ESCALATED for i in c["items"])]
        assert len(moves) == (1 if STATE_AFTER[case_ref(jira_server, case)] == "escalated" else 0)
    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert posted_keys(data) == set() and len(issues(jira_server, "NCB")) == 3


def case_ref(server: JiraServer, issue: Issue) -> str:
    return str(field_value(server, issue, "Case reference"))


def test_jira_dry_run_posts_nothing_and_shows_what_is_then_posted(
    cli: Cli, tmp_path: Path, jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, jira_section(jira_server, monkeypatch))
    cli("setup", "--apply")
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    before = jira_server.counter.writes
    _, text, _ = cli("escalate", "--dry-run", "--now", NOW)
    _, planned = cli.json("escalate", "--dry-run", "--now", NOW)
    assert jira_server.counter.writes == before and issues(jira_server, "NCB") == []
    shown = dry_run_dossiers(text)
    assert set(shown) == EXPECTED_KEYS
    assert {p["dedupe_key"]: to_plain(p["markdown"]).strip("\n") for p in planned["planned"]} == shown
    titles = {p["dedupe_key"]: p["title"] for p in planned["planned"]}
    markdown = {p["dedupe_key"]: p["markdown"] for p in planned["planned"]}
    cli.json("escalate", "--yes", "--now", NOW)
    queue = liaison_by_key(jira_server)
    assert set(queue) == set(shown)
    renderer = JiraConnector(JiraConnector.config_model.model_validate(_without_connector(tmp_path)), WF)
    for key, ncb in queue.items():
        assert ncb.values["summary"] == titles[key]
        # the issue's description is exactly the dry run's dossier, rendered for this Jira (ADF / wiki)
        assert ncb.values["description"] == renderer.ops().rich(markdown[key])


def _without_connector(tmp_path: Path) -> dict[str, Any]:
    raw = tomllib.loads((tmp_path / "casebridge.toml").read_text())["tracker"]
    raw.pop("connector")
    return raw


# --------------------------------------------------------------------- embedded cases, Jira liaison queue
def test_embedded_cases_with_jira_liaison_queue(
    cli: Cli, tmp_path: Path, jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = jira_section(jira_server, monkeypatch)
    setup_jira(cli, tmp_path, section)
    write_config(tmp_path, {"connector": "local", "path": "casebridge.db"}, section)
    assert cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)[0] == 0
    assert issues(jira_server, "CASE") == []  # the cases stay in the embedded tracker
    create = jira_server.faults.add("drop_after_write", method="POST", path=r"/issue$")

    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert code == 1 and data["blocked_cases"] == BLOCKED and create.fired == 1
    assert posted_keys(data) == EXPECTED_KEYS
    queue = liaison_by_key(jira_server)
    assert set(queue) == EXPECTED_KEYS and len(issues(jira_server, "NCB")) == 3
    cases = LocalConnector(LocalConfig(path=str(tmp_path / "casebridge.db")), WF)
    try:
        for key, ncb in queue.items():
            reference = key.split("/")[0]
            assert field_value(jira_server, ncb, "Case reference") == reference
            assert ncb.links == []  # no Jira issue to link to: the link lives in the embedded tracker
            case = cases.find_case(reference)
            assert case is not None and case.state == STATE_AFTER[reference]
            assert cases.links(case.key) == [(ncb.key, f"{jira_server.url}/browse/{ncb.key}")]
            assert ncb.key in cases.comments(case.key)[-1]
        assert cases.liaison_items() == []  # nothing went to the embedded queue
    finally:
        cases.close()

    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert posted_keys(data) == set() and len(issues(jira_server, "NCB")) == 3


# -------------------------------------------------------------------------------- hostile case data
def test_jira_hostile_case_data_is_inert_in_the_liaison_issue(
    cli: Cli, tmp_path: Path, jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, jira_section(jira_server, monkeypatch))
    cli("setup", "--apply")
    code, out, err = cli("intake", str(hostile_examples(tmp_path)), "--now", INTAKE_NOW)
    assert code == 0, out + err
    _, data = cli.json("escalate", "--yes", "--now", NOW)
    assert posted_keys(data) == EXPECTED_KEYS, data
    for key, ncb in liaison_by_key(jira_server).items():
        case_url = f"{jira_server.url}/browse/{case_issue(jira_server, key.split('/')[0]).key}"
        description = ncb.values["description"]
        if jira_server.mode == "cloud":  # ADF: only the dossier's own marks, only the case's link
            texts, marks = adf_texts_and_marks(description)
            assert {m["type"] for m in marks} <= {"strong", "link"}
            assert {m["attrs"]["href"] for m in marks if m["type"] == "link"} <= {case_url}
            assert "<script>alert('xss')</script>" in "".join(texts)
        else:  # wiki markup: no macros, mentions or foreign links made of case data
            assert "{code}" not in description and "{noformat}" not in description and "[~" not in description
            links = re.findall(r"(?<!\\)\[([^\]]*)\]", description)
            assert all(link.endswith("|" + case_url) for link in links), links
            assert not re.search(r"^\s*h\d\. Heading", description, re.M)  # no heading made of case data
            assert "h1. Heading" in description  # ...the text is there, mid-line
        assert "\n" not in ncb.values["summary"]


def adf_texts_and_marks(doc: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    texts: list[str] = []
    marks: list[dict[str, Any]] = []
    nodes = [doc]
    while nodes:
        node = nodes.pop()
        if node.get("type") == "text":
            texts.append(node["text"])
            marks.extend(node.get("marks", []))
        nodes.extend(reversed(node.get("content", [])))
    return texts, marks


# ----------------------------------------------------------------------------- killed after the post
def test_jira_killed_after_the_liaison_issue_was_created_still_one(
    cli: Cli, tmp_path: Path, jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, jira_section(jira_server, monkeypatch))
    cli("setup", "--apply")
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    # Jira creates the first liaison issue; its answer waits until the process is dead
    hold = jira_server.faults.add("hold_after_write", method="POST", path=r"/issue$")
    child = spawn(tmp_path, "escalate", "--yes", "--now", NOW)
    try:
        assert hold.applied.wait(timeout=120), "the escalate process never created the liaison issue"
        os.kill(child.pid, signal.SIGKILL)
        child.communicate()
    finally:
        hold.release.set()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    first = issues(jira_server, "NCB")
    assert len(first) == 1 and first[0].links == []  # posted, never linked: the process died first
    killed_ref = case_ref(jira_server, first[0])

    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert code == 1
    statuses = {o["dedupe_key"]: o["status"] for o in data["outcomes"]}
    assert {k for k, s in statuses.items() if s == "already_posted"} == {f"{killed_ref}/legal_deadline/L2"}
    assert posted_keys(data) == EXPECTED_KEYS - {f"{killed_ref}/legal_deadline/L2"}
    queue = liaison_by_key(jira_server)  # fails on a duplicate
    assert set(queue) == EXPECTED_KEYS and len(issues(jira_server, "NCB")) == 3
    case = case_issue(jira_server, killed_ref)  # the rerun repaired the case side
    assert linked_keys(jira_server, case) == [first[0].key] and case.status == ESCALATED
    assert len(case.comments) == 1
    code, data = cli.json("escalate", "--yes", "--now", NOW)
    assert posted_keys(data) == set() and len(issues(jira_server, "NCB")) == 3


def test_check_and_setup_cover_a_liaison_queue_on_another_target(
    cli: Cli, tmp_path: Path, jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cases in the embedded tracker, the NCB queue in Jira: `check` reports what Jira lacks, and
    `setup jira --apply` (the liaison's name) creates it."""
    write_config(tmp_path, {"connector": "local", "path": "casebridge.db"}, jira_section(jira_server, monkeypatch))
    code, out, err = cli("check")
    assert code == 2
    assert "jira: missing custom field 'Escalation key'" in out
    assert "run `casebridge setup jira`" in err
    code, out, _ = cli("setup", "jira", "--apply")
    assert code == 0, out
    code, out, _ = cli("check")
    assert (code, out.strip()) == (0, "tracker local and liaison jira: ready for workflow lawful-access")
    code, _, err = cli("setup", "redmine")
    assert code == 2 and "'redmine' is not configured here (configured: local, jira" in err


def test_setup_apply_that_creates_nothing_fails(
    cli: Cli, tmp_path: Path, jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every field create refused: setup says so and exits 2 (it used to exit 0 having created nothing)."""
    write_config(tmp_path, {**jira_section(jira_server, monkeypatch), "max_attempts": 1})
    jira_server.faults.add("500", method="POST", path=r"/field$", times=1000)
    code, out, err = cli("setup", "--apply")
    assert code == 2 and "could not create custom field" in out
    assert "still missing after --apply" in err

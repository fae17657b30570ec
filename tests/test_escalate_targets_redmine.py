"""`casebridge escalate` end to end against the real Redmine 5.0 (tests/redmine_fixtures.py), through
the real CLI and a real casebridge.toml, as the non-admin case officer: the cases in the project
``data-requests``, the liaison queue in ``interpol-liaison``, each escalation related to its case across
the projects. A rerun posts nothing; a process killed right after Redmine created the liaison issue
(its answer held back by a loopback proxy) leaves one issue, and the rerun repairs the case side.
Under CI=true an unreachable Redmine fails these tests instead of skipping them (the fixtures do it).

Redmine stamps creations and status changes with its own clock, so no moment here is a calendar date:
the sample cases are shifted to the server's time when the test starts (``samples``), and every
``--now`` is the server's time when the command runs (``redmine.clock()``).
"""

from __future__ import annotations

import base64
import html as html_lib
import os
import re
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from casebridge.workflows import load_workflow
from casebridge.workflows.render import to_plain
from tests.cli_runner import Cli
from tests.escalate_e2e import (
    BLOCKED,
    EXPECTED_KEYS,
    STATE_AFTER,
    dry_run_dossiers,
    hostile_examples,
    posted_keys,
    shifted_examples,
    spawn,
    write_config,
)
from tests.hold_proxy import HoldProxy

pytest_plugins = ["tests.redmine_fixtures"]
pytestmark = [pytest.mark.redmine, pytest.mark.usefixtures("cli_dir")]  # cli_dir: tests/conftest.py
WF = load_workflow()
ESCALATED = WF.states["escalated"].status_for("redmine")
CASES, LIAISON = "data-requests", "interpol-liaison"
KEY_ENV = "CB_E2E_REDMINE_KEY"
REDMINE_TAGS = {"a", "h1", "h2", "h3", "p", "ul", "ol", "li", "strong", "em", "table", "tr", "th", "td", "br"}


@pytest.fixture
def officer_config(redmine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Writes casebridge.toml for Redmine (as the officer, through ``url``); returns the writer."""
    monkeypatch.setenv(KEY_ENV, redmine.officer_key)

    def write(url: str = redmine.url) -> Path:
        section = {
            "connector": "redmine",
            "url": url,
            "api_key": {"env": KEY_ENV},
            "project": CASES,
            "liaison_project": LIAISON,
            "retry_ceiling": 1,  # the CLI's connector really sleeps between retries
        }
        return write_config(tmp_path, section)

    return write


@pytest.fixture
def samples(redmine: Any, tmp_path: Path) -> Path:
    """examples/cases.json moved so that the server's time now is the samples' NOW."""
    return shifted_examples(tmp_path, redmine.clock())


def server_now(redmine: Any) -> str:
    """``--now`` for a command run now: Redmine's time, which is never before a stamp it already made."""
    moment: datetime = redmine.clock()
    return moment.isoformat()


def issues(redmine: Any, project: str) -> list[dict[str, Any]]:
    answer = redmine.api(
        "GET", "/issues.json", params={"project_id": project, "status_id": "*", "limit": 100, "sort": "id"}
    )
    answer.raise_for_status()
    return answer.json()["issues"]


def cf(issue: dict[str, Any], name: str) -> Any:
    return next((f.get("value") for f in issue.get("custom_fields", []) if f["name"] == name), None)


def liaison_by_key(redmine: Any) -> dict[str, dict[str, Any]]:
    """Liaison issues by the dedupe key in their "Escalation key" field; fails on a duplicate key."""
    found: dict[str, dict[str, Any]] = {}
    for issue in issues(redmine, LIAISON):
        key = cf(issue, "Escalation key")
        assert key not in found, f"two liaison issues carry {key}: #{found[key]['id']} and #{issue['id']}"
        found[key] = issue
    return found


def case_issue(redmine: Any, reference: str) -> dict[str, Any]:
    matches = [i for i in issues(redmine, CASES) if cf(i, "Case reference") == reference]
    assert len(matches) == 1, (reference, [i["id"] for i in matches])
    return matches[0]


def related_ids(redmine: Any, issue_id: int) -> list[tuple[int, str]]:
    relations = redmine.api("GET", f"/issues/{issue_id}/relations.json").json()["relations"]
    return [(r["issue_to_id"] if r["issue_id"] == issue_id else r["issue_id"], r["relation_type"]) for r in relations]


def notes(redmine: Any, issue_id: int) -> list[str]:
    issue = redmine.api("GET", f"/issues/{issue_id}.json", params={"include": "journals"}).json()["issue"]
    return [j["notes"] for j in issue.get("journals", []) if j.get("notes")]


def assert_escalated(redmine: Any, key: str, liaison: dict[str, Any]) -> None:
    """The case of ``key``: related to the liaison issue across projects, moved (or left), one note."""
    reference = key.split("/")[0]
    case = case_issue(redmine, reference)
    assert liaison["project"]["name"] != case["project"]["name"]  # two projects
    assert related_ids(redmine, case["id"]) == [(liaison["id"], "relates")]
    if STATE_AFTER[reference] == "escalated":
        assert case["status"]["name"] == ESCALATED
    else:
        assert case["status"]["name"] != ESCALATED
    case_notes = notes(redmine, case["id"])
    assert len(case_notes) == 1 and f"/issues/{liaison['id']}" in case_notes[0]
    assert cf(liaison, "Case reference") == reference


# ------------------------------------------------------------------------------------------- tests
def test_redmine_two_projects_posts_once_then_nothing(
    cli: Cli, redmine: Any, officer_config: Any, samples: Path
) -> None:
    officer_config()
    code, out, err = cli("intake", str(samples), "--now", server_now(redmine))
    assert code == 0 and "created 14" in out, out + err
    assert len(issues(redmine, CASES)) == 14

    code, data = cli.json("escalate", "--yes", "--now", server_now(redmine))
    assert code == 1 and data["blocked_cases"] == BLOCKED
    assert posted_keys(data) == EXPECTED_KEYS, data
    queue = liaison_by_key(redmine)
    assert set(queue) == EXPECTED_KEYS
    for outcome in data["outcomes"]:
        liaison = queue[outcome["dedupe_key"]]
        assert outcome["posted_key"] == str(liaison["id"]) and outcome["url"].endswith(f"/issues/{liaison['id']}")
        assert outcome["case_state"] == STATE_AFTER[outcome["reference"]] and outcome["error"] is None
        assert_escalated(redmine, outcome["dedupe_key"], liaison)
    assert related_ids(redmine, case_issue(redmine, "FIA-CCW-2026-0159")["id"]) == []  # blocked

    code, data = cli.json("escalate", "--yes", "--now", server_now(redmine))  # a rerun, later
    assert code == 1 and posted_keys(data) == set()
    assert set(liaison_by_key(redmine)) == EXPECTED_KEYS and len(issues(redmine, LIAISON)) == 3
    for key, liaison in queue.items():
        assert_escalated(redmine, key, liaison)  # no second relation, note or move


def test_redmine_killed_after_the_liaison_issue_was_created_still_one(
    cli: Cli, redmine: Any, officer_config: Any, tmp_path: Path, samples: Path
) -> None:
    officer_config()
    cli("intake", str(samples), "--now", server_now(redmine))
    proxy = HoldProxy(redmine.url).start()
    try:
        officer_config(proxy.url)  # the killed process talks to Redmine through the proxy
        hold = proxy.arm("POST", r"^/issues\.json")  # during escalate, only liaison issues are created
        child = spawn(tmp_path, "escalate", "--yes", "--now", server_now(redmine))
        try:
            assert hold.applied.wait(timeout=300), "the escalate process never created the liaison issue"
            os.kill(child.pid, signal.SIGKILL)
            child.communicate()
        finally:
            hold.release.set()
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == -signal.SIGKILL
    finally:
        proxy.stop()
    first = issues(redmine, LIAISON)
    assert len(first) == 1  # Redmine created it; the process died before it saw the answer
    killed_key = cf(first[0], "Escalation key")
    assert related_ids(redmine, case_issue(redmine, killed_key.split("/")[0])["id"]) == []

    officer_config()
    code, data = cli.json("escalate", "--yes", "--now", server_now(redmine))
    assert code == 1
    assert {o["dedupe_key"] for o in data["outcomes"] if o["status"] == "already_posted"} == {killed_key}
    assert posted_keys(data) == EXPECTED_KEYS - {killed_key}
    queue = liaison_by_key(redmine)  # fails on a duplicate
    assert set(queue) == EXPECTED_KEYS and len(issues(redmine, LIAISON)) == 3
    for key, liaison in queue.items():
        assert_escalated(redmine, key, liaison)  # the killed case was repaired on the rerun
    code, data = cli.json("escalate", "--yes", "--now", server_now(redmine))
    assert posted_keys(data) == set() and len(issues(redmine, LIAISON)) == 3


def test_redmine_dry_run_posts_nothing_and_shows_what_is_then_posted(
    cli: Cli, redmine: Any, officer_config: Any, samples: Path
) -> None:
    from casebridge.connectors.redmine.text import render

    officer_config()
    cli("intake", str(samples), "--now", server_now(redmine))
    # one moment for the dry runs and the post: the dossiers (overdue times included) must be the same
    now = server_now(redmine)
    _, text, _ = cli("escalate", "--dry-run", "--now", now)
    _, planned = cli.json("escalate", "--dry-run", "--now", now)
    assert issues(redmine, LIAISON) == []
    assert all(related_ids(redmine, i["id"]) == [] for i in issues(redmine, CASES))
    shown = dry_run_dossiers(text)
    markdown = {p["dedupe_key"]: p["markdown"] for p in planned["planned"]}
    assert set(shown) == EXPECTED_KEYS and {k: to_plain(v).strip("\n") for k, v in markdown.items()} == shown
    titles = {p["dedupe_key"]: p["title"] for p in planned["planned"]}
    cli.json("escalate", "--yes", "--now", now)
    queue = liaison_by_key(redmine)
    assert set(queue) == set(shown)
    for key, liaison in queue.items():
        assert liaison["subject"] == titles[key]
        # the issue's description is the dry run's dossier, in the instance's text formatting
        assert liaison["description"].replace("\r\n", "\n").strip() == render(markdown[key], "textile").strip()


def test_redmine_hostile_case_data_is_inert_as_redmine_renders_it(
    cli: Cli, redmine: Any, officer_config: Any, tmp_path: Path, samples: Path
) -> None:
    officer_config()
    hostile = hostile_examples(tmp_path, source=samples)
    code, out, err = cli("intake", str(hostile), "--now", server_now(redmine))
    assert code == 0, out + err
    _, data = cli.json("escalate", "--yes", "--now", server_now(redmine))
    assert posted_keys(data) == EXPECTED_KEYS, data
    queue = liaison_by_key(redmine)
    # Redmine's own formatter renders each liaison issue's description (what the NCB officer sees)
    ruby = "require 'base64'\n" + "".join(
        "puts Redmine::WikiFormatting.to_html('textile', Base64.strict_decode64("
        f"'{base64.b64encode(issue['description'].encode()).decode()}').force_encoding('UTF-8'))\nputs '-----'\n"
        for issue in queue.values()
    )
    pages = redmine.rails_runner(ruby).split("-----")[: len(queue)]
    assert len(pages) == 3
    case_urls = {f"{redmine.url}/issues/{case_issue(redmine, k.split('/')[0])['id']}" for k in queue}
    for html in pages:
        # only the elements the dossier itself makes; the only link is the case's
        assert set(re.findall(r"<\s*([a-zA-Z0-9]+)", html)) <= REDMINE_TAGS
        assert set(re.findall(r'href="([^"]*)"', html)) <= case_urls
        assert not re.search(r"<[a-zA-Z][^>]*\son\w+\s*=", html)  # no event handler inside a tag
        assert 'class="user' not in html and 'class="issue' not in html  # no @mention / #1 links
        shown = html_lib.unescape(re.sub(r"<[^>]+>", "", html))
        assert "<script>alert('xss')</script>" in shown and "[~admin]" in shown  # the text is shown as text

"""Issue 13 item 6/8: the same samples give the same JSON report from Jira and Redmine as from the embedded
tracker, through the real `casebridge report --format json` and a real casebridge.toml per tracker.

Only the embedded tracker back-dates; the others stamp their own time:
- the fake Jira's clock is the test's (tests/jira_fixtures.py ``Clock``): every creation and move of the
  samples happens with the server's clock set to its moment, so the report is the golden one
  (tests/test_report_golden.py), compared whole;
- Redmine's clock is its own: the samples are shifted so that their sending dates sit behind the
  server's time, every move happens now (in order, a few seconds apart, as Redmine stamps them), and the
  embedded tracker replays the same moves at the instants Redmine recorded, after the test checked those
  instants against the server's clock. Both reports are computed at one ``--now`` taken from Redmine.
Per-case links differ by tracker (each points into its own tracker); everything else must be equal.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from tests.cli_runner import Cli
from tests.escalate_e2e import write_config
from tests.report_samples import NOW, NOW_ISO, SAMPLES, Sample, load_samples, replay_samples
from tests.report_samples import write_config as write_local_config

pytest_plugins = ["tests.jira_fixtures", "tests.redmine_fixtures"]
pytestmark = pytest.mark.usefixtures("cli_dir")  # tests/conftest.py
WORKFLOW = load_workflow()


def report(cli: Cli, folder: Path, now: str) -> dict[str, Any]:
    code, out, err = cli("--config", str(folder / "casebridge.toml"), "report", "--format", "json", "--now", now,
                         "--by", "provider", "--by", "legal_basis", "--by", "request_type", "--by", "agency",
                         "--by", "month")  # fmt: skip
    assert code == 0, err
    return json.loads(out)


def without_links(data: dict[str, Any]) -> tuple[dict[str, Any], list[str | None]]:
    """The report without its per-case tracker links, and those links."""
    rows = data.get("open_breaches", [])
    links = [row.pop("url") for row in rows]
    return data, links


def cached_report(cli: Cli, folder: Path, now: str) -> dict[str, Any]:
    """The report after a sync pass filled the state store (histories read from its cache)."""
    code, out, err = cli("--config", str(folder / "casebridge.toml"), "sync", "--no-remind", "--now", now)
    assert code == 0, out + err
    assert (folder / "casebridge-state.db").is_file()
    return without_links(report(cli, folder, now))[0]


def embedded_report(
    cli: Cli,
    folder: Path,
    now: str,
    samples: tuple[Sample, ...] = SAMPLES,
    created_at: dict[str, datetime] | None = None,
) -> dict[str, Any]:
    folder.mkdir()
    tracker = LocalConnector(LocalConfig(path=str(write_local_config(folder))), WORKFLOW)
    try:
        load_samples(tracker, samples, created_at=created_at)
    finally:
        tracker.close()
    return report(cli, folder, now)


# ---------------------------------------------------------------------------------------------------- Jira
def test_jira_gives_the_embedded_trackers_report(
    jira_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_escalate_targets_jira import jira_section

    cli = Cli(capsys)
    jira_dir = tmp_path / "jira"
    jira_dir.mkdir()
    write_config(jira_dir, jira_section(jira_server, monkeypatch))
    code, out, err = cli("--config", str(jira_dir / "casebridge.toml"), "setup", "jira", "--apply")
    assert code == 0, out + err
    connector = _jira_connector(jira_server, monkeypatch)
    try:

        def set_clock(moment: datetime) -> None:
            jira_server.clock.at = moment

        def set_reason(key: str, reason: str) -> None:  # as a person sets it: the field, not the case data
            body = {"fields": {connector.field_id("refusal_reason"): reason}}
            connector.http().call("PUT", f"issue/{key}", json=body)

        replay_samples(connector, set_clock, set_reason=set_reason)
    finally:
        connector.close()
    jira_server.clock.at = NOW
    from_jira, jira_links = without_links(report(cli, jira_dir, NOW_ISO))
    embedded, local_links = without_links(embedded_report(cli, tmp_path / "embedded", NOW_ISO))
    assert from_jira == embedded
    assert cached_report(cli, jira_dir, NOW_ISO) == embedded  # from the sync job's cached histories
    assert embedded["total"]["refused"] == 3 and embedded["open_breaches"]  # the comparison is not vacuous
    assert all(link and link.startswith(f"{jira_server.url}/browse/CASE-") for link in jira_links)
    assert len(jira_links) == len(local_links)


def _jira_connector(server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from casebridge.connectors.jira import JiraConnector
    from tests.jira_fixtures import connector_config
    from tests.test_escalate_targets_jira import jira_section

    raw = jira_section(server, monkeypatch)
    config = JiraConnector.config_model.model_validate(
        connector_config(server, **{k: v for k, v in raw.items() if k in ("api_token", "personal_access_token")})
    )
    return JiraConnector(config, WORKFLOW, sleep=lambda s: None)


# ------------------------------------------------------------------------------------------------- Redmine
@pytest.mark.redmine
def test_redmine_gives_the_embedded_trackers_report(
    redmine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(capsys)
    monkeypatch.setenv("CB_REPORT_REDMINE_KEY", redmine.officer_key)
    redmine_dir = tmp_path / "redmine"
    redmine_dir.mkdir()
    section = {"connector": "redmine", "url": redmine.url, "api_key": {"env": "CB_REPORT_REDMINE_KEY"}}
    write_config(redmine_dir, section | {"project": "data-requests", "retry_ceiling": 1})
    start = redmine.clock()
    delta = start - NOW  # the samples' sending dates move behind the server's time; their moves happen now
    shifted = tuple(  # the moves keep their order; Redmine stamps them now
        replace(s, submitted=s.submitted and s.submitted + delta, moves=tuple((w + delta, m) for w, m in s.moves))
        for s in SAMPLES
    )
    connector = redmine.connector(key=redmine.officer_key)
    field = connector.schema.fields["refusal_reason"]

    def set_reason(key: str, reason: str) -> None:  # as a person sets it: the list field, not the case data
        body = {"issue": {"custom_fields": [{"id": field, "value": reason}]}}
        answer = redmine.api("PUT", f"/issues/{key}.json", key=redmine.officer_key, json=body)
        assert answer.status_code == 204, answer.text

    try:
        replay_samples(connector, lambda moment: None, shifted, set_reason=set_reason)
        end = redmine.clock()
        found = connector.find_cases(s.reference for s in shifted)
        histories = {ref: connector.read_history(t.key) for ref, t in found.items()}
    finally:
        connector.close()
    # what Redmine recorded: each sample's states in order, stamped by its clock between start and end
    for s in shifted:
        history = histories[s.reference]
        assert [c.state for c in history] == [s.first_state, *(state for _, state in s.moves)]
        assert all(start <= c.at <= end for c in history), (s.reference, history)
    replica = tuple(replace(s, moves=tuple((c.at, c.state) for c in histories[s.reference][1:])) for s in shifted)
    created = {ref: history[0].at for ref, history in histories.items()}
    now = (end + timedelta(hours=1)).isoformat()
    from_redmine, redmine_links = without_links(report(cli, redmine_dir, now))
    embedded, _ = without_links(embedded_report(cli, tmp_path / "embedded", now, replica, created))
    assert from_redmine == embedded
    assert cached_report(cli, redmine_dir, now) == embedded  # from the sync job's cached histories
    total = embedded["total"]
    assert (total["requests"], total["refused"], total["redirected_mla"], total["escalations"]) == (9, 3, 1, 1)
    assert embedded["groupings"]["provider"] and total["legal_breached"] > 0  # not vacuous
    assert all(link and link.startswith(f"{redmine.url}/issues/") for link in redmine_links)

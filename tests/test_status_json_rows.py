"""``status --json`` rows written straight to text (cli.status_json) are the very bytes of the dicts
``evaluation_json`` builds, encoded by ``json.dumps(indent=2, ensure_ascii=False)``: law-counted and
elapsed clocks, known and default calendars, every zone's offset, hostile text, reminders, idle clocks
shared between cases, a case with no clock at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casebridge.app.sync_plan import CaseEvaluation, evaluate_cases, history_reader
from casebridge.cli import status_json
from casebridge.cli.cases_cmds import evaluation_json
from casebridge.cli.config import load_settings
from casebridge.cli.status_json import StatusRows
from casebridge.workflows.counting import _minute
from tests.cli_runner import Cli
from tests.test_counting_cli import WORKFLOW, _case

NOW = "2027-05-26T09:30:00Z"
HOSTILE = "Meta \"Platforms\"\\ \u2028\x00 <b>=cmd|' /C calc'!A0"


def _cases() -> list[dict]:
    received = datetime(2027, 4, 23, 11, 0, 17, 250_000, tzinfo=UTC)
    kinds = [("subscriber", "eu-epo"), ("emergency", "eu-epo"), ("preservation", "us-2703f"), ("content", "mlat")]
    zones = ["UTC", "Asia/Karachi", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham", "Europe/Dublin"]
    providers = ["Meta", "Microsoft", HOSTILE, "Télégramme Ⓡ"]
    cases = []
    for i in range(24):
        request_type, basis = kinds[i % len(kinds)]
        at = (received + timedelta(days=i, hours=i * 5, minutes=i * 7)).isoformat()
        case = _case(f'R-{i:02d}-\u00e9"\\', request_type, basis, at, provider=providers[i % len(providers)])
        case["timezone"] = zones[i % len(zones)]
        cases.append(case)
    return cases


def test_rows_are_the_bytes_json_dumps_writes(cli_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    (cli_dir / "cases.json").write_text(json.dumps(_cases()))
    (cli_dir / "wf.toml").write_text(WORKFLOW)  # EU orders counted under Reg. 1182/71
    (cli_dir / "casebridge.toml").write_text('workflow = "wf.toml"\n')
    code, out, err = cli("intake", "cases.json", "--now", "2027-05-25T12:00:00Z")
    assert code == 0, out + err

    settings = load_settings(str(cli_dir / "casebridge.toml"))
    workflow, tracker = settings.workflow(), settings.tracker()
    try:
        cases = sorted(tracker.list_cases(), key=lambda t: t.case.reference)
        moment = datetime.fromisoformat(NOW)
        evaluations, failures = evaluate_cases(cases, history_reader(tracker), workflow, moment)
    finally:
        tracker.close()
    assert not failures and len(evaluations) == 24
    states = {c.state for ev in evaluations for c in ev.clocks}
    assert {"not_started", "running", "breached"} <= {str(s) for s in states}, states
    assert any(c.target.counting != "elapsed" and c.due_at for ev in evaluations for c in ev.clocks)
    no_clock = CaseEvaluation(tracked=evaluations[0].tracked, history=[], clocks=[])

    rows = StatusRows(workflow)
    for ev in [*evaluations, *evaluations, no_clock]:  # twice: the second time from the caches
        expected = json.dumps([evaluation_json(ev, workflow)], indent=2, ensure_ascii=False)
        assert "[\n  " + rows.row(ev) + "\n]" == expected
    monkeypatch.setattr(status_json, "_BOUND", 1)  # caches emptied at every new entry: the same text
    rows = StatusRows(workflow)
    for ev in [*evaluations, *evaluations]:
        expected = json.dumps([evaluation_json(ev, workflow)], indent=2, ensure_ascii=False)
        assert "[\n  " + rows.row(ev) + "\n]" == expected

    # and the command prints exactly the list of those dicts
    code, out, err = cli("status", "--json", "--now", NOW)
    assert code == 0, err
    expected = json.dumps([evaluation_json(ev, workflow) for ev in evaluations], indent=2, ensure_ascii=False)
    assert out == expected + "\n"


@given(st.datetimes(timezones=st.just(UTC)))
def test_due_minutes_read_as_strftime_writes_them(moment: datetime) -> None:
    # the sentence's "due 2027-05-04 11:00" is written without strftime (10 µs a call), to the same text
    assert _minute(moment) == moment.strftime("%Y-%m-%d %H:%M")

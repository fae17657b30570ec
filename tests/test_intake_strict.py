"""Strict timestamps and a running legal clock at intake (issue 11, items 5-7): ISO 8601 strings with an
offset only (no numbers, booleans or duplicate JSON keys), years 1990..2100, nothing that has happened
in the future, and a row with ``submitted_at`` created submitted, through the CLI as users run it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import IntakeError
from casebridge.workflows import load_workflow
from casebridge.workflows.intake import read_intake_file, submission_states
from tests.cli_runner import cli_logging_restored, run
from tests.escalate_e2e import write_config

NOW = "2026-12-01T09:00:00Z"
ROW: dict[str, Any] = {
    "reference": "FIA-1",
    "title": "Subscriber info",
    "provider": "Meta",
    "request_type": "subscriber",
    "legal_basis": "voluntary",
}
HEADER = "reference,title,provider,request_type,legal_basis,submitted_at"
CSV_ROW = "FIA-1,Subscriber info,Meta,subscriber,voluntary,{}"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    write_config(tmp_path, {"connector": "local", "path": "casebridge.db"})
    with cli_logging_restored():
        yield tmp_path


def intake(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    return run(capsys, "intake", str(path), "--now", NOW)


def cases(tmp_path: Path) -> dict[str, str]:
    tracker = LocalConnector(LocalConfig(path=str(tmp_path / "casebridge.db")), load_workflow())
    try:
        return {t.case.reference: t.state for t in tracker.list_cases()}
    finally:
        tracker.close()


def json_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(text, encoding="utf-8")
    return path


SUBMITTED = "2026-11-02T09:00:00Z"
BAD_JSON = [
    ("number", {"submitted_at": 12345}, "submitted_at: 12345 is not an ISO 8601 timestamp"),
    ("boolean", {"submitted_at": True}, "submitted_at: True is not an ISO 8601 timestamp"),
    ("float", {"acknowledged_at": 1733000000.5}, "acknowledged_at: 1733000000.5 is not an ISO 8601"),
    ("numeric-string", {"submitted_at": "1733000000"}, "submitted_at: '1733000000' is not an ISO 8601"),
    ("year-999", {"submitted_at": "0999-06-01T00:00:00Z"}, "submitted_at: year 999 is outside 1990..2100"),
    ("year-1800", {"state": "acknowledged", "state_since": "1800-01-01T00:00:00Z"}, "state_since: year 1800"),
    ("year-2236-order", {"order_date": "2236-01-01"}, "order_date: year 2236 is outside 1990..2100"),
    ("future-submitted", {"submitted_at": "2030-01-01T00:00:00Z"}, "submitted_at: 2030-01-01T00:00:00+00:00 is in"),
    ("future-since", {"state": "acknowledged", "state_since": "2036-01-01T00:00:00Z"}, "state_since: 2036"),
    ("identifier-number", {"identifiers": [{"type": "ip", "value": "1.2.3.4", "from": 0}]}, "identifiers.0.from: 0"),
    ("pre-submission", {"state": "draft", "submitted_at": SUBMITTED}, "submitted_at: the case is in 'draft', before"),
    ("legal-review", {"state": "legal_review", "submitted_at": SUBMITTED}, "submitted_at: the case is in 'legal_"),
]


@pytest.mark.parametrize(("name", "fields", "expected"), BAD_JSON, ids=[b[0] for b in BAD_JSON])
def test_bad_timestamps_are_one_line_and_write_nothing(capsys, tmp_path, name, fields, expected) -> None:
    path = json_file(tmp_path, json.dumps([{**ROW, "reference": "FIA-0"}, {**ROW, **fields}]))
    code, _, err = intake(capsys, path)
    assert code != 0 and "Traceback" not in err
    assert f"{path}:item 1: {expected}" in err, err
    assert len(err.strip().splitlines()) == 1
    assert cases(tmp_path) == {}  # the whole file is rejected


def test_duplicate_json_keys_are_refused(capsys, tmp_path) -> None:
    text = json.dumps([ROW])[:-2] + ', "submitted_at": "2026-11-02T09:00:00Z", "submitted_at": "2026-11-20T09:00:00Z"}]'
    code, _, err = intake(capsys, json_file(tmp_path, text))
    assert code != 0 and "item 0: submitted_at: given twice in one object; keep one" in err
    nested = json.dumps([{**ROW, "identifiers": [{"type": "ip", "value": "192.0.2.1"}]}]).replace(
        '"value": "192.0.2.1"', '"value": "192.0.2.1", "value": "192.0.2.2"'
    )
    code, _, err = intake(capsys, json_file(tmp_path, nested))
    assert code != 0 and "item 0: value: given twice" in err and cases(tmp_path) == {}


@pytest.mark.parametrize("cell", ["1733000000", "45627", "TRUE", "2026-11-02", "0999-06-01T00:00:00Z"])
def test_csv_numbers_are_not_timestamps(capsys, tmp_path, cell) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(f"{HEADER}\n{CSV_ROW.format(cell)}\n", encoding="utf-8")
    code, _, err = intake(capsys, path)
    assert code != 0 and f"{path}:2: submitted_at: " in err and cases(tmp_path) == {}


def test_a_row_with_submitted_at_and_no_state_is_submitted(capsys, tmp_path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(f"{HEADER}\n{CSV_ROW.format('2026-11-02T09:00:00Z')}\nFIA-2,Draft,Meta,subscriber,voluntary,\n")
    code, _, err = intake(capsys, path)
    assert code == 0, err
    assert cases(tmp_path) == {"FIA-1": "submitted", "FIA-2": "draft"}
    code, out, _ = run(capsys, "status", "--json", "--now", NOW)
    fia1 = next(c for c in json.loads(out) if c["reference"] == "FIA-1")
    followup = next(c for c in fia1["clocks"] if c["name"] == "followup")  # voluntary: no legal clock
    assert followup["started_at"] == "2026-11-02T09:00:00+00:00"  # the clock runs from submitted_at


def test_a_moment_a_minute_ahead_is_accepted(tmp_path) -> None:
    path = json_file(tmp_path, json.dumps([{**ROW, "submitted_at": "2026-12-01T09:01:00Z"}]))
    from datetime import UTC, datetime

    rows = read_intake_file(path, load_workflow(), datetime(2026, 12, 1, 9, tzinfo=UTC))
    assert rows[0].state == "submitted"
    with pytest.raises(IntakeError, match="in the future"):
        read_intake_file(path, load_workflow(), datetime(2026, 12, 1, 8, tzinfo=UTC))


def test_submission_states_of_the_default_workflow() -> None:
    assert submission_states(load_workflow()) == ("submitted", {"draft", "legal_review", "approved"})


def test_a_case_that_cannot_be_evaluated_is_reported_alone(capsys, tmp_path) -> None:
    """A case already in the tracker with a state entered in 1800 (older versions let it in): every
    command reports that case, exit 1, and evaluates and writes the others."""
    from datetime import UTC, datetime

    from tests.factories import make_case

    tracker = LocalConnector(LocalConfig(path=str(tmp_path / "casebridge.db")), load_workflow())
    tracker.create_case(make_case("OLD-1"), state="legal_review", at=datetime(1800, 1, 1, tzinfo=UTC))
    tracker.create_case(make_case("NEW-1"), state="acknowledged", at=datetime(2026, 11, 2, tzinfo=UTC))
    tracker.close()
    for command in (["status"], ["sync"], ["escalate", "--yes"]):
        code, out, err = run(capsys, *command, "--now", NOW)
        assert code == 1, (command, out, err)
        assert "OLD-1" in err and "cannot evaluate its clocks" in err and "Traceback" not in err, (command, err)
        if command == ["status"]:
            assert "NEW-1" in out


def test_iso_writes_four_digit_years() -> None:
    from datetime import UTC, datetime

    from casebridge.workflows.sla import iso, parse_iso

    moment = datetime(999, 6, 1, tzinfo=UTC)
    assert iso(moment) == "0999-06-01T00:00:00.000000Z" and parse_iso(iso(moment)) == moment
    assert iso(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2026-01-02T03:04:05.000006Z"


def test_a_300_character_time_zone_is_a_clear_error() -> None:
    from casebridge.workflows.cases import known_timezone

    with pytest.raises(ValueError, match=r"unknown IANA time zone 'AAAA.*\.\.\.' \(for example Asia/Karachi\)"):
        known_timezone("A" * 300)

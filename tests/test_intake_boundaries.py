"""The edges of what intake accepts (issue 19): the first and last year of the accepted range for a case
field, an identifier's range and state_since; a moment exactly five minutes ahead of now; a JSON file
nested too deep; a duplicate reference naming where it was first seen."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from casebridge.errors import IntakeError
from casebridge.workflows import load_workflow
from casebridge.workflows.intake import read_intake_file

WORKFLOW = load_workflow("lawful-access")
BASE = {"reference": "FIA-1", "title": "T", "provider": "Meta", "request_type": "subscriber"}
BASE["legal_basis"] = "voluntary"


def write(tmp_path: Path, items: object) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


@pytest.mark.parametrize("year", [1990, 2100])
def test_the_first_and_last_accepted_years_are_accepted_everywhere(tmp_path: Path, year: int) -> None:
    moment = f"{year}-06-01T09:00:00Z"
    item = {
        **BASE,
        "preservation_expires_at": moment,
        "identifiers": [{"type": "ip", "value": "192.0.2.1", "from": moment, "to": moment}],
        "state": "legal_review",
        "state_since": moment,
    }
    [row] = read_intake_file(write(tmp_path, [item]), WORKFLOW)
    assert row.case.identifiers[0].range_from.year == year and row.case.preservation_expires_at.year == year
    assert row.state_since is not None and row.state_since.year == year


@pytest.mark.parametrize(
    ("where", "year"),
    [("preservation_expires_at", 1989), ("preservation_expires_at", 2101), ("from", 1989), ("to", 2101),
     ("state_since", 1989)],
)  # fmt: skip
def test_a_year_just_outside_the_range_is_refused(tmp_path: Path, where: str, year: int) -> None:
    moment = f"{year}-06-01T09:00:00Z"
    item: dict[str, object] = {**BASE}
    if where in ("from", "to"):
        item["identifiers"] = [{"type": "ip", "value": "192.0.2.1", where: moment}]
        name = f"identifiers.0.{where}"
    else:
        item[where] = moment
        name = where
    with pytest.raises(IntakeError, match=rf":item 0: {name}: year {year} is outside 1990\.\.2100; check the date$"):
        read_intake_file(write(tmp_path, [item]), WORKFLOW)


def test_a_moment_exactly_five_minutes_ahead_is_accepted_and_one_second_more_is_not(tmp_path: Path) -> None:
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    edge = (now + timedelta(minutes=5)).isoformat()
    [row] = read_intake_file(write(tmp_path, [{**BASE, "submitted_at": edge}]), WORKFLOW, now)
    assert row.case.submitted_at == now + timedelta(minutes=5)
    late = (now + timedelta(minutes=5, seconds=1)).isoformat()
    with pytest.raises(IntakeError, match=r"submitted_at: .* is in the future"):
        read_intake_file(write(tmp_path, [{**BASE, "submitted_at": late}]), WORKFLOW, now)


def test_json_nested_too_deep_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(IntakeError) as err:
        read_intake_file(path, WORKFLOW)
    assert str(err.value) == f"{path}: JSON nested too deep; a case is a flat object"


def test_a_duplicate_reference_names_where_it_first_appeared(tmp_path: Path) -> None:
    path = write(tmp_path, [BASE, {**BASE, "title": "Again"}])
    with pytest.raises(IntakeError) as err:
        read_intake_file(path, WORKFLOW)
    assert str(err.value) == f"{path}:item 1: reference: FIA-1 already appears at {path}:item 0"

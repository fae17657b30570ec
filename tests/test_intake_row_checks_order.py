"""Which problem a row with several is rejected for, and the exact words (issue 16 reworked the row checks
for speed: ``_check_moments`` and the CSV reader): years are checked before the future, the case's
moment fields before identifier ranges before ``state_since``, identifiers in order and ``from`` before
``to``; ``submitted_at`` before ``state_since`` in the future. Blank CSV lines are skipped whatever their
commas, and a short row that is not blank names its line and cell counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from casebridge.errors import IntakeError
from casebridge.workflows import load_workflow
from casebridge.workflows.intake import read_intake_file

WORKFLOW = load_workflow("lawful-access")
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BASE = {"reference": "FIA-1", "title": "Subscriber info", "provider": "Meta", "request_type": "subscriber",
        "legal_basis": "voluntary"}  # fmt: skip
FUTURE, OLD, OK = "2026-11-03T09:00:00Z", "1989-06-01T09:00:00Z", "2026-11-01T09:00:00Z"


def reject(tmp_path: Path, item: dict[str, Any]) -> str:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([item]))
    with pytest.raises(IntakeError) as caught:
        read_intake_file(path, WORKFLOW, NOW)
    return str(caught.value).removeprefix(f"{path}:item 0: ")


def ip(**ranges: str) -> dict[str, str]:
    return {"type": "ip", "value": "192.0.2.1", **ranges}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        # an old year anywhere wins over a moment in the future
        ({"submitted_at": FUTURE, "preservation_expires_at": OLD}, "preservation_expires_at: year 1989"),
        ({"submitted_at": FUTURE, "identifiers": [ip(to=OLD)]}, "identifiers.0.to: year 1989"),
        ({"submitted_at": FUTURE, "state": "submitted", "state_since": OLD}, "state_since: year 1989"),
        # case fields, then identifier ranges (in order, from before to), then state_since
        ({"order_date": "1989-01-01", "identifiers": [ip(**{"from": OLD})]}, "order_date: year 1989"),
        ({"identifiers": [ip(to=OLD), ip(**{"from": OLD})], "state_since": OLD}, "identifiers.0.to: year 1989"),
        ({"identifiers": [ip(), ip(**{"from": OLD, "to": OLD})]}, "identifiers.1.from: year 1989"),
        ({"identifiers": [ip(to="2101-01-01T00:00:00Z")], "state_since": OLD}, "identifiers.0.to: year 2101"),
        # in the future: the case's fields in PAST_FIELDS order, then state_since
        ({"acknowledged_at": FUTURE, "submitted_at": FUTURE, "state": "acknowledged", "state_since": FUTURE},
         "submitted_at: 2026-11-03T09:00:00+00:00 is in the future"),
        ({"submitted_at": OK, "mla_received_at": FUTURE, "state": "submitted", "state_since": FUTURE},
         "mla_received_at: 2026-11-03T09:00:00+00:00 is in the future"),
        ({"submitted_at": OK, "state": "submitted", "state_since": FUTURE},
         "state_since: 2026-11-03T09:00:00+00:00 is in the future (now is 2026-11-02T09:00:00+00:00);"
         " record it once it has happened"),
    ],
)  # fmt: skip
def test_a_row_with_several_problems_is_rejected_for_the_first_in_a_fixed_order(
    tmp_path: Path, item: dict[str, Any], expected: str
) -> None:
    assert reject(tmp_path, {**BASE, **item}).startswith(expected)


def test_a_future_moment_is_refused_with_the_whole_sentence(tmp_path: Path) -> None:
    assert reject(tmp_path, {**BASE, "responded_at": FUTURE}) == (
        "responded_at: 2026-11-03T09:00:00+00:00 is in the future (now is 2026-11-02T09:00:00+00:00); "
        "record it once it has happened"
    )


HEADER = "reference,title,provider,request_type,legal_basis"


def read_csv(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "cases.csv"
    path.write_text(text)
    return [(r.case.reference, r.where.rsplit(":", 1)[1]) for r in read_intake_file(path, WORKFLOW, NOW)]


def test_blank_csv_lines_are_skipped_whatever_their_commas_and_spaces(tmp_path: Path) -> None:
    body = "FIA-1,T,Meta,subscriber,voluntary\n,,,,\n , ,\t,,\n,\n   \n,,,,,,,,\nFIA-2,T,Meta,subscriber,voluntary\n"
    assert read_csv(tmp_path, f"{HEADER}\n{body}") == [("FIA-1", "2"), ("FIA-2", "8")]


@pytest.mark.parametrize(("line", "cells"), [(",x", 2), ("FIA-2,T,Meta,subscriber", 4), ("a,,,,,", 6)])
def test_a_row_of_another_width_that_is_not_blank_names_its_line_and_counts(
    tmp_path: Path, line: str, cells: int
) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(f"{HEADER}\nFIA-1,T,Meta,subscriber,voluntary\n\n{line}\n")
    with pytest.raises(IntakeError) as caught:
        read_intake_file(path, WORKFLOW, NOW)
    assert str(caught.value) == f"{path}:4: row has {cells} cells, the header has 5"

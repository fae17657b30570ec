"""CSV cells an officer gets wrong, and the year check's reach (issue 19): each error names FILE:LINE and
says what to write instead."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Optional

import pytest
from pydantic import AwareDatetime

from casebridge.errors import IntakeError
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import Case
from casebridge.workflows.intake import _MOMENT_FIELDS, IntakeAction, _holds_date, read_intake_file

WORKFLOW = load_workflow("lawful-access")
HEADER = "reference,title,provider,request_type,legal_basis,identifiers"


@pytest.mark.parametrize("cell", ["email:", "email:   ", "email", "email: a@b.example;ip:"])
def test_an_identifier_without_a_value_names_the_line_and_the_form_to_use(tmp_path: Path, cell: str) -> None:
    path = tmp_path / "cases.csv"
    good, bad = "FIA-1,Subscriber info,Meta,subscriber,voluntary,username:x", f"FIA-2,T,Meta,traffic,voluntary,{cell}"
    path.write_text(f"{HEADER}\n{good}\n{bad}\n")
    with pytest.raises(IntakeError) as err:
        read_intake_file(path, WORKFLOW)
    part = cell.split(";")[-1].strip()
    assert str(err.value) == f"{path}:3: identifiers: {part!r} is not type:value (e.g. email:a@b.example)"


@pytest.mark.parametrize(
    ("annotation", "holds"),
    [
        (date, True),
        (datetime, True),
        (AwareDatetime, True),
        (Optional[AwareDatetime], True),  # noqa: UP045 (the form pydantic reports for `X | None`)
        (AwareDatetime | None, True),
        (Optional[date], True),  # noqa: UP045
        (str, False),
        (Optional[str], False),  # noqa: UP045
        (list[str], False),
        (int, False),
    ],
)
def test_a_field_is_year_checked_whenever_its_type_can_hold_a_date(annotation: object, holds: bool) -> None:
    assert _holds_date(annotation) is holds


def test_the_year_checked_fields_are_those_of_the_case_model_that_hold_dates() -> None:
    # computed once at import (before a mutation run switches a mutant on): recomputed here
    assert tuple(n for n, info in Case.model_fields.items() if _holds_date(info.annotation)) == _MOMENT_FIELDS
    assert "submitted_at" in _MOMENT_FIELDS and "reference" not in _MOMENT_FIELDS


def test_an_empty_column_name_in_the_header_is_named_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text("reference,,title\nFIA-1,x,T\n", encoding="utf-8")
    with pytest.raises(IntakeError) as err:
        read_intake_file(path, WORKFLOW)
    assert str(err.value) == f"{path}:1: (empty): unknown column; see examples/cases.csv for the columns"


def test_a_naive_timestamp_says_it_needs_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(f"{HEADER},submitted_at\nFIA-1,T,Meta,subscriber,voluntary,,2026-11-02T09:00:00\n")
    with pytest.raises(IntakeError) as err:
        read_intake_file(path, WORKFLOW)
    assert str(err.value) == (
        f"{path}:2: submitted_at: '2026-11-02T09:00:00' has no offset; timestamps need Z or an offset like +05:00"
    )


def test_a_row_without_a_state_is_announced_as_created_in_the_initial_state(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(f"{HEADER}\nFIA-1,T,Meta,subscriber,voluntary,username:x\n")
    [row] = read_intake_file(path, WORKFLOW)
    assert IntakeAction("create", row).describe() == f"create FIA-1 in state initial ({path}:2)"

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
from casebridge.workflows.intake import _MOMENT_FIELDS, _holds_date, read_intake_file

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

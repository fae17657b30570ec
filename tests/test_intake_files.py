"""Intake files as officers produce them (issue 19): Excel's "CSV UTF-8" with its BOM, blank lines, a
facts cell spanning lines, several identifiers in one cell, identifier values containing ':', and
every error naming FILE:LINE."""

from __future__ import annotations

from pathlib import Path

import pytest

from casebridge.errors import IntakeError
from casebridge.workflows import load_workflow
from casebridge.workflows.intake import read_intake_file

WORKFLOW = load_workflow("lawful-access")
HEADER = "reference,title,provider,request_type,legal_basis,identifiers,facts"


def row(ref: str, identifiers: str = "email:a@b.example", facts: str = "Threats") -> str:
    return f"{ref},Subscriber info,Meta,subscriber,voluntary,{identifiers},{facts}"


def read(tmp_path: Path, text: str, name: str = "cases.csv", encoding: str = "utf-8") -> list:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return read_intake_file(path, WORKFLOW)


def test_a_blank_line_in_a_csv_does_not_drop_the_rows_after_it(tmp_path: Path) -> None:
    rows = read(tmp_path, f"{HEADER}\n{row('FIA-1')}\n\n ,,,\n{row('FIA-2')}\n\n{row('FIA-3')}\n")
    assert [(r.case.reference, r.where) for r in rows] == [
        ("FIA-1", f"{tmp_path / 'cases.csv'}:2"), ("FIA-2", f"{tmp_path / 'cases.csv'}:5"),
        ("FIA-3", f"{tmp_path / 'cases.csv'}:7"),
    ]  # fmt: skip


def test_several_identifiers_in_one_cell_with_empty_parts_and_spaces(tmp_path: Path) -> None:
    [r] = read(tmp_path, f"{HEADER}\n{row('FIA-1', ' email: a@b.example ;; ip:192.0.2.1 ; ')}\n")
    assert [(i.type, i.value) for i in r.case.identifiers] == [("email", "a@b.example"), ("ip", "192.0.2.1")]


def test_identifier_values_may_contain_colons(tmp_path: Path) -> None:
    [r] = read(tmp_path, f"{HEADER}\n{row('FIA-1', 'url:https://x.example:8443/p?q=1;ip:2001:db8::1')}\n")
    assert [(i.type, i.value) for i in r.case.identifiers] == [
        ("url", "https://x.example:8443/p?q=1"), ("ip", "2001:db8::1"),
    ]  # fmt: skip


def test_excel_csv_utf8_with_a_byte_order_mark_reads_its_first_column(tmp_path: Path) -> None:
    [r] = read(tmp_path, f"\ufeff{HEADER}\n{row('FIA-1', facts='Überweisung an کراچی')}\n")
    assert r.case.reference == "FIA-1" and r.case.facts == "Überweisung an کراچی"


def test_a_quoted_cell_spanning_lines_keeps_its_line_breaks_and_later_lines_are_numbered_right(
    tmp_path: Path,
) -> None:
    text = f"{HEADER}\n{row('FIA-1', facts=chr(34) + 'Line one' + chr(10) + 'Line two' + chr(34))}\n{row('FIA-2')},x\n"
    with pytest.raises(IntakeError, match=r"cases\.csv:4: row has 8 cells"):
        read(tmp_path, text)
    [r] = read(tmp_path, text.rsplit("\n", 2)[0] + "\n")
    assert r.case.facts == "Line one\nLine two"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("missing", None, ": no such file"),
        ("cases.txt", "x", ": unknown file type .txt; use .csv or .json"),
        ("empty.csv", "", ": no rows; nothing to import"),
        ("latin1.csv", "ref\xe9", ": cannot read ("),
        ("huge-cell.csv", f"{HEADER}\n{row('FIA-1')}\nFIA-2,{'x' * 140_000}\n", ":3: CSV syntax: field larger"),
        ("bad.json", '[{"reference": ', ":1: "),
        ("since.csv", f"{HEADER},state,state_since\n{row('FIA-1')},acknowledged,yesterday\n", ":2: state_since: "),
    ],
)
def test_every_file_syntax_and_state_since_error_names_the_file_and_line(
    tmp_path: Path, name: str, data: str | None, expected: str
) -> None:
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data.encode("latin-1" if name.startswith("latin1") else "utf-8"))
    with pytest.raises(IntakeError) as err:
        read_intake_file(path, WORKFLOW)
    assert str(err.value).startswith(f"{path}{expected}"), str(err.value)
    assert "\n" not in str(err.value)

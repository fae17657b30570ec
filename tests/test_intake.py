"""Intake: bad files are rejected whole with FILE:LINE: field: problem; good files are idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from casebridge.app.intake import apply_intake, plan_intake
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import IntakeError
from casebridge.workflows import load_workflow
from casebridge.workflows.intake import read_intake_file

HEADER = "reference,title,provider,request_type,legal_basis,submitted_at,identifiers,state"
GOOD = "FIA-1,Subscriber info,Meta,subscriber,voluntary,2026-11-02T09:00:00Z,email:a@b.example,submitted"
GOOD2 = "FIA-2,Traffic data,Google,traffic,voluntary,2026-11-03T09:00:00+05:00,ip:192.0.2.1;username:x,acknowledged"

# (id, file name, content, expected message after the path)
BAD_CSV = [
    (
        "naive-timestamp",
        f"{HEADER}\n{GOOD}\n{GOOD2.replace('+05:00', '')}\n",
        ":3: submitted_at: '2026-11-03T09:00:00' has no offset; timestamps need Z or an offset like +05:00",
    ),
    (
        "unknown-request-type",
        f"{HEADER}\n{GOOD.replace('subscriber', 'photos')}\n",
        ":2: request_type: 'photos' is not one of 'subscriber', 'traffic', 'content', 'preservation', 'emergency' "
        "or 'domain_registration'",
    ),
    (
        "unknown-legal-basis",
        f"{HEADER}\n{GOOD.replace('voluntary', 'gdpr')}\n",
        ":2: legal_basis: 'gdpr' is not one of 'voluntary', 'us-2702-emergency', 'us-2703f', 'budapest-29', "
        "'budapest-2ap-7', 'eu-epo', 'eu-epo-pr', 'mlat', 'letters-rogatory' or 'nis2'",
    ),
    (
        "unknown-column",
        f"{HEADER},colour\n{GOOD},red\n",
        ":1: colour: unknown column; see examples/cases.csv for the columns",
    ),
    ("duplicate-column", f"{HEADER},title\n{GOOD},again\n", ":1: title: column appears twice"),
    ("missing-title", f"{HEADER}\n{GOOD.replace('Subscriber info', '')}\n", ":2: title: required field is missing"),
    ("short-row", f"{HEADER}\n{GOOD}\nFIA-3,Only two\n", ":3: row has 2 cells, the header has 8"),
    (
        "bad-identifier",
        f"{HEADER}\n{GOOD.replace('email:a@b.example', 'a@b.example')}\n",
        ":2: identifiers: 'a@b.example' is not type:value (e.g. email:a@b.example)",
    ),
    (
        "unknown-identifier-type",
        f"{HEADER}\n{GOOD.replace('email:', 'fax:')}\n",
        ":2: identifiers.0.type: 'fax' is not one of 'email', 'phone', 'username', 'url', 'ip', 'domain', "
        "'account_id', 'imei' or 'wallet'",
    ),
    (
        "unknown-state",
        f"{HEADER}\n{GOOD.replace(',submitted', ',sent')}\n",
        ":2: state: unknown workflow state 'sent' (known: draft, legal_review, approved, submitted, acknowledged, "
        "awaiting_requester, partial, fulfilled, refused, redirected_mla, escalated, expired, withdrawn, closed)",
    ),
    ("duplicate-reference", f"{HEADER}\n{GOOD}\n{GOOD}\n", ":3: reference: FIA-1 already appears at "),
    (
        "bad-date",
        f"{HEADER}\n{GOOD.replace('2026-11-02T09:00:00Z', '02/11/2026')}\n",
        ":2: submitted_at: '02/11/2026' is not an ISO 8601 timestamp with an offset",
    ),
    ("empty-file", "", ": no rows; nothing to import"),
    ("header-only", f"{HEADER}\n", ": no rows; nothing to import"),
]

BAD_JSON = [
    ("json-syntax", '[{"reference": "FIA-1",}]', ":1: JSON syntax: Expecting property name enclosed in double quotes"),
    ("json-not-list", '{"reference": "FIA-1"}', ": the top level must be a list of case objects"),
    ("json-item-not-object", '["FIA-1"]', ":item 0: must be an object with case fields"),
    (
        "json-unknown-field",
        json.dumps(
            [
                {
                    "reference": "FIA-1",
                    "title": "t",
                    "provider": "p",
                    "request_type": "subscriber",
                    "legal_basis": "voluntary",
                    "disclosed_data": "x",
                }
            ]
        ),
        ":item 0: disclosed_data: unknown field; see examples/cases.json for the fields",
    ),
    (
        "json-bad-email",
        json.dumps(
            [
                {
                    "reference": "FIA-1",
                    "title": "t",
                    "provider": "p",
                    "request_type": "subscriber",
                    "legal_basis": "voluntary",
                    "officer_email": "not-an-email",
                }
            ]
        ),
        ":item 0: officer_email: String should match pattern '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$'",
    ),
    (
        "json-bad-timezone",
        json.dumps(
            [
                {
                    "reference": "FIA-1",
                    "title": "t",
                    "provider": "p",
                    "request_type": "subscriber",
                    "legal_basis": "voluntary",
                    "timezone": "Asia/Lahore",
                }
            ]
        ),
        ":item 0: timezone: unknown IANA time zone 'Asia/Lahore' (for example Asia/Karachi)",
    ),
    (
        "json-control-char-reference",
        json.dumps(
            [
                {
                    "reference": "FIA-\u00071",
                    "title": "t",
                    "provider": "p",
                    "request_type": "subscriber",
                    "legal_basis": "voluntary",
                }
            ]
        ),
        ":item 0: reference: must not contain control characters",
    ),
]


@pytest.fixture
def tracker(tmp_path: Path):
    conn = LocalConnector(LocalConfig(path=str(tmp_path / "t.db")), load_workflow())
    yield conn
    conn.close()


def _cases_in(tracker: LocalConnector) -> int:
    return len(list(tracker.list_cases()))


@pytest.mark.parametrize(("name", "content", "expected"), [b for b in BAD_CSV], ids=[b[0] for b in BAD_CSV])
def test_bad_csv_is_rejected_whole(
    tmp_path: Path, tracker: LocalConnector, name: str, content: str, expected: str
) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text(content)
    with pytest.raises(IntakeError) as err:
        read_intake_file(path, tracker.workflow)
    assert str(err.value).startswith(f"{path}{expected}")
    assert _cases_in(tracker) == 0


@pytest.mark.parametrize(("name", "content", "expected"), [b for b in BAD_JSON], ids=[b[0] for b in BAD_JSON])
def test_bad_json_is_rejected_whole(
    tmp_path: Path, tracker: LocalConnector, name: str, content: str, expected: str
) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(content)
    with pytest.raises(IntakeError) as err:
        read_intake_file(path, tracker.workflow)
    assert str(err.value).startswith(f"{path}{expected}")
    assert _cases_in(tracker) == 0


def test_unknown_extension(tmp_path: Path, tracker: LocalConnector) -> None:
    path = tmp_path / "cases.xlsx"
    path.write_text("x")
    with pytest.raises(IntakeError, match=r"cases\.xlsx: unknown file type \.xlsx; use \.csv or \.json"):
        read_intake_file(path, tracker.workflow)


def test_csv_good_rows_create_then_reimport_changes_nothing(tmp_path: Path, tracker: LocalConnector) -> None:
    path = tmp_path / "good.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n{GOOD2}\n")
    rows = read_intake_file(path, tracker.workflow)
    assert [r.case.identifiers[0].type for r in rows] == ["email", "ip"]
    assert [a.kind for a in plan_intake(rows, tracker)] == ["create", "create"]
    apply_intake(plan_intake(rows, tracker), tracker)
    assert {t.case.reference: t.state for t in tracker.list_cases()} == {"FIA-1": "submitted", "FIA-2": "acknowledged"}
    again = plan_intake(read_intake_file(path, tracker.workflow), tracker)
    assert [a.kind for a in again] == ["unchanged", "unchanged"]
    assert apply_intake(again, tracker) == []


def test_changed_row_updates_that_case_only(tmp_path: Path, tracker: LocalConnector) -> None:
    path = tmp_path / "good.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n{GOOD2}\n")
    apply_intake(plan_intake(read_intake_file(path, tracker.workflow), tracker), tracker)
    path.write_text(f"{HEADER}\n{GOOD.replace('Subscriber info', 'Subscriber info (narrowed)')}\n{GOOD2}\n")
    actions = plan_intake(read_intake_file(path, tracker.workflow), tracker)
    assert [a.kind for a in actions] == ["update", "unchanged"]
    apply_intake(actions, tracker)
    found = tracker.find_case("FIA-1")
    assert found is not None and found.case.title == "Subscriber info (narrowed)"
    assert found.state == "submitted"  # re-import never moves a case; people do that in the tracker


def test_bundled_examples_are_valid() -> None:
    wf = load_workflow()
    root = Path(__file__).resolve().parent.parent / "examples"
    rows = read_intake_file(root / "cases.json", wf)
    assert {r.case.request_type.value for r in rows} == {
        "subscriber",
        "traffic",
        "content",
        "preservation",
        "emergency",
        "domain_registration",
    }
    assert {r.case.legal_basis.value for r in rows} == {
        "voluntary",
        "us-2702-emergency",
        "us-2703f",
        "budapest-29",
        "budapest-2ap-7",
        "eu-epo",
        "eu-epo-pr",
        "mlat",
        "letters-rogatory",
        "nis2",
    }
    assert len(read_intake_file(root / "cases.csv", wf)) == 3

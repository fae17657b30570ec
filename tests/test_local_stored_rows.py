"""The embedded tracker reads back hostile rows safely (issue 16): what ``list_cases`` (its fast bulk
read of 100,000 rows) returns is exactly what the one-row read returns, and a row edited by hand outside
casebridge (wrong type, unknown key of an old schema, too long a value, not JSON) is never loaded as a
wrong value: every read path stops with one line naming the file, the case and the field."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import TrackerError
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import ClockFields, SlaFields
from tests.cli_runner import Cli
from tests.factories import make_case

T = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[LocalConnector]:
    connector = LocalConnector(LocalConfig(path=str(tmp_path / "cases.db")), load_workflow("lawful-access"))
    connector.use_clock(lambda: T)
    connector.create_case(make_case(reference="ROW-1"))
    connector.create_case(make_case(reference="ROW-2"))
    yield connector
    connector.close()


def _edit(tracker: LocalConnector, sql: str, *args: object) -> None:
    """Change the file behind casebridge's back, as a person with sqlite3 would."""
    with sqlite3.connect(tracker.path) as db:
        db.execute(sql, args)


def test_the_bulk_read_returns_what_the_one_row_read_returns(tracker: LocalConnector) -> None:
    due = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)
    tracker.set_sla_fields("1", SlaFields(clocks={"legal": ClockFields(due, None, "running")}, escalation_level=2))
    _edit(tracker, "UPDATE cases SET data = json_set(data, '$.title', '  padded by hand  ') WHERE id = 2")
    listed = {t.case.reference: t for t in tracker.list_cases()}
    assert listed["ROW-1"].sla.escalation_level == 2 and listed["ROW-1"].sla.clocks["legal"].due_at == due
    assert listed["ROW-2"].sla == SlaFields()
    for reference, tracked in listed.items():
        assert tracked == tracker.find_case(reference)
    assert listed["ROW-2"].case.title == "padded by hand"  # validated on the way in: stripped, as intake does


@pytest.mark.parametrize(
    ("sql", "field"),
    [
        ("UPDATE cases SET data = json_set(data, '$.submitted_at', 1733000000) WHERE id = 2", "submitted_at"),
        ("UPDATE cases SET data = json_set(data, '$.submitted_at', '2026-11-02T09:00:00') WHERE id = 2", "offset"),
        ("UPDATE cases SET data = json_set(data, '$.request_type', 'wiretap') WHERE id = 2", "request_type"),
        ("UPDATE cases SET data = json_set(data, '$.title', printf('%.300c', 'x')) WHERE id = 2", "title"),
        ("UPDATE cases SET data = json_set(data, '$.priority', 'high') WHERE id = 2", "priority <- unknown key"),
        ("UPDATE cases SET data = json_remove(data, '$.provider') WHERE id = 2", "provider"),
        ("UPDATE cases SET data = '{\"reference\": ' WHERE id = 2", "JSON"),
    ],
)
def test_a_row_edited_by_hand_is_refused_with_one_line_naming_it(tracker: LocalConnector, sql: str, field: str) -> None:
    _edit(tracker, sql)
    reads = [
        lambda: list(tracker.list_cases()),
        lambda: tracker.find_case("ROW-2"),
        lambda: tracker.find_cases(["ROW-1", "ROW-2"]),
    ]
    for read in reads:
        with pytest.raises(TrackerError) as caught:
            read()
        message = str(caught.value)
        assert "\n" not in message
        assert str(tracker.path) in message and "ROW-2" in message and field in message
    assert tracker.find_case("ROW-1") is not None  # the other rows still read


def test_status_stops_on_a_hand_edited_row_with_one_line_and_no_traceback(tmp_path: Path, cli: Cli) -> None:
    config = tmp_path / "casebridge.toml"
    config.write_text(f'state = "{tmp_path}/state.db"\n\n[tracker]\nconnector = "local"\npath = "{tmp_path}/t.db"\n')
    tracker = LocalConnector(LocalConfig(path=str(tmp_path / "t.db")), load_workflow("lawful-access"))
    tracker.create_case(make_case(reference="ROW-1"))
    tracker.close()
    _edit(tracker, "UPDATE cases SET data = json_set(data, '$.submitted_at', 1733000000)")
    for args in (["status"], ["status", "--json"]):
        code, out, err = cli("--config", str(config), *args, "--now", "2026-11-10T09:00:00Z")
        assert code != 0
        assert out == ""  # nothing half-printed
        assert "Traceback" not in err and "internal error" not in err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "ROW-1" in lines[0] and "submitted_at" in lines[0], err

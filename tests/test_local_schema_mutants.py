"""The embedded tracker's file format (connectors/local_schema.py), what its mutation run found unpinned
(issue 19): a stamp is the text earlier versions wrote for every year (strftime's), so equal instants
stay equal text in SQL across versions; the SLA column is exactly the sorted JSON of the clocks, with
null for an instant a clock does not have, and reads back as what was written."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from casebridge.connectors.local_schema import iso, sla_from_row, sla_to_json
from casebridge.workflows.cases import ClockFields, SlaFields
from casebridge.workflows.sla import clocks_to_json
from tests.factories import T0
from tests.factories import intake_rows as rows
from tests.test_sync_support import Env

KARACHI = timezone(timedelta(hours=5))


@pytest.mark.parametrize("year", [1, 999, 1000, 1001, 1990, 2026, 9999])
def test_a_stamp_is_the_text_earlier_versions_wrote_for_every_year(year: int) -> None:
    moment = datetime(year, 3, 4, 5, 6, 7, 89, tzinfo=UTC)
    assert iso(moment) == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    later = datetime(year, 3, 4, 10, 6, 7, 89, tzinfo=KARACHI)  # the same instant, written in UTC
    assert iso(later) == iso(moment)


SLA = SlaFields(
    clocks={
        "response": ClockFields(due_at=T0 + timedelta(days=3), warn_at=None, state="running"),
        "legal": ClockFields(due_at=None, warn_at=None, state="not_started"),
        "ack": ClockFields(due_at=T0, warn_at=T0 - timedelta(hours=4), state="met"),
    },
    escalation_level=2,
)


def test_the_sla_column_is_the_sorted_json_of_the_clocks_with_null_for_a_missing_instant() -> None:
    text = sla_to_json(SLA)
    assert text == json.dumps(clocks_to_json(SLA.clocks), sort_keys=True)
    assert json.loads(text)["legal"] == {"due_at": None, "state": "not_started", "warn_at": None}
    assert sla_from_row(text, 2) == SLA


def test_the_tracker_file_holds_those_sla_fields_and_reads_them_back(tmp_path: Path) -> None:
    env = Env(tmp_path)
    tracker = env.tracker(T0)
    (created,) = tracker.create_cases([rows("FIA-J-1")[0].case])
    tracker.set_sla_fields(created.key, SLA)
    assert tracker.find_cases(["FIA-J-1"])["FIA-J-1"].sla == SLA
    tracker.close()
    db = sqlite3.connect(env.tracker_path)
    (stored,) = db.execute("SELECT sla FROM cases").fetchone()
    db.close()
    assert json.loads(stored) == clocks_to_json(SLA.clocks)

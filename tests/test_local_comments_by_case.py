"""The embedded tracker finds one case's comments through an index on the case (issue 16: a reminder or an
escalation asks before it posts; a table scan per asking made a run quadratic in the comments held), and
a tracker written before the index gets it when opened; what the comments read back is unchanged."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from tests.factories import make_case

T = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
QUERIES = [
    ("SELECT 1 FROM comments WHERE case_id = ? AND instr(markdown, ?) > 0 LIMIT 1", (1, "CBR")),
    ("SELECT markdown FROM comments WHERE case_id = ? ORDER BY id", (1,)),
]


def _tracker(path: Path) -> LocalConnector:
    connector = LocalConnector(LocalConfig(path=str(path)), load_workflow("lawful-access"))
    connector.use_clock(lambda: T)
    return connector


def _plans(db: sqlite3.Connection) -> list[str]:
    return [" ".join(str(r[3]) for r in db.execute(f"EXPLAIN QUERY PLAN {q}", args)) for q, args in QUERIES]


def test_comments_of_a_case_read_back_in_order_and_only_its_own(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path / "cases.db")
    one, two = (tracker.create_case(make_case(ref)) for ref in ("FIA-C-1", "FIA-C-2"))
    for n in range(3):
        tracker.comment(one.key, f"first case, note {n} CBR-1-{n}")
        tracker.comment(two.key, f"second case, note {n} CBR-2-{n}")
    assert tracker.comments(one.key) == [f"first case, note {n} CBR-1-{n}" for n in range(3)]
    assert tracker.has_comment_marker(one.key, "CBR-1-2") and not tracker.has_comment_marker(one.key, "CBR-2-0")
    assert all("USING INDEX comments_case" in plan for plan in _plans(tracker.db))
    tracker.close()


def test_a_tracker_written_without_the_index_gets_it_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "cases.db"
    tracker = _tracker(path)
    key = tracker.create_case(make_case("FIA-C-OLD")).key
    tracker.comment(key, "written before the index CBR-OLD")
    tracker.close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX comments_case")
    assert not any("INDEX" in plan for plan in _plans(db))  # a scan, as the older tracker files have
    db.close()
    reopened = _tracker(path)
    assert all("USING INDEX comments_case" in plan for plan in _plans(reopened.db))
    assert reopened.has_comment_marker(key, "CBR-OLD") and reopened.comments(key) == [
        "written before the index CBR-OLD"
    ]
    reopened.close()

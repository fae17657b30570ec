"""The embedded tracker's bulk create writes its rows with one executemany (issue 16): the ids are the
ones SQLite would have given, a reference repeated within one call is the case just created, and a bad
state stops the batch as one INSERT per case did."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import TrackerError
from casebridge.workflows import load_workflow
from tests.factories import make_case

T = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[LocalConnector]:
    connector = LocalConnector(LocalConfig(path=str(tmp_path / "cases.db")), load_workflow("lawful-access"))
    connector.use_clock(lambda: T)
    yield connector
    connector.close()


def ids(tracker: LocalConnector) -> list[tuple[int, str]]:
    with sqlite3.connect(tracker.path) as db:
        return db.execute("SELECT id, reference FROM cases ORDER BY id").fetchall()


def test_new_ids_follow_the_highest_id_as_sqlite_would_give_them(tracker: LocalConnector) -> None:
    list(tracker.create_cases([make_case("A-1"), make_case("A-2")]))
    with sqlite3.connect(tracker.path) as db:  # a gap: the next id follows the highest, not the count
        db.execute("UPDATE cases SET id = 7 WHERE reference = 'A-2'")
        db.execute("UPDATE history SET case_id = 7 WHERE case_id = 2")
    made = list(tracker.create_cases([make_case("A-3"), make_case("A-4")]))
    assert [t.key for t in made] == ["8", "9"]
    assert ids(tracker) == [(1, "A-1"), (7, "A-2"), (8, "A-3"), (9, "A-4")]
    assert [c.state for c in tracker.read_history("9")] == [tracker.workflow.initial]


def test_a_reference_repeated_in_one_call_is_the_case_just_created(tracker: LocalConnector) -> None:
    made = list(tracker.create_cases([make_case("B-1"), make_case("B-2"), make_case("B-1")]))
    assert [t.key for t in made] == ["1", "2", "1"]
    assert made[2].case.reference == "B-1" and made[2].state == made[0].state
    assert ids(tracker) == [(1, "B-1"), (2, "B-2")]
    assert len(tracker.read_history("1")) == 1


def test_an_unknown_state_alone_writes_nothing(tracker: LocalConnector) -> None:
    cases = [make_case("C-1"), make_case("C-2"), make_case("C-3")]
    with pytest.raises(TrackerError, match="unknown workflow state"):
        list(tracker.create_cases(cases, states={"C-2": "no-such-state"}))
    assert ids(tracker) == []


def test_inside_a_transaction_the_cases_before_an_unknown_state_are_written_with_their_histories(
    tracker: LocalConnector,
) -> None:
    cases = [make_case("D-1"), make_case("D-2"), make_case("D-3")]
    with tracker.transaction(), pytest.raises(TrackerError, match="unknown workflow state"):
        list(tracker.create_cases(cases, states={"D-2": "no-such-state"}))
    assert ids(tracker) == [(1, "D-1")]
    assert len(tracker.read_history("1")) == 1

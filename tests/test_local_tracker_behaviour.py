"""The embedded tracker's behaviours a user relies on (issue 19), each stated from the user's side:
instants are stored in UTC whatever the machine's zone, the watermark boundary is inclusive, a replayed
move at the same instant as the last change is accepted, a posted liaison item's key is recorded, a new
file says its schema version, and the tracker reopens after close()."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from casebridge.connectors import Escalation
from casebridge.connectors.local import SCHEMA_VERSION, LocalConfig, LocalConnector
from casebridge.errors import TrackerError
from casebridge.workflows import load_workflow
from tests.factories import make_case

PKT = timezone(timedelta(hours=5))
T = datetime(2026, 11, 2, 14, 0, tzinfo=PKT)  # 09:00Z


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[LocalConnector]:
    connector = LocalConnector(LocalConfig(path=str(tmp_path / "cases.db")), load_workflow("lawful-access"))
    connector.use_clock(lambda: T)
    yield connector
    connector.close()


@pytest.fixture
def karachi_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Karachi")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def raw(tracker: LocalConnector, sql: str) -> list[tuple]:
    with sqlite3.connect(tracker.path) as db:
        return db.execute(sql).fetchall()


def test_stored_instants_are_utc_on_a_machine_whose_local_zone_is_not_utc(
    tracker: LocalConnector, karachi_local_time: None
) -> None:
    assert time.localtime(0).tm_gmtoff == 5 * 3600  # the zone really is in force for this process
    tracker.use_clock(lambda: datetime(2026, 11, 2, 14, 0))  # a naive wall time: local (Karachi) time
    created = tracker.create_case(make_case("FIA-TZ-1"), at=T)
    tracker.transition(created.key, "legal_review", at=datetime(2026, 11, 2, 15, 30))  # naive: local
    assert raw(tracker, "SELECT created_at, updated_at FROM cases") == [
        ("2026-11-02T09:00:00.000000Z", "2026-11-02T09:00:00.000000Z")
    ]
    assert [r[0] for r in raw(tracker, "SELECT at FROM history ORDER BY seq")] == [
        "2026-11-02T09:00:00.000000Z", "2026-11-02T10:30:00.000000Z",
    ]  # fmt: skip
    history = tracker.read_history(created.key)
    assert [h.at for h in history] == [
        datetime(2026, 11, 2, 9, 0, tzinfo=UTC), datetime(2026, 11, 2, 10, 30, tzinfo=UTC),
    ]  # fmt: skip


def test_a_case_changed_exactly_at_the_watermark_is_listed_and_one_changed_before_is_not(
    tracker: LocalConnector,
) -> None:
    tracker.create_case(make_case("FIA-WM-1"))
    assert [t.case.reference for t in tracker.list_cases(updated_since=T)] == ["FIA-WM-1"]
    assert list(tracker.list_cases(updated_since=T + timedelta(microseconds=1))) == []


def test_a_move_stamped_at_the_instant_of_the_last_change_is_accepted_and_one_before_it_refused(
    tracker: LocalConnector,
) -> None:
    created = tracker.create_case(make_case("FIA-AT-1"))  # intake then a transition under the same --now
    tracker.transition(created.key, "legal_review", at=T)
    assert [h.state for h in tracker.read_history(created.key)][-1] == "legal_review"
    with pytest.raises(TrackerError, match="is before the last change"):
        tracker.transition(created.key, "approved", at=T - timedelta(microseconds=1))


def test_a_posted_liaison_items_key_is_recorded_on_the_case(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-LN-1"))
    posted = tracker.post_escalation(
        Escalation("FIA-LN-1/legal/L1", "FIA-LN-1", created.key, None, "Escalation", "# Dossier", 1, "legal")
    )
    tracker.link_escalation(created.key, posted)
    assert tracker.links(created.key) == [(posted.key, posted.url)]
    assert tracker.find_escalation("FIA-LN-1/legal/L1") == posted
    assert posted.posted_at == T


def test_a_new_tracker_file_records_its_schema_version(tracker: LocalConnector) -> None:
    tracker.create_case(make_case("FIA-SV-1"))
    assert raw(tracker, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


def test_the_tracker_reopens_its_file_after_close(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-CL-1"))
    tracker.close()
    tracker.close()  # twice is harmless
    found = tracker.find_case("FIA-CL-1")
    assert found is not None and found.key == created.key
    assert os.stat(tracker.path).st_mode & 0o777 == 0o600

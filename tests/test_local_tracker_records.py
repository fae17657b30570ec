"""What the embedded tracker keeps and says, stated from the user's side (issue 19, its mutation run):
a move's note becomes a comment; a refused move, an unknown state, a wrong key or a reference that does
not match says which case and why; a batch of cases is created whole or not at all, and a reference
named twice in one batch is one case; lookups of many references read every one, a chunk per query;
the liaison queue's items, their keys, links and text read back; the file says which setting to fix when
it cannot be opened or was written by a newer casebridge."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from casebridge.connectors import Escalation
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.connectors.local_schema import CHUNK
from casebridge.errors import ConfigError, NotFoundError, TrackerError, TransitionNotAllowed
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import ClockFields, SlaFields, StatusChange
from tests.factories import make_case

T = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _tracker(path: Path) -> LocalConnector:
    connector = LocalConnector(LocalConfig(path=str(path)), load_workflow("lawful-access"))
    connector.use_clock(lambda: T)
    return connector


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[LocalConnector]:
    connector = _tracker(tmp_path / "cases.db")
    yield connector
    connector.close()


def _raw(tracker: LocalConnector, sql: str) -> list[tuple]:
    with sqlite3.connect(tracker.path) as db:
        return db.execute(sql).fetchall()


def _escalation(reference: str, key: str, level: int = 1) -> Escalation:
    return Escalation(
        f"{reference}/legal/L{level}", reference, key, None, f"Escalation L{level}", f"# L{level}", level, "legal"
    )


def test_a_moves_note_is_kept_as_a_comment_stamped_with_the_move(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-NOTE-1"))
    tracker.transition(
        created.key, "legal_review", note="Sent to legal: court order attached", at=T + timedelta(hours=2)
    )
    tracker.transition(created.key, "approved", at=T + timedelta(hours=3))  # no note: no comment
    assert tracker.comments(created.key) == ["Sent to legal: court order attached"]
    assert _raw(tracker, "SELECT at FROM comments") == [("2026-11-02T11:00:00.000000Z",)]


def test_a_refused_move_names_the_case_and_the_transition(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-MOVE-1"))
    with pytest.raises(TransitionNotAllowed) as refused:
        tracker.transition(created.key, "fulfilled")
    assert str(refused.value) == "FIA-MOVE-1: the workflow has no transition draft -> fulfilled"
    assert refused.value.case == "FIA-MOVE-1"
    with pytest.raises(TransitionNotAllowed) as unknown:
        tracker.transition(created.key, "archived")
    assert str(unknown.value) == "unknown workflow state 'archived'" and unknown.value.case == "FIA-MOVE-1"


def test_a_wrong_key_says_which_key(tracker: LocalConnector) -> None:
    with pytest.raises(NotFoundError, match=r"^local tracker: no case with key 999$"):
        tracker.read_history("999")
    with pytest.raises(NotFoundError, match=r"^local tracker: 'FIA-1' is not a case key$"):
        tracker.comments("FIA-1")


def test_an_update_under_another_cases_key_is_refused_naming_both_references(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-UPD-1"))
    with pytest.raises(TrackerError) as refused:
        tracker.update_case(created.key, make_case("FIA-UPD-2"))
    assert str(refused.value) == f"local tracker: case {created.key} has reference FIA-UPD-1, not FIA-UPD-2"


def test_every_write_is_stamped_no_earlier_than_the_newest_change(tracker: LocalConnector) -> None:
    """A replay at an earlier --now must still be listed by an incremental sync past the later change."""
    old = tracker.create_case(make_case("FIA-OLD-1"))
    tracker.create_case(make_case("FIA-NEW-1"), at=T + timedelta(hours=3))
    tracker.update_case(old.key, make_case("FIA-OLD-1", title="Corrected title"))  # --now is T, 3 h earlier
    newest = T + timedelta(hours=3)
    assert [(t.case.reference, t.updated_at) for t in tracker.list_cases(updated_since=newest)] == [
        ("FIA-OLD-1", newest), ("FIA-NEW-1", newest),
    ]  # fmt: skip


def test_one_case_created_with_its_state_and_fields_comes_back_as_stored(tracker: LocalConnector) -> None:
    sla = SlaFields({"legal": ClockFields(T + timedelta(days=10), T + timedelta(days=8), "running")}, 2)
    created = tracker.create_case(make_case("FIA-NEW-2"), state="legal_review", at=T - timedelta(days=1), sla=sla)
    assert (created.state, created.sla) == ("legal_review", sla)
    assert created.history == [StatusChange(at=T - timedelta(days=1), state="legal_review")]
    found = tracker.find_case("FIA-NEW-2")
    assert found is not None and (found.state, found.sla) == ("legal_review", sla)
    plain = tracker.create_case(make_case("FIA-NEW-3"))
    assert (plain.state, plain.sla, plain.history) == ("draft", SlaFields(), [StatusChange(at=T, state="draft")])


def test_a_batch_with_an_unknown_state_creates_none_of_its_cases_and_names_the_case(tracker: LocalConnector) -> None:
    cases = [make_case("FIA-B-1"), make_case("FIA-B-2")]
    with pytest.raises(TrackerError) as refused:
        list(tracker.create_cases(cases, states={"FIA-B-2": "archived"}))
    assert str(refused.value) == "local tracker: unknown workflow state 'archived'" and refused.value.case == "FIA-B-2"
    assert tracker.find_cases(["FIA-B-1", "FIA-B-2"]) == {}
    assert _raw(tracker, "SELECT COUNT(*) FROM history") == [(0,)]


def test_a_reference_named_twice_in_one_batch_is_one_case(tracker: LocalConnector) -> None:
    made = list(tracker.create_cases([make_case("FIA-TWICE-1"), make_case("FIA-TWICE-1")]))
    assert [t.key for t in made] == [made[0].key, made[0].key]
    assert _raw(tracker, "SELECT COUNT(*) FROM cases") == [(1,)]


def test_looking_up_more_references_than_one_query_holds_finds_every_one_a_chunk_per_query(
    tracker: LocalConnector,
) -> None:
    references = [f"FIA-MANY-{n:04d}" for n in range(2 * CHUNK + 7)]
    list(tracker.create_cases(make_case(r) for r in references))
    queries: list[str] = []
    tracker.db.set_trace_callback(queries.append)
    found = tracker.find_cases(references)
    tracker.db.set_trace_callback(None)
    assert sorted(found) == references
    assert len([q for q in queries if q.startswith("SELECT * FROM cases WHERE reference IN")]) == 3


def test_the_liaison_queue_reads_back_each_item_its_text_and_its_link(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-LQ-1"))
    first = tracker.post_escalation(_escalation("FIA-LQ-1", created.key, 1))
    second = tracker.post_escalation(_escalation("FIA-LQ-1", created.key, 2))
    assert (first.key, first.url) == ("1", "local:liaison/1") and (second.key, second.url) == ("2", "local:liaison/2")
    assert tracker.liaison_items() == [first, second]
    assert tracker.liaison_markdown("FIA-LQ-1/legal/L2") == "# L2"
    assert tracker.liaison_markdown("FIA-LQ-1/legal/L3") is None
    tracker.link_escalation(created.key, second)
    assert tracker.links(created.key) == [("2", "local:liaison/2")]


def test_a_liaison_item_gone_right_after_posting_is_an_error_naming_the_file_and_key(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-GONE-1"))
    with sqlite3.connect(tracker.path) as db:  # the store changed underneath casebridge
        db.execute(
            "CREATE TRIGGER drop_posted AFTER INSERT ON liaison BEGIN DELETE FROM liaison WHERE id = new.id; END"
        )
    with pytest.raises(TrackerError) as lost:
        tracker.post_escalation(_escalation("FIA-GONE-1", created.key))
    assert str(lost.value) == f"{tracker.path}: the liaison item FIA-GONE-1/legal/L1 just posted is not in the store"


def test_linked_cases_are_read_from_either_side_of_the_pair(tracker: LocalConnector) -> None:
    a, b, c = (tracker.create_case(make_case(f"FIA-LK-{n}")) for n in (1, 2, 3))
    tracker.link_cases(c.key, b.key, note="both name phone:+923001234567")
    tracker.link_cases(a.key, b.key, note="both name phone:+923001234567")
    assert tracker.linked_cases(b.key) == [a.key, c.key]
    assert tracker.linked_cases(a.key) == [b.key] and tracker.linked_cases(c.key) == [b.key]
    with pytest.raises(NotFoundError):
        tracker.linked_cases("FIA-LK-1")


def test_the_tracker_is_named_by_its_resolved_file_and_exists_once_written(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path / "sub" / ".." / "cases.db")
    try:
        assert tracker.identity() == f"local:{(tmp_path / 'cases.db').resolve()}"
        assert not tracker.exists()
        tracker.create_case(make_case("FIA-EX-1"))
        assert tracker.exists()
    finally:
        tracker.close()


def test_a_row_edited_by_hand_is_refused_naming_the_case_key_and_what_to_do(tracker: LocalConnector) -> None:
    created = tracker.create_case(make_case("FIA-ROW-1"))
    with sqlite3.connect(tracker.path) as db:
        db.execute("UPDATE cases SET data = json_set(data, '$.request_type', 'wiretap')")
    for read in (lambda: tracker.find_case("FIA-ROW-1"), lambda: list(tracker.list_cases())):
        with pytest.raises(TrackerError) as refused:
            read()
        message = str(refused.value)
        assert message.startswith(f"{tracker.path}: case {created.key} (FIA-ROW-1) is not a valid case: ")
        assert message.endswith(
            "; the row was changed outside casebridge: correct it or restore the file from a backup"
        )
        assert refused.value.case == "FIA-ROW-1"


def test_a_file_that_cannot_be_opened_names_the_tracker_setting(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("x")
    tracker = _tracker(tmp_path / "not-a-folder" / "cases.db")
    with pytest.raises(ConfigError, match=r"^\[tracker\] path <- cannot open "):
        tracker.find_case("FIA-1")


def test_a_file_written_by_a_newer_casebridge_is_refused(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path / "cases.db")
    tracker.create_case(make_case("FIA-SV-1"))
    tracker.close()
    with sqlite3.connect(tmp_path / "cases.db") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ConfigError, match=r"^\[tracker\] path <- .* has schema 99, newer than this casebridge"):
        tracker.find_case("FIA-SV-1")

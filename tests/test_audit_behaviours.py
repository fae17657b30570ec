"""Audit log behaviours a court may rely on (issue 19): the record's fields and hash input are fixed
(each hash covers the previous hash), verify reports every malformed record and goes on past it, and the
audit path set in the config is where casebridge writes."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from casebridge.errors import ConfigError, UserError
from casebridge.state.audit import FIELDS, GENESIS, AuditLog, record_hash, verify_records
from casebridge.state.audit_anchor import Anchor, AuditAnchor, AuditAnchorMismatch, anchor_problem
from tests.cli_runner import cli_logging_restored, run
from tests.escalate_e2e import EXAMPLES, INTAKE_NOW, write_config

RECORD = {
    "seq": 1,
    "at": "2026-11-02T09:00:00.000000+00:00",
    "kind": "intake.create",
    "data": {"reference": "FIA-1", "state": "submitted", "note": "Überweisung"},
    "prev_hash": GENESIS,
}


def test_a_record_hash_is_sha256_of_its_five_fields_as_sorted_compact_utf8_json() -> None:
    text = (
        '{"at":"2026-11-02T09:00:00.000000+00:00","data":{"note":"Überweisung","reference":"FIA-1",'
        '"state":"submitted"},"kind":"intake.create","prev_hash":"' + GENESIS + '","seq":1}'
    )
    assert record_hash(RECORD) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert FIELDS == ("seq", "at", "kind", "data", "prev_hash", "hash")


@pytest.mark.parametrize("field", ["seq", "at", "kind", "data", "prev_hash"])
def test_each_hashed_field_changes_the_hash_so_each_record_covers_the_one_before(field: str) -> None:
    changed = {**RECORD, field: {"seq": 2, "at": "x", "kind": "y", "data": {}, "prev_hash": "1" * 64}[field]}
    assert record_hash(changed) != record_hash(RECORD)
    assert record_hash({**RECORD, "hash": "ignored"}) == record_hash(RECORD)  # the hash is not its own input


def chain(tmp_path: Path, n: int = 5) -> list[dict]:
    log = AuditLog(tmp_path / "audit.db")
    try:
        for i in range(n):
            log.append("sync.fields", {"reference": f"FIA-{i}"})
        return list(log.records())
    finally:
        log.close()


def test_verify_reports_every_malformed_record_and_goes_on_past_it(tmp_path: Path) -> None:
    records = chain(tmp_path)
    broken = [
        records[0],
        {"seq": "two", **{k: v for k, v in records[1].items() if k != "seq"}},  # seq not a number
        records[2],
        {k: v for k, v in records[3].items() if k != "prev_hash"},  # a field missing
        {**records[4], "data": {"reference": "FORGED"}},  # and an edit after them
    ]
    report = verify_records(broken)
    assert [str(p) for p in report.problems] == [
        "record #2: malformed (fields ['at', 'data', 'hash', 'kind', 'prev_hash', 'seq'])",
        "seq 2: missing before seq 3 (deleted)",  # an unreadable record is also a gap in the chain
        "record #4: malformed (fields ['at', 'data', 'hash', 'kind', 'seq'])",
        "seq 5: edited (its hash does not match its contents)",
    ]
    assert report.count == 5


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    with cli_logging_restored():
        yield tmp_path


def test_the_audit_path_set_in_the_config_is_where_casebridge_writes(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(in_tmp, {"connector": "local", "path": "casebridge.db"})
    config.write_text('audit = "records/court-audit.db"\n' + config.read_text(encoding="utf-8"), encoding="utf-8")
    (in_tmp / "records").mkdir()
    assert run(capsys, "intake", str(EXAMPLES), "--now", INTAKE_NOW)[0] == 0
    assert not list(in_tmp.glob("*.audit.db"))  # not the default beside the state store
    with sqlite3.connect(in_tmp / "records" / "court-audit.db") as db:
        kinds = {k for (k,) in db.execute("SELECT kind FROM records")}
    assert "intake.batch" in kinds  # one record per intake batch (app/intake_stream.py)
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "court-audit.db" in out


def test_an_empty_log_has_the_genesis_head_under_its_own_id(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    try:
        assert log.head() == Anchor(log.log_id, 0, GENESIS)  # seq 0: nothing to anchor yet
        record = log.append("sync.fields", {"reference": "FIA-1"})
        assert log.head() == Anchor(log.log_id, 1, record["hash"])
    finally:
        log.close()


def test_an_acknowledged_loss_records_in_the_new_chain_what_the_anchor_said(tmp_path: Path) -> None:
    state = tmp_path / "casebridge-state.db"
    old = AuditLog(tmp_path / "old.audit.db", AuditAnchor(state))
    head = old.append("sync.fields", {"reference": "FIA-1"})
    old_id = old.log_id
    old.close()
    new = AuditLog(tmp_path / "new.audit.db", AuditAnchor(state), check=False)  # a replaced log
    try:
        record = new.reset_anchor("the log was replaced")
        assert record["kind"] == "audit.reset" and record["seq"] == 1
        assert record["data"] == {
            "reason": "the log was replaced",
            "previous_anchor": {"seq": 1, "hash": head["hash"], "log_id": old_id},
        }
        assert new.anchor is not None and new.anchor.get() == Anchor(new.log_id, 1, record["hash"])
        assert new.anchor_problem() is None
    finally:
        new.close()


def test_a_reset_where_nothing_was_anchored_yet_records_no_previous_anchor(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db", AuditAnchor(tmp_path / "casebridge-state.db"))
    try:
        assert log.reset_anchor("first use")["data"] == {"reason": "first use", "previous_anchor": None}
    finally:
        log.close()
    unanchored = AuditLog(tmp_path / "other.audit.db")
    try:
        with pytest.raises(
            UserError, match=r"other\.audit\.db: it has no anchor to reset \(it was opened without one\)"
        ):
            unanchored.reset_anchor("x")
    finally:
        unanchored.close()


def test_the_anchor_is_stamped_in_utc_when_moved_and_when_replaced(tmp_path: Path) -> None:
    state = tmp_path / "casebridge-state.db"
    log = AuditLog(tmp_path / "audit.db", AuditAnchor(state))
    try:
        for move in (lambda: log.append("sync.fields", {"reference": "FIA-1"}), lambda: log.reset_anchor("x")):
            move()
            with sqlite3.connect(state) as db:
                (stamp,) = db.execute("SELECT updated_at FROM audit_anchor").fetchone()
            assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0), stamp
    finally:
        log.close()


def test_an_export_is_json_lines_unless_told_otherwise_and_an_unknown_format_is_named(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    try:
        log.append("sync.fields", {"reference": "FIA-1"})
        out = io.StringIO()
        assert log.export(out) == 1
        assert json.loads(out.getvalue())["kind"] == "sync.fields"
        with pytest.raises(ValueError, match="unknown export format 'xml' \\(jsonl or csv\\)"):
            log.export(io.StringIO(), "xml")
    finally:
        log.close()


def test_a_completed_intent_records_what_was_announced_plus_the_answer_and_moves_the_anchor(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db", AuditAnchor(tmp_path / "casebridge-state.db"))
    try:
        intent = log.begin_intent("sync.set_fields", {"reference": "FIA-1", "clocks": {"legal": "at_risk"}})
        record = log.complete_intent(intent, {"confirmed": "after a restart"})
        assert record is not None and record["kind"] == "sync.set_fields"
        assert record["data"] == {"reference": "FIA-1", "clocks": {"legal": "at_risk"}, "confirmed": "after a restart"}
        assert [r["data"] for r in log.records()] == [record["data"]]
        assert log.anchor is not None and log.anchor.get() == Anchor(log.log_id, 1, record["hash"])
    finally:
        log.close()


def test_records_and_pending_intents_are_stamped_in_utc(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    try:
        at = log.append("sync.fields", {"reference": "FIA-1"})["at"]
        assert datetime.fromisoformat(at).utcoffset() == timedelta(0) and len(at) == len(
            "2026-11-02T09:00:00.000000+00:00"
        )
        log.begin_intent("sync.set_fields", {"reference": "FIA-1"})
        (stamp,) = log._db.execute("SELECT created_at FROM pending").fetchone()
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0), stamp
    finally:
        log.close()


def test_a_state_file_that_is_not_a_database_is_named_by_its_setting(tmp_path: Path) -> None:
    state = tmp_path / "casebridge-state.db"
    state.write_bytes(b"this is not an SQLite file, it is a note someone saved over it" * 20)
    with pytest.raises(ConfigError, match=rf"^\[app\] state <- cannot open {re.escape(str(state))}: "):
        AuditAnchor(state)


def test_verify_says_in_words_what_happened_to_the_chain(tmp_path: Path) -> None:
    r = chain(tmp_path, 7)
    swapped = [r[0], r[1], r[3], r[2], *r[4:]]  # seq 3 and 4 swapped
    assert [str(p) for p in verify_records(swapped).problems] == [
        "seq 3: missing before seq 4 (deleted)",
        "seq 3: out of order after seq 4 (reordered)",
        "seq 5: does not follow the record before it (inserted, replaced or reordered)",
    ]
    assert [p.seq for p in verify_records(swapped).problems] == [4, 3, 5]  # each problem names its record
    two_gone = [r[0], *r[3:]]  # seq 2 and 3 deleted
    assert [str(p) for p in verify_records(two_gone).problems] == ["seq 2..3: missing before seq 4 (deleted)"]
    one_gone = [*r[:4], *r[5:]]  # seq 5 deleted
    assert [str(p) for p in verify_records(one_gone).problems] == ["seq 5: missing before seq 6 (deleted)"]
    copied = [*r[:3], r[1], *r[3:]]  # seq 2 copied after seq 3
    assert [str(p) for p in verify_records(copied).problems] == [
        "seq 2: appears twice (a record was inserted or copied)",
        "seq 4: does not follow the record before it (inserted, replaced or reordered)",
    ]


def test_a_new_audit_file_records_its_schema_a_newer_or_broken_one_is_refused_naming_its_setting(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    AuditLog(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [("1",)]  # a new file
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ConfigError, match=r"^\[app\] audit <- .*audit\.db has schema 99, newer than this casebridge"):
        AuditLog(path)
    path.unlink()
    path.write_bytes(b"not an SQLite file" * 100)
    with pytest.raises(ConfigError, match=r"^\[app\] audit <- cannot open "):
        AuditLog(path)


def test_an_audit_record_once_committed_is_synced_to_disk(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    try:
        assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: survives a power loss
    finally:
        log.close()


def test_a_log_that_disagrees_with_its_anchor_is_refused_unless_opened_to_look_at_it(tmp_path: Path) -> None:
    state = tmp_path / "casebridge-state.db"
    log = AuditLog(tmp_path / "audit.db", AuditAnchor(state))
    log.append("sync.fields", {"reference": "FIA-1"})
    log.close()
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("DELETE FROM records")
    with pytest.raises(AuditAnchorMismatch, match="the log holds no records"):
        AuditLog(tmp_path / "audit.db", AuditAnchor(state))
    looked = AuditLog(tmp_path / "audit.db", AuditAnchor(state), check=False)  # audit verify / export
    assert looked.anchor_problem() is not None
    looked.close()


def test_secrets_inside_lists_never_reach_a_record(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    try:
        record = log.append("sync.fields", {"attempts": [{"user": "svc", "password": "hunter2"}, ("a", 1)]})
        assert record["data"] == {"attempts": [{"user": "svc", "password": "***"}, ["a", 1]]}
        assert "hunter2" not in json.dumps(list(log.records()))
    finally:
        log.close()


def test_the_anchor_check_says_which_record_the_state_store_anchors() -> None:
    anchored = Anchor("log-a", 3, "0123456789abcdef" + "f" * 48)
    where = "(the state store anchors seq 3 (hash 0123456789abcdef…))"
    assert anchor_problem(anchored, "log-a", 5, anchored.hash) is None  # appended after it: fine
    assert anchor_problem(anchored, "log-a", 2, None) == f"its tail was cut off: the log ends before seq 3 {where}"
    assert anchor_problem(anchored, "log-a", 5, "9" * 64) == (
        f"the chain was rewritten: seq 3 is not the anchored record {where}"
    )
    assert anchor_problem(anchored, "log-a", 0, None).startswith("the log holds no records")  # type: ignore[union-attr]
    assert anchor_problem(anchored, "log-b", 5, anchored.hash).startswith("the log was replaced")  # type: ignore[union-attr]
    # nothing anchored yet, or an anchor taken before the first record: an empty log agrees with it
    assert anchor_problem(None, "log-a", 0, None) is None
    assert anchor_problem(Anchor("log-a", 0, GENESIS), "log-a", 0, None) is None
    assert anchor_problem(Anchor("log-a", 1, "a" * 64), "log-a", 0, None) is not None

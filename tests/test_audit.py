"""The hash-chained audit log: tampering is detected and named by seq; exports verify; intents yield
exactly one record; no secret reaches a record; the CLI's `audit verify` / `audit export`."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import sqlite3
from itertools import pairwise
from pathlib import Path

import pytest

from casebridge.errors import remember
from casebridge.state.audit import GENESIS, AuditLog, canonical, read_export, record_hash, verify_records
from tests.cli_runner import Cli


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    log = AuditLog(tmp_path / "audit.db")
    for i in range(1, 7):
        log.append("sync.set_fields", {"reference": f"R-{i}", "key": str(i), "level": i % 3})
    return log


def records(log: AuditLog) -> list[dict]:
    return list(log.records())


def test_chain_links_each_record_to_the_one_before(log: AuditLog) -> None:
    rows = records(log)
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in pairwise(rows))
    assert all(record_hash(r) == r["hash"] for r in rows)
    report = log.verify()
    assert report.ok and report.count == 6 and report.head == rows[-1]["hash"]


def _tamper(log: AuditLog, sql: str, *params: object) -> None:
    db = sqlite3.connect(log.path)
    db.execute(sql, params)
    db.commit()
    db.close()


def test_edited_record_is_named(log: AuditLog) -> None:
    _tamper(log, "UPDATE records SET data = ? WHERE seq = 3", canonical({"reference": "R-3", "key": "3", "level": 2}))
    problems = log.verify().problems
    assert [p.seq for p in problems] == [3] and "edited" in problems[0].message


def test_deleted_record_is_named(log: AuditLog) -> None:
    _tamper(log, "DELETE FROM records WHERE seq = 4")
    problems = log.verify().problems
    assert [p.seq for p in problems] == [5] and "seq 4: missing" in problems[0].message


def test_deleted_last_record_is_visible_only_through_the_head(log: AuditLog) -> None:
    head = log.verify().head
    _tamper(log, "DELETE FROM records WHERE seq = 6")
    report = log.verify()
    # a chain cannot know its own tail was cut: that is why `audit verify` prints the head to keep
    assert report.ok and report.head != head


def test_inserted_record_with_a_recomputed_hash_is_named(log: AuditLog) -> None:
    rows = records(log)
    forged = {"seq": 3, "at": rows[2]["at"], "kind": "sync.set_fields", "data": {"x": 1}, "prev_hash": rows[1]["hash"]}
    forged["hash"] = record_hash(forged)
    lines = [*rows[:2], forged, *rows[2:]]
    problems = verify_records(lines).problems
    assert [p.seq for p in problems] == [3] and "twice" in problems[0].message


def test_renumbered_insert_breaks_the_next_link(log: AuditLog) -> None:
    rows = records(log)
    # insert a forged record as seq 4 and renumber the rest without recomputing their hashes
    forged = {"seq": 4, "at": rows[3]["at"], "kind": "intake.create", "data": {}, "prev_hash": rows[2]["hash"]}
    forged["hash"] = record_hash(forged)
    shifted = [{**r, "seq": r["seq"] + 1} for r in rows[3:]]
    problems = verify_records([*rows[:3], forged, *shifted]).problems
    assert problems and problems[0].seq == 5 and "edited" in problems[0].message


def test_reordered_records_are_named(log: AuditLog) -> None:
    rows = records(log)
    rows[2], rows[3] = rows[3], rows[2]
    problems = verify_records(rows).problems
    assert problems and problems[0].seq == 4 and "missing" in problems[0].message
    assert any(p.seq == 3 and "out of order" in p.message for p in problems)


def test_swapped_contents_in_the_database_are_named(log: AuditLog) -> None:
    rows = records(log)
    # keep seq order but swap the contents of records 2 and 5 (hashes travel with their contents)
    for a, b in ((rows[1], rows[4]), (rows[4], rows[1])):
        _tamper(
            log,
            "UPDATE records SET at = ?, kind = ?, data = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            b["at"], b["kind"], canonical(b["data"]), b["prev_hash"], b["hash"], a["seq"],
        )  # fmt: skip
    problems = log.verify().problems
    assert {p.seq for p in problems} >= {2, 5}


def test_exports_round_trip_and_verify(log: AuditLog) -> None:
    jsonl, table = io.StringIO(), io.StringIO()
    assert log.export(jsonl, "jsonl") == 6 and log.export(table, "csv") == 6
    assert verify_records(read_export(io.StringIO(jsonl.getvalue()), "jsonl")).ok
    assert verify_records(read_export(io.StringIO(table.getvalue()), "csv")).ok
    header = next(csv.reader(io.StringIO(table.getvalue())))
    assert header == ["seq", "at", "kind", "data", "prev_hash", "hash"]
    lines = jsonl.getvalue().splitlines()
    edited = json.loads(lines[1])
    edited["data"]["reference"] = "R-99"
    lines[1] = json.dumps(edited)
    assert [p.seq for p in verify_records(read_export(lines)).problems] == [2]


def test_intent_becomes_exactly_one_record(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    intent = log.begin_intent("sync.set_fields", {"reference": "R-1"})
    assert log.pending() == [(intent, "sync.set_fields", {"reference": "R-1"})]
    assert records(log) == []
    assert log.complete_intent(intent)["seq"] == 1
    assert log.complete_intent(intent) is None  # a second completion adds nothing
    assert log.pending() == [] and len(records(log)) == 1
    dropped = log.begin_intent("sync.set_fields", {"reference": "R-2"})
    log.drop_intent(dropped)
    assert log.pending() == [] and len(records(log)) == 1


def test_no_secret_reaches_a_record(tmp_path: Path) -> None:
    remember("s3cr3t-token-value")
    log = AuditLog(tmp_path / "audit.db")
    log.append("intake.create", {"note": "used s3cr3t-token-value", "api_token": "abc", "nested": {"Password": "x"}})
    raw = (tmp_path / "audit.db").read_bytes()
    assert b"s3cr3t-token-value" not in raw and b'"abc"' not in raw
    data = records(log)[0]["data"]
    assert data == {"note": "used ***", "api_token": "***", "nested": {"Password": "***"}}


def test_find_posted_remembers_escalations(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    log.append("escalation.posted", {"dedupe_key": "R-1/legal/L1", "key": "7", "posted_at": "2026-12-01T00:00:00"})
    assert log.find_posted("R-1/legal/L1")["key"] == "7"
    assert log.find_posted("R-1/legal/L2") is None


def _append_many(path: str, tag: str) -> None:
    log = AuditLog(path)
    for i in range(50):
        log.append("test", {"tag": tag, "i": i})
    log.close()


def test_concurrent_appenders_keep_one_chain(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.db")
    AuditLog(path).close()
    procs = [multiprocessing.get_context("spawn").Process(target=_append_many, args=(path, t)) for t in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    report = AuditLog(path).verify()
    assert report.ok and report.count == 100


def test_cli_verify_and_export(tmp_path: Path, cli: Cli) -> None:
    config = tmp_path / "casebridge.toml"
    config.write_text('state = "st.db"\n[tracker]\nconnector = "local"\npath = "t.db"\n')
    log = AuditLog(tmp_path / "st.audit.db")
    for i in range(3):
        log.append("intake.create", {"reference": f"R-{i}"})
    log.close()
    code, out, _ = cli("--config", str(config), "audit", "verify")
    assert code == 0 and "3 records, chain intact" in out
    code, out, _ = cli("--config", str(config), "audit", "export", "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "seq,at,kind,data,prev_hash,hash" and len(out.splitlines()) == 4
    export = tmp_path / "audit.jsonl"
    code, _, _ = cli("--config", str(config), "audit", "export", "-o", str(export))
    assert code == 0 and len(export.read_text().splitlines()) == 3
    code, out, _ = cli("--config", str(config), "audit", "verify", "--file", str(export))
    assert code == 0
    _tamper(AuditLog(tmp_path / "st.audit.db"), "DELETE FROM records WHERE seq = 2")
    code, _, err = cli("--config", str(config), "audit", "verify")
    assert code == 1 and "BROKEN seq 2: missing before seq 3 (deleted)" in err

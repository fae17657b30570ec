"""The audit log's head anchored in the state store (issue 11, item 8), through the CLI: a cut tail, all
records deleted, a zero-byte or deleted file and a freshly forged valid chain are each reported by
`audit verify` (exit 1, saying what); the next run refuses to append to such a log until
`audit reset --acknowledge-loss`, which records the loss in the new chain."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from casebridge.state.audit import AuditLog
from casebridge.state.audit_anchor import AuditAnchor
from tests.cli_runner import cli_logging_restored, run
from tests.escalate_e2e import EXAMPLES, write_config

NOW = "2026-12-01T09:00:00Z"
AUDIT = "casebridge-state.audit.db"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    write_config(tmp_path, {"connector": "local", "path": "casebridge.db"})
    with cli_logging_restored():
        # one audit record per intake batch: two intakes, so a cut tail leaves a record
        assert run(capsys, "intake", str(EXAMPLES), "--now", NOW)[0] == 0
        assert run(capsys, "intake", str(EXAMPLES.with_suffix(".csv")), "--now", NOW)[0] == 0
        yield tmp_path


def _delete(where: str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        with sqlite3.connect(folder / AUDIT) as db:
            db.execute(f"DELETE FROM records WHERE {where}")

    return tamper


def _remove(folder: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (folder / (AUDIT + suffix)).unlink(missing_ok=True)


def _zero_bytes(folder: Path) -> None:
    _remove(folder)
    (folder / AUDIT).write_bytes(b"")


def _forge(copy_id: bool) -> Callable[[Path], None]:
    """Replace the log by a valid chain of the same length (optionally claiming the old log's id)."""

    def tamper(folder: Path) -> None:
        with sqlite3.connect(folder / AUDIT) as db:
            count = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
            log_id = db.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0]
        _remove(folder)
        forged = AuditLog(folder / AUDIT)  # no anchor: what a forger would write
        for i in range(count):
            forged.append("intake.create", {"reference": f"FAKE-{i}"})
        if copy_id:
            forged._db.execute("UPDATE meta SET value = ? WHERE key = 'log_id'", (log_id,))
        forged.close()

    return tamper


TAMPERING = [
    ("tail-cut", _delete("seq = (SELECT MAX(seq) FROM records)"), "its tail was cut off"),
    ("all-deleted", _delete("1"), "the log holds no records"),
    ("zero-bytes", _zero_bytes, "the log holds no records"),
    ("file-deleted", _remove, "the log holds no records"),
    ("forged-chain", _forge(copy_id=False), "the log was replaced by another chain"),
    ("forged-with-the-old-id", _forge(copy_id=True), "the chain was rewritten"),
]


@pytest.mark.parametrize(("name", "tamper", "said"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_is_reported_and_blocks_the_next_run(capsys, tmp_path, name, tamper, said) -> None:
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "chain intact" in out
    tamper(tmp_path)
    code, out, err = run(capsys, "audit", "verify")
    assert code == 1 and f"anchor: {said}" in err and "chain intact" not in out, (out, err)
    for command in (["sync"], ["intake", str(EXAMPLES)], ["escalate", "--yes"]):
        code, _, err = run(capsys, *command, "--now", NOW)
        assert code == 2 and said in err and "audit reset --acknowledge-loss" in err, (command, err)
        assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "audit", "reset")
    assert code == 2 and "--acknowledge-loss" in err
    code, out, _ = run(capsys, "audit", "reset", "--acknowledge-loss")
    assert code == 0 and "loss acknowledged" in out
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "chain intact" in out
    assert run(capsys, "sync", "--now", NOW)[0] == 0
    log = AuditLog(tmp_path / AUDIT)
    resets = [r for r in log.records() if r["kind"] == "audit.reset"]
    log.close()
    assert len(resets) == 1 and said in resets[0]["data"]["reason"]
    assert resets[0]["data"]["previous_anchor"]["seq"] > 0


def test_the_anchor_follows_every_append_and_never_moves_back(tmp_path) -> None:
    anchor_path = tmp_path / "casebridge-state.db"
    log = AuditLog(tmp_path / AUDIT, AuditAnchor(anchor_path))
    record = log.append("sync.set_fields", {"reference": "R-1"})
    anchored = AuditAnchor(anchor_path)
    assert anchored.get() == log.head() and log.head().seq == record["seq"]
    behind = log.head()
    log.append("sync.set_fields", {"reference": "R-2"})
    anchored.set(behind)  # a slower appender's older head
    assert anchored.get() == log.head()
    anchored.close()
    log.close()


def test_a_crash_between_the_log_commit_and_the_anchor_is_not_tampering(tmp_path, capsys) -> None:
    log = AuditLog(tmp_path / AUDIT)  # appends without moving the anchor, as a process killed in between
    log.append("sync.set_fields", {"reference": "R-1"})
    log.close()
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "chain intact" in out
    assert run(capsys, "sync", "--now", NOW)[0] == 0

"""The optional keyed seal of the audit head (issue 11, item 8): with ``audit_key`` set, a cut tail or a
forged chain is reported even after the state store (and its anchor) was deleted; without the key the
same tampering goes unseen once the state store is gone (the reason for the seal). The key never
appears in any file or output."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from casebridge.state.audit import AuditLog
from tests.cli_runner import cli_logging_restored, run
from tests.escalate_e2e import EXAMPLES, toml_value, write_config

NOW = "2026-12-01T09:00:00Z"
AUDIT, STATE = "casebridge-state.audit.db", "casebridge-state.db"
KEY = "Seal-Key-7f3a9c-not-in-any-file"


def _config(folder: Path, *, sealed: bool) -> None:
    write_config(folder, {"connector": "local", "path": "casebridge.db"})
    if sealed:
        text = (folder / "casebridge.toml").read_text(encoding="utf-8")
        key = toml_value({"env": "CB_TEST_AUDIT_KEY"})
        (folder / "casebridge.toml").write_text(f"audit_key = {key}\n" + text, encoding="utf-8")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    monkeypatch.setenv("CB_TEST_AUDIT_KEY", KEY)
    with cli_logging_restored():
        yield tmp_path


def _cut_tail(folder: Path) -> None:
    with sqlite3.connect(folder / AUDIT) as db:
        db.execute("DELETE FROM records WHERE seq > (SELECT MAX(seq) - 3 FROM records)")


def _forge(folder: Path) -> None:
    """A valid chain of the same length with the old log's id, written by someone without the key."""
    with sqlite3.connect(folder / AUDIT) as db:
        count = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        log_id = db.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0]
        seal = db.execute("SELECT value FROM meta WHERE key = 'seal'").fetchone()
    for suffix in ("", "-wal", "-shm"):
        (folder / (AUDIT + suffix)).unlink(missing_ok=True)
    forged = AuditLog(folder / AUDIT)
    forged._db.execute("UPDATE meta SET value = ? WHERE key = 'log_id'", (log_id,))
    forged.log_id = log_id
    for i in range(count):
        forged.append("intake.create", {"reference": f"FAKE-{i}"})
    if seal is not None:  # the old seal copied over: it seals another head
        forged._db.execute("INSERT OR REPLACE INTO meta VALUES ('seal', ?)", (seal[0],))
    forged.close()


def _drop_state(folder: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (folder / (STATE + suffix)).unlink(missing_ok=True)


TAMPERING: list[tuple[str, Callable[[Path], None], str]] = [
    ("tail-cut", _cut_tail, "its tail was cut"),
    ("forged-chain", _forge, "is not valid"),
]


@pytest.mark.parametrize(("name", "tamper", "said"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_with_a_key_tampering_is_seen_after_the_state_store_is_lost(capsys, tmp_path, name, tamper, said) -> None:
    _config(tmp_path, sealed=True)
    assert run(capsys, "intake", str(EXAMPLES), "--now", NOW)[0] == 0
    assert run(capsys, "audit", "verify")[0] == 0
    tamper(tmp_path)
    _drop_state(tmp_path)  # the anchor goes with it
    code, out, err = run(capsys, "audit", "verify")
    assert code == 1 and said in err, (out, err)
    code, _, err = run(capsys, "intake", str(EXAMPLES), "--now", NOW)
    assert code == 2 and said in err and "audit reset --acknowledge-loss" in err
    assert KEY not in out + err


@pytest.mark.parametrize(("name", "tamper", "said"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_without_a_key_the_same_tampering_is_unseen_once_the_state_store_is_gone(
    capsys, tmp_path, name, tamper, said
) -> None:
    _config(tmp_path, sealed=False)
    assert run(capsys, "intake", str(EXAMPLES), "--now", NOW)[0] == 0
    tamper(tmp_path)
    _drop_state(tmp_path)
    assert run(capsys, "audit", "verify")[0] == 0  # what the seal is for


def test_setting_a_key_on_an_existing_log_needs_one_reset_then_seals(capsys, tmp_path) -> None:
    _config(tmp_path, sealed=False)
    assert run(capsys, "intake", str(EXAMPLES), "--now", NOW)[0] == 0
    _config(tmp_path, sealed=True)
    code, _, err = run(capsys, "audit", "verify")
    assert code == 1 and "carries no seal" in err
    assert run(capsys, "audit", "reset", "--acknowledge-loss")[0] == 0
    assert run(capsys, "audit", "verify")[0] == 0
    assert run(capsys, "intake", str(EXAMPLES), "--now", NOW)[0] == 0
    for name in (AUDIT, STATE, "casebridge.db", "casebridge.toml"):
        assert KEY.encode() not in (tmp_path / name).read_bytes()

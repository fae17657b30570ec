"""The SQLite files casebridge keeps: one opening, one schema-version rule, one write transaction.

Real SQLite files in tmp_path; nothing mocked.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import ConfigError
from casebridge.state.audit import AuditLog
from casebridge.state.sqlite_file import (
    open_sqlite,
    record_schema_version,
    stored_schema_version,
    write_transaction,
)
from casebridge.state.store import StateStore
from casebridge.workflows import load_workflow


def _local(path: Path) -> None:
    LocalConnector(LocalConfig(path=str(path)), load_workflow()).db  # noqa: B018 (opens the file)


@pytest.mark.parametrize(
    ("open_file", "setting"),
    [(_local, "[tracker] path"), (StateStore, "[app] state"), (AuditLog, "[app] audit")],
    ids=["tracker", "state", "audit"],
)
def test_a_file_from_a_newer_casebridge_is_refused(tmp_path: Path, open_file, setting: str) -> None:
    path = tmp_path / "f.db"
    db = open_sqlite(path, setting)
    assert stored_schema_version(db, 1, setting, path) is None  # a new file
    record_schema_version(db, 99)
    db.close()
    with pytest.raises(ConfigError, match=rf"^{re.escape(setting)} <- .*f\.db has schema 99, newer than"):
        open_file(path)


def test_a_write_transaction_commits_all_or_nothing(tmp_path: Path) -> None:
    db = open_sqlite(tmp_path / "t.db", "[x] y")
    db.execute("CREATE TABLE t (v INTEGER)")
    with write_transaction(db):
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), write_transaction(db):
        db.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("interrupted")
    assert [r["v"] for r in db.execute("SELECT v FROM t")] == [1]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unopenable_path_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(ConfigError, match=r"^\[app\] state <- cannot open .*dir\.db"):
        StateStore(tmp_path / "dir.db")


def test_the_schema_version_is_recorded_once(tmp_path: Path) -> None:
    AuditLog(tmp_path / "a.db").close()
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [("1",)]


def test_a_read_only_file_is_read_and_a_write_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An audit log on write-protected media: reading works; writing names the file (no traceback).
    Root may write anything, and CI runs as root: ``os.access`` is made to answer as it would for a
    user on read-only media (the one thing mocked); SQLite's own read-only mode does the rest."""
    from casebridge.errors import UserError

    path = tmp_path / "ro.db"
    db = open_sqlite(path, "[test] path")
    with write_transaction(db):
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    db.close()
    monkeypatch.setattr(os, "access", lambda *_args, **_kw: False)
    db = open_sqlite(path, "[test] path")
    assert db.execute("SELECT x FROM t").fetchone()[0] == 1
    with pytest.raises(UserError, match=r"ro\.db: cannot write .*permissions"), write_transaction(db):
        db.execute("INSERT INTO t VALUES (2)")
    db.close()

"""The SQLite files casebridge keeps (embedded tracker, sync state store, audit log), opened one way.

Connections are in autocommit mode, so every write is an explicit ``write_transaction``: ``BEGIN
IMMEDIATE`` takes the write lock up front, so two processes queue (``timeout``) instead of failing on a
lock upgrade, and WAL lets readers see the last committed state, never half a write. The schema version
lives in a ``meta`` table; a file written by a newer casebridge is refused rather than misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from casebridge.errors import ConfigError

BUSY_TIMEOUT = 30  # seconds a writer waits for another process's transaction


def open_sqlite(path: Path, setting: str) -> sqlite3.Connection:
    """``path`` (its directory made) in autocommit and WAL mode, rows by column name. ``setting`` names
    the configuration key for the error, e.g. ``[tracker] path``. Raises ConfigError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"{setting} <- cannot open {path}: {exc}") from None
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    return db


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Everything in the block commits together or not at all (rolled back on any exception)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def stored_schema_version(
    db: sqlite3.Connection, known: int, setting: str, path: Path, *, remedy: str = "upgrade casebridge"
) -> int | None:
    """The schema version recorded in the file (None for a new file, its ``meta`` table created). A
    version newer than ``known`` raises ConfigError naming ``setting`` and ``remedy``."""
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row["value"]) if row else None
    if version is not None and version > known:
        raise ConfigError(f"{setting} <- {path} has schema {version}, newer than this casebridge ({known}); {remedy}")
    return version


def record_schema_version(db: sqlite3.Connection, version: int) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version),))

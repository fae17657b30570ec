"""The SQLite files casebridge keeps (embedded tracker, sync state store, audit log), opened one way.

Connections are in autocommit mode, so every write is an explicit ``write_transaction``: ``BEGIN
IMMEDIATE`` takes the write lock up front, so two processes queue (``timeout``) instead of failing on a
lock upgrade, and WAL lets readers see the last committed state, never half a write. The schema version
lives in a ``meta`` table; a file written by a newer casebridge is refused rather than misread.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from casebridge.errors import ConfigError, UserError

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 30  # seconds a writer waits for another process's transaction
FILE_MODE, DIR_MODE = 0o600, 0o700  # case data is for the unit's service account only


def private_dirs(folder: Path) -> None:
    """Make ``folder`` and any missing parent, each 0700 (folders that already exist are left as they are)."""
    missing = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        missing.append(parent)
    for made in reversed(missing):
        try:
            made.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(made, DIR_MODE)  # mkdir's mode is cut by the umask


def private_file(path: Path) -> Path:
    """Create ``path`` 0600 (its folders 0700) if it does not exist; an existing file of ours that others
    can read is tightened to 0600. Every data file casebridge writes goes through here. Raises OSError."""
    private_dirs(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        os.chmod(path, FILE_MODE)
    except FileExistsError:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077 and os.stat(path).st_uid == os.getuid():
            log.info("%s was readable by others (%o); now %o", path, mode, FILE_MODE)
            os.chmod(path, FILE_MODE)
    return path


def open_sqlite(path: Path, setting: str) -> sqlite3.Connection:
    """``path`` (0600, its folders 0700, see ``private_file``) in autocommit and WAL mode, rows by column
    name. ``setting`` names the configuration key for the error, e.g. ``[tracker] path``. Raises ConfigError."""
    if _read_only(path):
        # read-only media or folder (an audit log on a write-protected stick): readers still work, and
        # the first write says which file it could not write (write_transaction)
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            raise ConfigError(f"{setting} <- cannot open {path} read-only: {exc}") from None
        db.row_factory = sqlite3.Row
        return db
    try:
        private_file(path)
        db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
        db.execute("PRAGMA journal_mode=WAL")
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"{setting} <- cannot open {path}: {exc}") from None
    db.row_factory = sqlite3.Row
    return db


def _read_only(path: Path) -> bool:
    """An existing file casebridge may not write, or in a folder where SQLite cannot put its journal."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


# SQLite's words for a file or disk it cannot write: the user fixes those, not casebridge
_STORAGE_PROBLEMS = ("readonly", "read-only", "disk is full", "disk i/o error", "unable to open")


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Everything in the block commits together or not at all (rolled back on any exception)."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise _storage_error(db, exc) from None
    try:
        yield db
    except sqlite3.OperationalError as exc:
        db.execute("ROLLBACK")
        if any(word in str(exc).lower() for word in _STORAGE_PROBLEMS):
            raise _storage_error(db, exc) from None
        raise
    except BaseException:
        db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        db.execute("ROLLBACK")
        raise _storage_error(db, exc) from None


def _storage_error(db: sqlite3.Connection, exc: sqlite3.Error) -> UserError:
    row = db.execute("PRAGMA database_list").fetchone()
    where = row[2] if row is not None and row[2] else "a casebridge file"
    return UserError(f"{where}: cannot write ({exc}); check the disk's free space and the folder's permissions")


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

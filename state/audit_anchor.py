"""The audit log's head, anchored outside the log file.

A hash chain shows an edited, inserted or deleted *middle* record, but not a cut tail, an emptied or
deleted file, or a whole chain forged afresh: each of those is itself a valid chain. So after every
append the log's identity (a random id made at its genesis) and its head (seq and hash) are written to
the state store's file as well. ``check`` compares a log with its anchor: the anchored record must
still be in the log with the anchored hash (records appended after it are covered by the chain).

The anchor is written after the log's own commit, so a crash between the two leaves the anchor one
append behind the log, never ahead: that is not a problem, and the next append catches it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from casebridge.errors import UserError
from casebridge.state.sqlite_file import open_sqlite, write_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    log_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
)
"""
RESET_HINT = (
    "keep the damaged file as evidence, see `casebridge audit verify`, then start a new chain with "
    "`casebridge audit reset --acknowledge-loss`"
)


class AuditAnchorMismatch(UserError):
    """The audit log does not hold the head anchored in the state store (cut, emptied, deleted or replaced)."""


@dataclass(frozen=True)
class Anchor:
    log_id: str
    seq: int
    hash: str


class AuditAnchor:
    """One row in the state store's file: the anchored log's id, head seq and head hash."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = open_sqlite(self.path, "[app] state")
        self._db.execute(_SCHEMA)

    def get(self) -> Anchor | None:
        row = self._db.execute("SELECT log_id, seq, hash FROM audit_anchor WHERE id = 1").fetchone()
        return None if row is None else Anchor(row["log_id"], int(row["seq"]), row["hash"])

    def set(self, anchor: Anchor) -> None:
        """Move the anchor forward to ``anchor`` (never back: a slower appender must not undo a faster one)."""
        with write_transaction(self._db) as db:
            current = self.get()
            if current is not None and current.log_id == anchor.log_id and current.seq >= anchor.seq:
                return
            db.execute(
                "INSERT OR REPLACE INTO audit_anchor VALUES (1, ?, ?, ?, ?)",
                (anchor.log_id, anchor.seq, anchor.hash, datetime.now(UTC).isoformat()),
            )

    def replace(self, anchor: Anchor) -> None:
        """Anchor a new chain (``audit reset --acknowledge-loss``): the one way the anchor moves back."""
        with write_transaction(self._db) as db:
            db.execute(
                "INSERT OR REPLACE INTO audit_anchor VALUES (1, ?, ?, ?, ?)",
                (anchor.log_id, anchor.seq, anchor.hash, datetime.now(UTC).isoformat()),
            )

    def close(self) -> None:
        self._db.close()


def anchor_problem(anchor: Anchor | None, log_id: str | None, count: int, hash_at: str | None) -> str | None:
    """What is wrong with a log against its anchor, in one sentence; None when it agrees.

    ``log_id``: the log's id; ``count``: how many records it holds; ``hash_at``: the hash of its record
    at ``anchor.seq`` (None when there is none)."""
    if anchor is None or anchor.seq == 0:
        return None
    where = f"the state store anchors seq {anchor.seq} (hash {anchor.hash[:16]}…)"
    if count == 0:
        return f"the log holds no records: it was emptied, deleted or replaced ({where})"
    if log_id != anchor.log_id:
        return f"the log was replaced by another chain: its id is not the anchored log's ({where})"
    if hash_at is None:
        return f"its tail was cut off: the log ends before seq {anchor.seq} ({where})"
    if hash_at != anchor.hash:
        return f"the chain was rewritten: seq {anchor.seq} is not the anchored record ({where})"
    return None

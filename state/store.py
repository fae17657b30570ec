"""The state store: the sync job's SQLite cache of the tracker.

Per case it keeps what the tracker said last time (case fields, state, SLA fields, ``updated_at``) and the
status history read for that ``updated_at``, so a case the tracker reports unchanged costs no request;
plus the watermark (the newest tracker ``updated_at`` a fully successful pass has seen). Everything here
can be rebuilt from the tracker with ``sync --full``: deleting the file loses nothing but speed.

Writes use ``BEGIN IMMEDIATE`` so a concurrent reader never sees half a pass. The schema is versioned; a
newer schema than this code knows is refused, an older one is rebuilt (it is only a cache).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from casebridge.errors import ConfigError
from casebridge.state.sqlite_file import (
    open_sqlite,
    record_schema_version,
    stored_schema_version,
    write_transaction,
)
from casebridge.workflows.cases import Case, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.sla import iso, parse_iso, sla_from_json, sla_to_json
from casebridge.workflows.sla_numbers import sla_numbers

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: sla_numbers
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    key TEXT PRIMARY KEY,
    reference TEXT NOT NULL,
    updated_at TEXT NOT NULL,      -- tracker's updated_at the cached history belongs to ('' = stale)
    state TEXT NOT NULL,
    data TEXT NOT NULL,            -- the Case as JSON
    sla TEXT NOT NULL,             -- SLA fields the tracker holds (as listed, or as we last wrote them)
    history TEXT,                  -- [[iso, state], ...] or NULL when never read
    sla_numbers BLOB               -- the SLA fields as numbers (workflows.sla_numbers), NULL: read the text
);
CREATE INDEX IF NOT EXISTS cases_reference ON cases (reference);
CREATE TABLE IF NOT EXISTS case_links (  -- pairs of cases the sync job linked (key_a < key_b)
    key_a TEXT NOT NULL,
    key_b TEXT NOT NULL,
    PRIMARY KEY (key_a, key_b)
);
"""


@dataclass
class CachedCase:
    """One case as the store remembers it. ``history`` is None when it must be (re)read; ``tracked`` is
    None when loaded light (the tracker just listed the case, so only the history is wanted)."""

    history: list[StatusChange] | None
    history_for: str  # iso(updated_at) the history was read for; '' when stale
    tracked: TrackedCase | None = None


@dataclass
class StoredCase(TrackedCase):
    """A case streamed from the store with its history and SLA fields still as the stored JSON text (the
    sync pass reads those as columns, ``workflows.clock_columns``): ``history`` stays None and ``sla`` empty
    until ``complete()`` parses them, as ``stream`` would have."""

    history_text: str = "[]"
    sla_text: str = "{}"
    sla_numbers: bytes | None = None  # the same SLA fields as numbers (workflows.sla_numbers), if stored

    @property
    def pending(self) -> bool:
        """True while ``history`` and ``sla`` are not parsed yet."""
        return self.history is None

    def complete(self) -> StoredCase:
        """Parse the stored history and SLA fields (once); returns self."""
        if self.history is None:
            self.sla = sla_from_json(json.loads(self.sla_text))
            self.history = _history(self.history_text)
        return self


class StateStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = open_sqlite(self.path, "[app] state")
        self._migrate()

    def _migrate(self) -> None:
        version = stored_schema_version(
            self._db,
            SCHEMA_VERSION,
            "[app] state",
            self.path,
            remedy="upgrade casebridge or delete the file (it is a cache)",
        )
        with self.transaction() as db:
            if version == 1:  # the numbers beside the text: added, not rebuilt (a rebuild re-lists a remote tracker)
                log.info("state store %s: schema 1 -> %s, adding the SLA fields as numbers", self.path, SCHEMA_VERSION)
                _add_sla_numbers(db)
            elif version is not None and version < SCHEMA_VERSION:
                # only a cache: drop and rebuild rather than migrate
                log.info("state store %s: schema %s -> %s, rebuilding", self.path, version, SCHEMA_VERSION)
                db.execute("DROP TABLE IF EXISTS cases")
                db.execute("DELETE FROM meta")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            record_schema_version(db, SCHEMA_VERSION)

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db)

    def close(self) -> None:
        self._db.close()

    def claim(self, tracker: str) -> None:
        """Remember which tracker this store caches (the first writer names it); refuse another one.
        Raises ConfigError: a store filled from one tracker would make a sync of another write nothing
        and report nothing wrong."""
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'tracker'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('tracker', ?)", (tracker,))
                return
        if row["value"] != tracker:
            raise ConfigError(
                f"{self.path}: this state store belongs to {row['value']}, not {tracker}; "
                "point `state` at that tracker's store, or give this tracker a state file of its own"
            )

    # -- watermark ----------------------------------------------------------------------------------
    def watermark(self) -> datetime | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'watermark'").fetchone()
        return parse_iso(row["value"]) if row else None

    def set_watermark(self, moment: datetime) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('watermark', ?)", (iso(moment),))

    # -- links between cases naming the same identifier ---------------------------------------------
    def linked_pairs(self) -> set[tuple[str, str]]:
        return {(r["key_a"], r["key_b"]) for r in self._db.execute("SELECT key_a, key_b FROM case_links")}

    def record_link(self, key_a: str, key_b: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO case_links VALUES (?, ?)", tuple(sorted((key_a, key_b))))

    # -- cases --------------------------------------------------------------------------------------
    def references(self) -> list[str]:
        """Every case reference the store knows, sorted (shell completion reads these, not the tracker)."""
        return [r[0] for r in self._db.execute("SELECT DISTINCT reference FROM cases ORDER BY reference")]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])

    def load(self, light: frozenset[str] | set[str] = frozenset()) -> dict[str, CachedCase]:
        """Every cached case by tracker key; keys in ``light`` without the case itself (memory: a pass that
        re-lists 10,000 cases would otherwise hold two copies of each)."""
        out: dict[str, CachedCase] = {}
        for row in self._db.execute("SELECT * FROM cases"):
            history = _history(row["history"])
            history_for = row["updated_at"] if history is not None else ""
            if row["key"] in light:
                out[row["key"]] = CachedCase(history, history_for)
                continue
            out[row["key"]] = CachedCase(history, history_for, _tracked(row, history))
        return out

    def cached(self, keys: Iterable[str]) -> dict[str, CachedCase]:
        """The cached histories of these keys, without the cases (the tracker has just listed them)."""
        wanted, out = list(keys), {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT key, updated_at, history FROM cases WHERE key IN ({marks})", chunk):
                history = _history(row["history"])
                out[row["key"]] = CachedCase(history, row["updated_at"] if history is not None else "")
        return out

    def stale(self) -> list[TrackedCase]:
        """Cases whose history must be read again (the store never saw it, or our write left it unknown)."""
        return [_tracked(row, None) for row in self._db.execute("SELECT * FROM cases WHERE history IS NULL")]

    def stream(self, skip: Collection[str] = frozenset()) -> Iterator[TrackedCase]:
        """Every cached case with its history, in reference order, a chunk of rows at a time (a pass over
        100,000 cases never holds them all), leaving out the keys in ``skip``."""
        for chunk in self.stream_rows(skip):
            for row in chunk:
                yield _tracked(row, _history(row["history"]))

    def stream_rows(self, skip: Collection[str] = frozenset(), size: int = 10_000) -> Iterator[list[sqlite3.Row]]:
        """``stream``'s rows as stored (history and SLA fields as their JSON text), ``size`` at a time."""
        rows = self._db.execute("SELECT * FROM cases WHERE history IS NOT NULL ORDER BY reference, key")
        while chunk := rows.fetchmany(size):
            yield [row for row in chunk if row["key"] not in skip]

    def stream_stored(self, skip: Collection[str] = frozenset()) -> Iterator[TrackedCase]:
        """As ``stream``, but each case's history and SLA fields stay text until asked for (``StoredCase``);
        a row whose text is not a string is parsed at once (a plain ``TrackedCase``)."""
        for chunk in self.stream_rows(skip):
            for row in chunk:
                history, sla = row["history"], row["sla"]
                if not isinstance(history, str) or not isinstance(sla, str):
                    yield _tracked(row, _history(history))
                    continue
                yield StoredCase(
                    key=row["key"],
                    case=Case.model_validate_json(row["data"]),
                    state=row["state"],
                    updated_at=_updated_at(row),
                    history_text=history,
                    sla_text=sla,
                    sla_numbers=row["sla_numbers"],
                )

    def reference_of(self, key: str) -> str | None:
        row = self._db.execute("SELECT reference FROM cases WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["reference"])

    def save(self, cases: Iterable[TrackedCase]) -> int:
        """Remember these cases as listed, each with the history read for its ``updated_at``."""
        rows = [_row(t) for t in cases]
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO cases VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def seed(self, cases: Iterable[TrackedCase]) -> int:
        """Remember cases casebridge has just created (intake), each with the history it knows they have
        at the ``updated_at`` the tracker answered the creating (or last) write with, so the next pass
        re-uses it instead of reading it. The usual rule keeps this safe: the entry is used only while
        the tracker reports that very ``updated_at`` and state; any later change means a read. A case
        without history is skipped, and an entry recorded for a newer ``updated_at`` (a pass that ran
        meanwhile) is never overwritten. Does not touch the watermark. Returns how many were seeded."""
        with self.transaction() as db:
            return _seed(db, cases)

    @contextmanager
    def seeding(self) -> Iterator[Callable[[Iterable[TrackedCase]], int]]:
        """``seed`` for many batches in one transaction, committed when the block ends. A streamed intake
        ends it only after the tracker committed, so no seed names a case of a rolled-back run."""
        with self.transaction() as db:
            yield lambda cases: _seed(db, cases)

    def record_write(self, key: str, sla: SlaFields, updated_at: datetime | None) -> None:
        """After our own SLA write: the fields the tracker now holds, and its new ``updated_at`` (None when
        unknown: the cached history is then marked stale and re-read next pass)."""
        stamp = iso(updated_at) if updated_at is not None else ""
        with self.transaction() as db:
            db.execute(
                "UPDATE cases SET sla = ?, sla_numbers = ?, updated_at = ? WHERE key = ?",
                (json.dumps(sla_to_json(sla), sort_keys=True), sla_numbers(sla), stamp, key),
            )

    def forget(self, keys: Iterable[str]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM cases WHERE key = ?", [(k,) for k in keys])

    def reset(self) -> None:
        """Forget every case and the watermark (``sync --full`` rebuilds from the tracker)."""
        with self.transaction() as db:
            db.execute("DELETE FROM cases")
            db.execute("DELETE FROM meta WHERE key = 'watermark'")


_fromisoformat = datetime.fromisoformat  # parse_iso, without a call per change


def _history(text: str | bytes | None) -> list[StatusChange] | None:
    if text is None:
        return None
    change, parse = StatusChange, _fromisoformat  # positional: a pass reads 500,000
    return [change(parse(at), state) for at, state in json.loads(text)]


def _tracked(row: sqlite3.Row, history: list[StatusChange] | None) -> TrackedCase:
    return TrackedCase(
        key=row["key"],
        case=Case.model_validate_json(row["data"]),
        state=row["state"],
        updated_at=_updated_at(row),
        sla=sla_from_json(json.loads(row["sla"])),
        history=history,
    )


def _updated_at(row: sqlite3.Row) -> datetime:
    return parse_iso(row["updated_at"]) if row["updated_at"] else datetime.min.replace(tzinfo=UTC)


def _seed(db: sqlite3.Connection, cases: Iterable[TrackedCase]) -> int:
    rows = [_row(t) for t in cases if t.history]
    before = db.total_changes
    db.executemany(
        "INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
        "reference = excluded.reference, updated_at = excluded.updated_at, state = excluded.state, "
        "data = excluded.data, sla = excluded.sla, history = excluded.history, "
        "sla_numbers = excluded.sla_numbers "
        "WHERE excluded.updated_at > cases.updated_at",  # '' (stale) sorts first: replaced
        rows,
    )
    return db.total_changes - before


def _row(t: TrackedCase) -> tuple[str, str, str, str, str, str, str | None, bytes | None]:
    return (
        t.key,
        t.case.reference,
        iso(t.updated_at),
        t.state,
        t.case.model_dump_json(),
        json.dumps(sla_to_json(t.sla), sort_keys=True),
        json.dumps([[iso(c.at), c.state] for c in t.history]) if t.history is not None else None,
        sla_numbers(t.sla),
    )


def _add_sla_numbers(db: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the numbers column, filled from each row's SLA text (a row whose text does not
    read keeps NULL: the batch path reads its text)."""
    db.execute("ALTER TABLE cases ADD COLUMN sla_numbers BLOB")
    filled = []
    for key, text in db.execute("SELECT key, sla FROM cases").fetchall():
        try:
            filled.append((sla_numbers(sla_from_json(json.loads(text))), key))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    db.executemany("UPDATE cases SET sla_numbers = ? WHERE key = ?", filled)

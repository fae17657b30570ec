"""The audit log: every write casebridge makes, append-only and hash-chained.

Each record is ``seq, at, kind, data, prev_hash, hash`` where ``hash = sha256(canonical JSON of the other
five)`` and ``prev_hash`` is the hash of the record before (64 zeros for the first). ``verify`` walks the
chain and names the first record (by seq) that was edited, deleted, inserted or reordered. A chain
alone cannot prove that its *tail* was not cut off or rewritten as a whole, so the log's id and head
are anchored in the state store as well (``state/audit_anchor.py``): a cut tail, an emptied, deleted
or replaced log is reported by ``audit verify``, and a log that disagrees with its anchor is not
appended to until ``audit reset --acknowledge-loss``. When a court may ask, also keep the head hash that
``audit verify`` prints somewhere else (a ticket, a mail).

The log lives in its own SQLite file (next to the state store, never rebuilt by ``sync --full``). The same
file holds the *pending intents* of the sync job: a write is announced before it is sent, and the
intent is replaced by its audit record in one transaction after the tracker confirmed it, so a crash
between the tracker write and the audit append is repaired by the next run (see ``sync.recover``).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from casebridge.errors import UserError, redactor
from casebridge.state.audit_anchor import RESET_HINT, Anchor, AuditAnchor, AuditAnchorMismatch, anchor_problem
from casebridge.state.audit_seal import SEAL_ROW, seal_for, seal_problem
from casebridge.state.sqlite_file import (
    open_sqlite,
    record_schema_version,
    stored_schema_version,
    write_transaction,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
GENESIS = "0" * 64
FIELDS = ("seq", "at", "kind", "data", "prev_hash", "hash")
# Keys that must never reach the log, whatever a caller passes (secrets are pointers, but be sure).
_FORBIDDEN_KEYS = ("password", "token", "secret", "api_key", "apikey", "authorization")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- find_posted looks a key up through this index instead of scanning every record
CREATE INDEX IF NOT EXISTS records_posted ON records (json_extract(data, '$.dedupe_key'), seq)
    WHERE kind = 'escalation.posted';
-- completing an escalation after a crash looks up whether its case side was finished
CREATE INDEX IF NOT EXISTS records_handled ON records (json_extract(data, '$.dedupe_key'), seq)
    WHERE kind = 'escalation.handled';
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def canonical(value: Any) -> str:
    """The one serialisation hashed: sorted keys, no spaces, UTF-8 text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(record: dict[str, Any]) -> str:
    body = {k: record[k] for k in ("seq", "at", "kind", "data", "prev_hash")}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def _scrub(data: Any) -> Any:
    """Drop secret-looking keys and mask known secrets, recursively."""
    return _walk(data, redactor())  # the secrets looked up once per record, not per string


def _clean_text(data: Any) -> str:
    """``canonical(_scrub(data))``. Fast path for big records (an intake batch): when no secret is known
    and no secret-looking word occurs anywhere in the text, scrubbing would change nothing."""
    text = canonical(data)
    mask = redactor()
    if mask is None:
        lowered = text.lower()
        if not any(word in lowered for word in _FORBIDDEN_KEYS):
            return text
    return canonical(_walk(data, mask))


def _clean_canonical(text: str) -> str:
    """``_clean_text(json.loads(text))`` for ``text`` that is already canonical JSON of plain JSON values
    (what ``canonical`` writes): the text itself when scrubbing would change nothing."""
    mask = redactor()
    if mask is None:
        lowered = text.lower()
        if not any(word in lowered for word in _FORBIDDEN_KEYS):
            return text
    return canonical(_walk(json.loads(text), mask))


def _walk(data: Any, mask: Callable[[str], str] | None) -> Any:
    kind = type(data)
    if kind is str or isinstance(data, str):
        return data if mask is None else mask(data)
    if kind is dict or isinstance(data, dict):
        return {str(k): ("***" if _forbidden(str(k)) else _walk(v, mask)) for k, v in data.items()}
    if kind is list or isinstance(data, list | tuple):
        return [_walk(v, mask) for v in data]
    return data


@functools.lru_cache(maxsize=4096)
def _forbidden(key: str) -> bool:
    lowered = key.lower()
    return any(f in lowered for f in _FORBIDDEN_KEYS)


@dataclass(frozen=True)
class Problem:
    seq: int | None
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class VerifyReport:
    count: int = 0
    head: str = GENESIS
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_records(records: Iterable[dict[str, Any]]) -> VerifyReport:
    """Walk records in stored order; report each break of the chain, naming the seq."""
    report = VerifyReport()
    expected_seq, prev = 1, GENESIS
    seen: set[int] = set()
    for record in records:
        report.count += 1
        seq = record.get("seq")
        if not isinstance(seq, int) or any(k not in record for k in FIELDS):
            report.problems.append(Problem(None, f"record #{report.count}: malformed (fields {sorted(record)})"))
            continue
        if record_hash(record) != record["hash"]:
            report.problems.append(Problem(seq, f"seq {seq}: edited (its hash does not match its contents)"))
        elif seq in seen:
            report.problems.append(Problem(seq, f"seq {seq}: appears twice (a record was inserted or copied)"))
        elif seq < expected_seq:
            report.problems.append(Problem(seq, f"seq {seq}: out of order after seq {expected_seq - 1} (reordered)"))
        elif seq > expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
            report.problems.append(Problem(seq, f"seq {missing}: missing before seq {seq} (deleted)"))
        elif record["prev_hash"] != prev:
            report.problems.append(
                Problem(seq, f"seq {seq}: does not follow the record before it (inserted, replaced or reordered)")
            )
        seen.add(seq)
        # resynchronise on this record so one break is reported once, not for every later record
        expected_seq, prev = max(expected_seq, seq + 1), record["hash"]
    report.head = prev
    return report


class AuditLog:
    """Append-only, hash-chained audit log in SQLite. Safe for concurrent appenders (BEGIN IMMEDIATE).

    With ``anchor`` (the state store's file) the head is anchored there after every append, and
    ``check=True`` refuses (AuditAnchorMismatch) a log that no longer holds the anchored head."""

    def __init__(
        self, path: Path | str, anchor: AuditAnchor | None = None, *, check: bool = True, seal_key: bytes | None = None
    ) -> None:
        self.path = Path(path)
        self.seal_key = seal_key  # with a key, every append seals the new head (state/audit_seal.py)
        self._db = open_sqlite(self.path, "[app] audit")
        self._db.execute("PRAGMA synchronous=FULL")  # an audit record once committed survives power loss
        version = stored_schema_version(self._db, SCHEMA_VERSION, "[app] audit", self.path)
        self._db.executescript(_SCHEMA)
        if version is None:
            record_schema_version(self._db, SCHEMA_VERSION)
        self.log_id = self._identity()
        self.anchor = anchor
        if anchor is not None and check:
            problem = self.anchor_problem()
            if problem is not None:
                self.close()
                raise AuditAnchorMismatch(f"audit log {self.path}: {problem}; {RESET_HINT}")

    def _identity(self) -> str:
        """The log's random id, made at its genesis (a forged replacement has another)."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()
            if row is not None:
                return str(row["value"])
            log_id = uuid.uuid4().hex
            db.execute("INSERT INTO meta VALUES ('log_id', ?)", (log_id,))
            return log_id

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db)

    # -- the anchor ---------------------------------------------------------------------------------
    def head(self) -> Anchor:
        row = self._db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return Anchor(self.log_id, int(row["seq"]), row["hash"]) if row else Anchor(self.log_id, 0, GENESIS)

    def anchor_problem(self) -> str | None:
        """What is wrong with this log against its anchor; None when it agrees (or nothing is anchored)."""
        sealed = self.seal_problem()
        if sealed is not None:
            return sealed
        if self.anchor is None:
            return None
        anchored = self.anchor.get()
        if anchored is None:
            return None
        count = int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        row = self._db.execute("SELECT hash FROM records WHERE seq = ?", (anchored.seq,)).fetchone()
        return anchor_problem(anchored, self.log_id, count, row["hash"] if row else None)

    def seal_problem(self) -> str | None:
        """Without a key: None. With one: what is wrong with the seal of the log's head (None if valid)."""
        if self.seal_key is None:
            return None
        head = self.head()
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (SEAL_ROW,)).fetchone()
        return seal_problem(self.seal_key, self.log_id, head.seq, head.hash, row["value"] if row else None)

    def _anchor_head(self, record: dict[str, Any] | None) -> None:
        if self.anchor is not None and record is not None:
            self.anchor.set(Anchor(self.log_id, record["seq"], record["hash"]))

    def reset_anchor(self, reason: str) -> dict[str, Any]:
        """Acknowledge a loss: record what the anchor said in this log and anchor this log's head."""
        if self.anchor is None:
            raise UserError(f"audit log {self.path}: it has no anchor to reset (it was opened without one)")
        lost = self.anchor.get()
        previous = None if lost is None else {"seq": lost.seq, "hash": lost.hash, "log_id": lost.log_id}
        record = self.append("audit.reset", {"reason": reason, "previous_anchor": previous}, anchor=False)
        self.anchor.replace(Anchor(self.log_id, record["seq"], record["hash"]))
        return record

    def _append(self, db: sqlite3.Connection, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        text = _clean_text(data)
        record = self._append_text(db, kind, text)
        record["data"] = json.loads(text)
        return record

    def _append_text(self, db: sqlite3.Connection, kind: str, text: str) -> dict[str, Any]:
        """Append a record whose data is ``text``, canonical JSON already scrubbed; returns it without data."""
        last = db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        record: dict[str, Any] = {
            "seq": (last["seq"] + 1) if last else 1,
            "at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "kind": kind,
            "prev_hash": last["hash"] if last else GENESIS,
        }
        # record_hash's canonical body, with the data's text spliced in rather than serialised again
        body = (
            f'{{"at":{canonical(record["at"])},"data":{text},"kind":{canonical(kind)},'
            f'"prev_hash":{canonical(record["prev_hash"])},"seq":{record["seq"]}}}'
        )
        record["hash"] = hashlib.sha256(body.encode("utf-8")).hexdigest()
        db.execute(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
            (record["seq"], record["at"], kind, text, record["prev_hash"], record["hash"]),
        )
        if self.seal_key is not None:  # in the append's own transaction
            seal = seal_for(self.seal_key, self.log_id, record["seq"], record["hash"])
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (SEAL_ROW, seal))
        return record

    def append(self, kind: str, data: dict[str, Any], *, anchor: bool = True) -> dict[str, Any]:
        """Append one record and return it (with seq and hash)."""
        with self._transaction() as db:
            record = self._append(db, kind, data)
        if anchor:
            self._anchor_head(record)
        return record

    # -- intents: a write announced before it is sent -----------------------------------------------
    def begin_intent(self, kind: str, data: dict[str, Any]) -> int:
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO pending (kind, data, created_at) VALUES (?, ?, ?)",
                (kind, _clean_text(data), datetime.now(UTC).isoformat()),
            )
            return int(cur.lastrowid or 0)

    def complete_intent(self, intent_id: int, extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The write was applied: replace the intent by its audit record, atomically. Returns the record,
        or None when the intent was already completed or dropped (never two records for one intent)."""
        with self._transaction() as db:
            row = db.execute("SELECT kind, data FROM pending WHERE id = ?", (intent_id,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM pending WHERE id = ?", (intent_id,))
            record = self._append(db, row["kind"], {**json.loads(row["data"]), **(extra or {})})
        self._anchor_head(record)
        return record

    def begin_intents(self, kind: str, datas: Iterable[dict[str, Any]]) -> list[int]:
        """Announce many writes in one transaction (one commit however many): ``datas`` may be a
        generator that does the writes' preparatory work; if it raises, nothing is announced."""
        return self._announce(kind, map(_clean_text, datas))

    def begin_intents_text(self, kind: str, texts: Iterable[str]) -> list[int]:
        """``begin_intents`` for data given as canonical JSON text (``canonical`` of plain JSON values, as
        an intake batch renders it directly): scrubbed as ``begin_intents`` scrubs, one transaction."""
        return self._announce(kind, map(_clean_canonical, texts))

    def _announce(self, kind: str, cleaned: Iterable[str]) -> list[int]:
        # ``cleaned`` is consumed inside the transaction: if producing it raises, nothing is announced
        with self._transaction() as db:
            return [
                int(
                    db.execute(
                        "INSERT INTO pending (kind, data, created_at) VALUES (?, ?, ?)",
                        (kind, data, datetime.now(UTC).isoformat()),
                    ).lastrowid
                    or 0
                )
                for data in cleaned
            ]

    def complete_intents(self, intent_ids: Iterable[int], extra: dict[str, Any] | None = None) -> int:
        """``complete_intent`` for many in one transaction, the head anchored once; returns the records made."""
        record = None
        made = 0
        with self._transaction() as db:
            for intent_id in intent_ids:
                row = db.execute("SELECT kind, data FROM pending WHERE id = ?", (intent_id,)).fetchone()
                if row is None:
                    continue
                db.execute("DELETE FROM pending WHERE id = ?", (intent_id,))
                text = row["data"] if extra is None else _clean_text({**json.loads(row["data"]), **extra})
                record = self._append_text(db, row["kind"], text)  # pending data was scrubbed when announced
                made += 1
        self._anchor_head(record)
        return made

    def drop_intent(self, intent_id: int) -> None:
        """The write was not applied (checked against the tracker): forget the intent."""
        with self._transaction() as db:
            db.execute("DELETE FROM pending WHERE id = ?", (intent_id,))

    def pending(self) -> list[tuple[int, str, dict[str, Any]]]:
        rows = self._db.execute("SELECT id, kind, data FROM pending ORDER BY id").fetchall()
        return [(r["id"], r["kind"], json.loads(r["data"])) for r in rows]

    # -- reading ------------------------------------------------------------------------------------
    def records(self) -> Iterator[dict[str, Any]]:
        for row in self._db.execute("SELECT seq, at, kind, data, prev_hash, hash FROM records ORDER BY rowid"):
            yield {**dict(row), "data": json.loads(row["data"])}

    def verify(self) -> VerifyReport:
        """The chain, then the anchor: a cut tail, an emptied, deleted or replaced log is a problem."""
        report = verify_records(self.records())
        problem = self.anchor_problem()
        if problem is not None:
            report.problems.append(Problem(None, f"anchor: {problem}"))
        return report

    def find_posted(self, dedupe_key: str) -> dict[str, Any] | None:
        """The data of the last ``escalation.posted`` record with this dedupe key (escalation's memory
        of what it posted, for targets that cannot be searched, e.g. mail)."""
        return self._last_by_key("escalation.posted", dedupe_key)

    def find_handled(self, dedupe_key: str) -> dict[str, Any] | None:
        """The data of the last ``escalation.handled`` record with this dedupe key (the case side of that
        escalation, link, comment and move, was completed), or None."""
        return self._last_by_key("escalation.handled", dedupe_key)

    def _last_by_key(self, kind: str, dedupe_key: str) -> dict[str, Any] | None:
        # one partial index per kind (the schema above): a lookup, not a scan of every record
        row = self._db.execute(
            "SELECT data FROM records WHERE kind = ? AND json_extract(data, '$.dedupe_key') = ?"
            " ORDER BY seq DESC LIMIT 1",
            (kind, dedupe_key),
        ).fetchone()
        return None if row is None else json.loads(row["data"])

    def export(self, out: IO[str], fmt: str = "jsonl") -> int:
        """Write every record to ``out`` as JSON lines or CSV (data as canonical JSON); returns the count."""
        count = 0
        if fmt == "jsonl":
            for record in self.records():
                out.write(canonical(record) + "\n")
                count += 1
        elif fmt == "csv":
            writer = csv.writer(out)
            writer.writerow(FIELDS)
            for record in self.records():
                writer.writerow([record[k] if k != "data" else canonical(record[k]) for k in FIELDS])
                count += 1
        else:
            raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
        return count

    def close(self) -> None:
        self._db.close()
        if self.anchor is not None:
            self.anchor.close()


def read_export(lines: Iterable[str], fmt: str = "jsonl") -> Iterator[dict[str, Any]]:
    """Records back from an export, for ``audit verify --file``."""
    if fmt == "jsonl":
        for line in lines:
            if line.strip():
                yield json.loads(line)
        return
    for row in csv.DictReader(lines):
        yield {**row, "seq": int(row["seq"]), "data": json.loads(row["data"])}

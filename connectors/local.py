"""The embedded tracker: cases, status history, SLA fields, comments and a liaison queue in one SQLite file.

It is the zero-setup default (the whole tool works without Jira or Redmine) and the reference
implementation of the connector contract: every other connector must behave like this one.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from pydantic import ValidationError

from casebridge.connectors import (
    CASES,
    LIAISON,
    CaseTexts,
    Connector,
    ConnectorConfig,
    Escalation,
    PostedEscalation,
)
from casebridge.connectors.local_schema import (
    CHUNK,
    SCHEMA,
    SCHEMA_VERSION,
    iso,
    parse,
    sla_from_row,
    sla_to_json,
)
from casebridge.errors import NotFoundError, TrackerError, TransitionNotAllowed, validation_problem
from casebridge.state.sqlite_file import (
    open_sqlite,
    record_schema_version,
    stored_schema_version,
    write_transaction,
)
from casebridge.workflows.cases import Case, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.model import Workflow

log = logging.getLogger(__name__)


class LocalConfig(ConnectorConfig):
    path: str = "casebridge.db"


class LocalConnector(Connector):
    """Embedded SQLite tracker. ``clock`` gives the time stamped on writes (the CLI's ``--now``)."""

    name: ClassVar[str] = "local"
    config_model: ClassVar[type[ConnectorConfig]] = LocalConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({CASES, LIAISON})
    back_dates: ClassVar[bool] = True  # --at / state_since replays
    bulk_history: ClassVar[bool] = True  # one query reads every history
    creates_with_sla: ClassVar[bool] = True  # the SLA fields go into the creating INSERT
    transactional: ClassVar[bool] = True  # ``transaction()``: an intake commits whole or not at all
    config: LocalConfig

    def __init__(self, config: LocalConfig, workflow: Workflow) -> None:
        super().__init__(config, workflow)
        self.path = Path(config.path).expanduser()
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._db: sqlite3.Connection | None = None
        self._outer = False  # inside ``transaction()``: writes join it

    # -- storage --------------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = open_sqlite(self.path, "[tracker] path")
        db.execute("PRAGMA foreign_keys=ON")
        version = stored_schema_version(db, SCHEMA_VERSION, "[tracker] path", self.path)
        db.executescript(SCHEMA)
        if version is None:
            record_schema_version(db, SCHEMA_VERSION)
        return db

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return nullcontext(self.db) if self._outer else write_transaction(self.db)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside commits together, or none (one SQLite transaction; nested ones join)."""
        if self._outer:
            yield
            return
        with write_transaction(self.db):
            self._outer = True
            try:
                yield
            finally:
                self._outer = False

    @staticmethod
    def _modified(db: sqlite3.Connection, stamp: str) -> str:
        """The ``updated_at`` of a write: its time, but never before the newest change in the tracker.
        Replays write with --now/--at out of wall-clock order (a transition --at 08:00 after a sync at
        09:00); without this an incremental sync whose watermark passed 08:00 would never see it."""
        newest = db.execute("SELECT MAX(updated_at) AS m FROM cases").fetchone()["m"]
        return max(stamp, newest or "")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _row(self, key: str) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM cases WHERE id = ?", (_int_key(key),)).fetchone()
        if row is None:
            raise NotFoundError(f"local tracker: no case with key {key}")
        found: sqlite3.Row = row
        return found

    def _tracked(self, row: sqlite3.Row) -> TrackedCase:
        return TrackedCase(
            key=str(row["id"]),
            case=self._case(row["data"], row["id"], row["reference"]),
            state=row["state"],
            updated_at=parse(row["updated_at"]),
            sla=sla_from_row(row["sla"], row["escalation_level"]),
        )

    def _case(self, data: str, key: int, reference: str) -> Case:
        """The stored case, validated in full (pydantic's compiled validator beats any trusted path in
        Python: measured in issue 16). A row changed outside casebridge stops here, named, in one line."""
        try:
            return Case.model_validate_json(data)
        except ValidationError as exc:
            raise TrackerError(
                f"{self.path}: case {key} ({reference}) is not a valid case: {validation_problem(exc, Case)};"
                " the row was changed outside casebridge: correct it or restore the file from a backup",
                case=reference,
            ) from None

    # -- cases ------------------------------------------------------------------------------------
    def find_case(self, reference: str) -> TrackedCase | None:
        row = self.db.execute("SELECT * FROM cases WHERE reference = ?", (reference,)).fetchone()
        return None if row is None else self._tracked(row)

    def identity(self) -> str:
        return f"local:{Path(self.config.path).resolve()}"

    def exists(self) -> bool:
        return self._db is not None or Path(self.config.path).exists()

    def use_clock(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock()

    def create_case(
        self,
        case: Case,
        *,
        state: str | None = None,
        at: datetime | None = None,
        sla: SlaFields | None = None,
    ) -> TrackedCase:
        return next(
            self.create_cases(
                [case],
                states={case.reference: state} if state else None,
                at={case.reference: at},
                sla={case.reference: sla} if sla is not None else None,
            )
        )

    def create_cases(
        self,
        cases: Iterable[Case],
        *,
        states: Mapping[str, str] | None = None,
        at: Mapping[str, datetime | None] | None = None,
        sla: Mapping[str, SlaFields] | None = None,
    ) -> Iterator[TrackedCase]:
        """One transaction (or the caller's ``transaction()``) for the lot; an existing reference is
        returned as it is (the reference is the key). New cases come back with their one-entry history."""
        cases = list(cases)
        made: list[TrackedCase] = []
        state_of, at_of = (states or {}).get, (at or {}).get  # looked up once, not per case
        initial, known = self.workflow.initial, self.workflow.states
        with self._write() as db:
            existing = self._ids([c.reference for c in cases])
            newest = db.execute("SELECT MAX(updated_at) AS m FROM cases").fetchone()["m"] or ""
            shown, updated = "", parse("2000-01-01T00:00:00Z")  # newest as text and parsed (once per value)
            history: list[tuple[int, str, str]] = []  # one executemany for the lot, after the cases
            try:
                for case in cases:
                    ref = case.reference
                    if ref in existing:
                        made.append(self._tracked(self._row(str(existing[ref]))))
                        continue
                    state = state_of(ref) or initial
                    if state not in known:
                        raise TrackerError(f"local tracker: unknown workflow state {state!r}", case=ref)
                    moment = at_of(ref) or self.clock()
                    fields = sla[ref] if sla is not None else SlaFields()
                    stamp = iso(moment)
                    newest = max(stamp, newest)  # _modified: never before the newest change
                    if newest != shown:
                        shown, updated = newest, parse(newest)
                    data, level = case.model_dump_json(), fields.escalation_level
                    cur = db.execute(_INSERT_CASE, (ref, data, state, stamp, newest, sla_to_json(fields), level))
                    case_id = int(cur.lastrowid or 0)
                    history.append((case_id, stamp, state))
                    existing[ref] = case_id
                    change = StatusChange(parse(stamp), state)
                    made.append(TrackedCase(str(case_id), case, state, updated, fields, [change]))
            finally:  # the histories of the cases inserted, even when a later one failed
                db.executemany("INSERT INTO history VALUES (?, 0, ?, ?, NULL)", history)
        yield from made

    def _rows_in(self, query: str, values: list[str]) -> list[sqlite3.Row]:
        """The rows of ``query`` (which ends in ``IN ({marks})``) for every value, one query per chunk:
        the bound parameters of one statement stay under SQLite's limit. Fetched whole, so a caller that
        stops on a bad row leaves no cursor open."""
        rows: list[sqlite3.Row] = []
        for start in range(0, len(values), CHUNK):
            chunk = values[start : start + CHUNK]
            rows += self.db.execute(query.format(marks=", ".join("?" * len(chunk))), chunk).fetchall()
        return rows

    def _ids(self, references: list[str]) -> dict[str, int]:
        rows = self._rows_in("SELECT id, reference FROM cases WHERE reference IN ({marks})", references)
        return {row["reference"]: int(row["id"]) for row in rows}

    def find_cases(self, references: Iterable[str]) -> dict[str, TrackedCase]:
        """One indexed query per chunk of references (the UNIQUE reference is the index)."""
        rows = self._rows_in("SELECT * FROM cases WHERE reference IN ({marks})", list(dict.fromkeys(references)))
        return {row["reference"]: self._tracked(row) for row in rows}

    def update_case(self, key: str, case: Case) -> TrackedCase:
        row = self._row(key)
        if row["reference"] != case.reference:
            raise TrackerError(f"local tracker: case {key} has reference {row['reference']}, not {case.reference}")
        with self._write() as db:
            db.execute(
                "UPDATE cases SET data = ?, updated_at = ? WHERE id = ?",
                (case.model_dump_json(), self._modified(db, iso(self.clock())), row["id"]),
            )
        return self._tracked(self._row(key))

    def list_cases(self, updated_since: datetime | None = None) -> Iterator[TrackedCase]:
        since = iso(updated_since) if updated_since else ""
        cursor = self.db.cursor()
        cursor.row_factory = None  # plain tuples, the columns needed: 100,000 rows at agency scale
        rows = cursor.execute(
            "SELECT id, reference, data, state, updated_at, sla, escalation_level FROM cases WHERE updated_at >= ?"
            " ORDER BY updated_at, id",
            (since,),
        ).fetchall()
        load = self._case  # what _tracked does, without a sqlite3.Row per case
        for key, reference, data, state, updated_at, sla, level in rows:
            yield TrackedCase(str(key), load(data, key, reference), state, parse(updated_at), sla_from_row(sla, level))

    def list_case_texts(self) -> CaseTexts:
        """Every case row as stored, in id order, its history as one JSON text built by SQLite
        (``json_quote`` escapes whatever a changed row holds; entries in seq order: the primary key's
        index); nothing is parsed here."""
        cursor = self.db.cursor()
        cursor.row_factory = None  # plain tuples: 100,000 rows at agency scale
        return CaseTexts.from_rows(cursor.execute(_CASE_TEXTS).fetchall())

    def case_text_chunks(self, size: int) -> Iterator[CaseTexts]:
        """``list_case_texts`` ``size`` rows at a time, from one query (one read transaction: the chunks are
        one snapshot of the tracker)."""
        cursor = self.db.cursor()
        cursor.row_factory = None
        cursor.execute(_CASE_TEXTS)
        return _chunks(cursor, size)

    def read_history(self, key: str) -> list[StatusChange]:
        self._row(key)
        rows = self.db.execute("SELECT at, state FROM history WHERE case_id = ? ORDER BY seq", (_int_key(key),))
        return [StatusChange(at=parse(r["at"]), state=r["state"]) for r in rows]

    def read_all_histories(self) -> dict[str, list[StatusChange]]:
        """Every case's history in one query (``bulk_history``)."""
        out: dict[str, list[StatusChange]] = {}
        rows = self.db.cursor()
        rows.row_factory = None  # plain tuples: 500,000 rows at agency scale
        change, parse = StatusChange, datetime.fromisoformat  # positional, no call to parse() per row
        for case_id, at, state in rows.execute("SELECT case_id, at, state FROM history ORDER BY case_id, seq"):
            out.setdefault(str(case_id), []).append(change(parse(at), state))
        return out

    def transition(self, key: str, state: str, *, note: str | None = None, at: datetime | None = None) -> None:
        # the state check, MAX(seq) and the insert in one write transaction: two processes moving the
        # same case queue here instead of both reading the same seq (UNIQUE case_id, seq)
        with self._write() as db:
            row = self._row(key)
            if state not in self.workflow.states:
                raise TransitionNotAllowed(f"unknown workflow state {state!r}", case=row["reference"])
            if not self.workflow.can_transition(row["state"], state):
                raise TransitionNotAllowed(
                    f"{row['reference']}: the workflow has no transition {row['state']} -> {state}",
                    case=row["reference"],
                )
            stamp = at or self.clock()
            last = db.execute("SELECT MAX(seq) AS seq, MAX(at) AS at FROM history WHERE case_id = ?", (row["id"],))
            prev = last.fetchone()
            if iso(stamp) < prev["at"]:
                raise TrackerError(f"{row['reference']}: --at {iso(stamp)} is before the last change {prev['at']}")
            db.execute(
                "INSERT INTO history VALUES (?, ?, ?, ?, ?)", (row["id"], prev["seq"] + 1, iso(stamp), state, note)
            )
            updated = self._modified(db, iso(self.clock()))
            db.execute("UPDATE cases SET state = ?, updated_at = ? WHERE id = ?", (state, updated, row["id"]))
            if note:
                db.execute(
                    "INSERT INTO comments (case_id, at, markdown) VALUES (?, ?, ?)", (row["id"], iso(stamp), note)
                )

    def set_sla_fields(self, key: str, sla: SlaFields) -> None:
        row = self._row(key)
        current = sla_from_row(row["sla"], row["escalation_level"])
        merged = SlaFields(clocks={**current.clocks, **sla.clocks}, escalation_level=sla.escalation_level)
        with self._write() as db:
            db.execute(
                "UPDATE cases SET sla = ?, escalation_level = ?, updated_at = ? WHERE id = ?",
                (sla_to_json(merged), merged.escalation_level, self._modified(db, iso(self.clock())), row["id"]),
            )

    def comment(self, key: str, markdown: str) -> None:
        row = self._row(key)
        with self._write() as db:
            db.execute(
                "INSERT INTO comments (case_id, at, markdown) VALUES (?, ?, ?)",
                (row["id"], iso(self.clock()), markdown),
            )

    def comments(self, key: str) -> list[str]:
        self._row(key)
        rows = self.db.execute("SELECT markdown FROM comments WHERE case_id = ? ORDER BY id", (_int_key(key),))
        return [r["markdown"] for r in rows]

    def has_comment_marker(self, key: str, marker: str) -> bool:
        self._row(key)
        found = self.db.execute(
            "SELECT 1 FROM comments WHERE case_id = ? AND instr(markdown, ?) > 0 LIMIT 1", (_int_key(key), marker)
        ).fetchone()
        return found is not None

    # -- liaison queue ----------------------------------------------------------------------------
    def find_escalation(self, dedupe_key: str) -> PostedEscalation | None:
        row = self.db.execute("SELECT * FROM liaison WHERE dedupe_key = ?", (dedupe_key,)).fetchone()
        return None if row is None else self._posted(row)

    def find_escalations(self, dedupe_keys: Iterable[str]) -> dict[str, PostedEscalation]:
        """One indexed query per chunk of keys (the UNIQUE dedupe_key is the index)."""
        rows = self._rows_in("SELECT * FROM liaison WHERE dedupe_key IN ({marks})", list(dict.fromkeys(dedupe_keys)))
        return {row["dedupe_key"]: self._posted(row) for row in rows}

    def post_escalation(self, escalation: Escalation) -> PostedEscalation:
        with self._write() as db:
            # INSERT OR IGNORE + the UNIQUE key: a second post of one key is a no-op, never a duplicate
            db.execute(
                "INSERT OR IGNORE INTO liaison (dedupe_key, case_reference, case_key, title, markdown, level, clock,"
                " posted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    escalation.dedupe_key,
                    escalation.case_reference,
                    escalation.case_key,
                    escalation.title,
                    escalation.markdown,
                    escalation.level,
                    escalation.clock,
                    iso(self.clock()),
                ),
            )
        posted = self.find_escalation(escalation.dedupe_key)
        if posted is None:  # just inserted or already there: only a store changed underneath us gets here
            raise TrackerError(f"{self.path}: the liaison item {escalation.dedupe_key} just posted is not in the store")
        return posted

    def link_escalation(self, key: str, posted: PostedEscalation) -> None:
        row = self._row(key)
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO links VALUES (?, ?, ?)", (row["id"], posted.key, posted.url))

    def link_cases(self, key_a: str, key_b: str, *, note: str) -> None:
        a, b = sorted((self._row(key_a)["id"], self._row(key_b)["id"]))
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO case_links VALUES (?, ?, ?, ?)", (a, b, note, iso(self.clock())))

    def linked_cases(self, key: str) -> list[str]:
        """Keys of the cases linked to ``key`` (either side of the pair)."""
        k = _int_key(key)
        rows = self.db.execute(
            "SELECT CASE WHEN case_a = ? THEN case_b ELSE case_a END FROM case_links WHERE ? IN (case_a, case_b)"
            " ORDER BY 1",
            (k, k),
        )
        return [str(r[0]) for r in rows]

    def links(self, key: str) -> list[tuple[str, str | None]]:
        rows = self.db.execute("SELECT posted_key, url FROM links WHERE case_id = ? ORDER BY rowid", (_int_key(key),))
        return [(r["posted_key"], r["url"]) for r in rows]

    def liaison_items(self) -> list[PostedEscalation]:
        return [self._posted(r) for r in self.db.execute("SELECT * FROM liaison ORDER BY id")]

    def liaison_markdown(self, dedupe_key: str) -> str | None:
        row = self.db.execute("SELECT markdown FROM liaison WHERE dedupe_key = ?", (dedupe_key,)).fetchone()
        return None if row is None else row["markdown"]

    def _posted(self, row: sqlite3.Row) -> PostedEscalation:
        return PostedEscalation(
            dedupe_key=row["dedupe_key"],
            key=str(row["id"]),
            url=f"local:liaison/{row['id']}",
            posted_at=parse(row["posted_at"]),
        )


def _chunks(cursor: sqlite3.Cursor, size: int) -> Iterator[CaseTexts]:
    while rows := cursor.fetchmany(size):
        yield CaseTexts.from_rows(rows)


# one history text per case: entries '["<at>", "<state>"]' joined by ", " inside "[...]", the layout of
# json.dumps (workflows.clock_columns reads it); the inner query walks the (case_id, seq) index in order
_CASE_TEXTS = """
SELECT c.id, c.data, c.state, c.updated_at, c.sla, c.escalation_level,
  (SELECT '[' || group_concat(e, ', ') || ']' FROM (
     SELECT '[' || json_quote(h.at) || ', ' || json_quote(h.state) || ']' AS e
     FROM history AS h WHERE h.case_id = c.id ORDER BY h.seq))
FROM cases AS c ORDER BY c.id
"""

_INSERT_CASE = (
    "INSERT INTO cases (reference, data, state, created_at, updated_at, sla, escalation_level)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _int_key(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise NotFoundError(f"local tracker: {key!r} is not a case key") from None

"""The embedded tracker's SQLite file: its schema and how stamps and SLA fields are stored in it.

Stamps are fixed-width UTC text with microseconds, so text order is time order in SQL (the watermark
and ``updated_at`` filters compare text)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from casebridge.workflows.cases import SlaFields
from casebridge.workflows.sla import clocks_from_json
from casebridge.workflows.sla import iso as sla_iso

_quote = json.encoder.encode_basestring_ascii  # a str as json.dumps writes it (ensure_ascii)

SCHEMA_VERSION = 1
CHUNK = 500  # bound parameters per IN (...) query (SQLite allows 32,766 since 3.32; old builds 999)
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sla TEXT NOT NULL DEFAULT '{}',
    escalation_level INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cases_updated ON cases (updated_at);
CREATE TABLE IF NOT EXISTS history (
    case_id INTEGER NOT NULL REFERENCES cases(id),
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    state TEXT NOT NULL,
    note TEXT,
    PRIMARY KEY (case_id, seq)
);
CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(id),
    at TEXT NOT NULL,
    markdown TEXT NOT NULL
);
-- a reminder or an escalation asks for one case's comments before it posts: without this, each asking
-- read every comment of every case (issue 16: 2.8 ms a call at 20,000 comments, 0.07 ms at 2,000)
CREATE INDEX IF NOT EXISTS comments_case ON comments (case_id);
CREATE TABLE IF NOT EXISTS liaison (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    case_reference TEXT NOT NULL,
    case_key TEXT,
    title TEXT NOT NULL,
    markdown TEXT NOT NULL,
    level INTEGER NOT NULL,
    clock TEXT NOT NULL,
    posted_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS case_links (
    case_a INTEGER NOT NULL REFERENCES cases(id),
    case_b INTEGER NOT NULL REFERENCES cases(id),  -- case_a < case_b: one row per pair
    note TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (case_a, case_b)
);
CREATE TABLE IF NOT EXISTS links (
    case_id INTEGER NOT NULL REFERENCES cases(id),
    posted_key TEXT NOT NULL,  -- the item's key in whatever liaison target holds it (may be another tracker)
    url TEXT,
    PRIMARY KEY (case_id, posted_key)
);
"""


def iso(moment: datetime) -> str:
    # fixed width UTC with microseconds, so text order == time order in SQL
    m = moment.astimezone(UTC)
    if m.year < 1000:  # what strftime writes for these (the platform's %Y); never a real stamp
        return m.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # the same text as that strftime, a fifth of the cost (every created case and write has a stamp)
    return f"{m.year}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)  # the fixed-width form iso() writes; reads the Z (3.11+), ~10x strptime


def sla_to_json(sla: SlaFields) -> str:
    """``json.dumps(clocks_to_json(sla.clocks), sort_keys=True)``, the same text written directly (an
    intake writes one per case; the level has a column of its own)."""
    parts = []
    for name, f in sorted(sla.clocks.items()):
        due = f'"{sla_iso(f.due_at)}"' if f.due_at else "null"
        warn = f'"{sla_iso(f.warn_at)}"' if f.warn_at else "null"
        parts.append(f'{_quote(name)}: {{"due_at": {due}, "state": {_quote(f.state)}, "warn_at": {warn}}}')
    return "{" + ", ".join(parts) + "}"


def sla_from_row(text: str, level: int) -> SlaFields:
    if text == "{}":  # no clock written yet (every case before its first sync): nothing to parse
        return SlaFields(escalation_level=level)
    return SlaFields(clocks=clocks_from_json(json.loads(text)), escalation_level=level)

"""An embedded tracker of ~100 hostile cases for `casebridge report`, seeded once and copied per test
(tests/test_report_columns_cli.py): every path through the workflow (fulfilled, partial, refused and
redirected, escalated twice, paused), drafts, receipts after ``NOW`` and one exactly at it, receipts
either side of local midnight at a month's end in the report calendar's zone (Asia/Karachi, UTC+5),
``submitted_at`` before, at or after the history's entry into ``submitted`` or only that entry,
extensions granted before intake, hostile providers, agencies and titles, and provider texts the
directory names alike (Facebook, Meta Platforms Ireland Ltd, Meta: one group).

Cases are created through the tracker (``create_cases``); their moves are written with sqlite3 in the
store's layout, so a history needs no workflow transition and may hold anything a changed row holds.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import Case
from casebridge.workflows.sla import iso
from tests.report_samples import write_config

NOW = datetime(2026, 4, 10, 9, 30, tzinfo=UTC)
NOW_ISO = "2026-04-10T09:30:00Z"
COUNT = 96
REPORT_ZONE = ZoneInfo("Asia/Karachi")  # the bundled workflow's report calendar ("agency")

PROVIDERS = [
    "Meta",
    "Facebook",
    "Meta Platforms Ireland Ltd",
    "Google",
    'x"\\ \u2028\x1b[31m',
    "=cmd|' /C calc'!A0",
    "Ünïcode Straße 東京",
    "Telegram",
    "+SUM(A1:A9)",
]
AGENCIES = [None, "FIA CCW", '=HYPERLINK("http://x.example","y")', "Agence «Nord»\u2028\x1b[0m;\\", "FIA Lahore"]
KINDS = [
    ("subscriber", "eu-epo"),
    ("emergency", "eu-epo"),
    ("preservation", "us-2703f"),
    ("content", "mlat"),
    ("subscriber", "voluntary"),
    ("subscriber", "budapest-2ap-7"),
    ("traffic", "eu-epo"),
]
ZONES = ["Asia/Karachi", "UTC", "Europe/Dublin", "America/New_York", "Asia/Kathmandu"]
# moves after receipt: (days after it, state); a refusal's reason is set on the case
PATHS: list[tuple[tuple[float, str], ...]] = [
    (),
    ((1, "acknowledged"), (5, "fulfilled")),
    ((2, "refused"), (3, "redirected_mla")),
    ((4, "partial"),),
    ((12, "escalated"), (13, "acknowledged"), (20, "escalated")),
    ((1, "awaiting_requester"), (3, "acknowledged"), (15.5, "fulfilled")),
    ((1, "refused"),),
    ((2 / 24, "acknowledged"), (1, "partial"), (40, "fulfilled")),
]
REASONS = ["us-legal-process-required", None, "zz-not-in-the-workflow", "no-data"]
# receipts either side of local midnight (Karachi) at the ends of January and February
EDGES = {
    20: datetime(2026, 1, 31, 18, 59, 59, 999_999, tzinfo=UTC),  # 31 Jan 23:59:59.999999 local
    21: datetime(2026, 1, 31, 19, 0, tzinfo=UTC),  # 1 Feb 00:00 local
    44: datetime(2026, 2, 28, 18, 59, 59, 999_999, tzinfo=UTC),  # 28 Feb 23:59:59.999999 local
    45: datetime(2026, 2, 28, 19, 0, tzinfo=UTC),  # 1 Mar 00:00 local
    46: datetime(2026, 3, 31, 19, 0, tzinfo=UTC),  # 1 Apr 00:00 local
    60: NOW,  # received at the report's very moment: counted
}


@dataclass(frozen=True)
class Spec:
    """One seeded case: ``received`` None for a draft (never sent); ``submitted_at`` False when only the
    history says when it was sent."""

    index: int
    case: Case
    first_state: str
    created: datetime
    received: datetime | None
    moves: tuple[tuple[datetime, str], ...]


def received_at(i: int) -> datetime | None:
    if i % 13 == 5:
        return None  # a draft
    return EDGES.get(i, datetime(2025, 12, 20, 3, 0, 17, tzinfo=UTC) + i * timedelta(hours=31, minutes=13))


def spec(i: int) -> Spec:
    received = received_at(i)
    request_type, basis = KINDS[i % len(KINDS)]
    path = PATHS[i % len(PATHS)]
    with_stamp = received is not None and i % 4 != 3  # else: only the history's entry into submitted
    fields = {
        "reference": f"RC-{i:03d}",
        "title": f'Request {i} "q" \\ \u2028\x1b[1m =1+1 <b>&amp;',
        "provider": PROVIDERS[i % len(PROVIDERS)],
        "request_type": request_type,
        "legal_basis": basis,
        "requesting_agency": AGENCIES[i % len(AGENCIES)],
        "officer": "Insp. A. Khan",
        "timezone": ZONES[i % len(ZONES)],
        "facts": "Threats sent from the account.",
        "submitted_at": received if with_stamp else None,
        "extensions_used": {10: 2, 33: 1}.get(i, 0),
        "refusal_reason": REASONS[i // 8 % len(REASONS)] if any(s == "refused" for _d, s in path) else None,
    }
    case = Case.model_validate(fields)
    if received is None:
        return Spec(i, case, "draft", datetime(2026, 1, 5, tzinfo=UTC) + timedelta(hours=i), None, ())
    moves = tuple((received + timedelta(days=d), state) for d, state in path)
    approved = received - timedelta(hours=30)
    if i % 4 == 1:  # submitted_at before the history's entry into submitted: submitted_at counts
        return Spec(i, case, "approved", approved, received, ((received + timedelta(hours=6), "submitted"), *moves))
    if i % 4 == 2:  # ... and after it
        return Spec(i, case, "submitted", received - timedelta(days=2), received, moves)
    if with_stamp:
        return Spec(i, case, "submitted", received, received, moves)
    return Spec(i, case, "approved", approved, received, ((received, "submitted"), *moves))


SPECS = [spec(i) for i in range(COUNT)]


def seed(folder: Path, specs: list[Spec] = SPECS) -> Path:
    """The cases of ``specs`` in a new embedded tracker in ``folder`` (with its casebridge.toml)."""
    path = write_config(folder)
    tracker = LocalConnector(LocalConfig(path=str(path)), load_workflow())
    made = tracker.create_cases(
        [s.case for s in specs],
        states={s.case.reference: s.first_state for s in specs},
        at={s.case.reference: s.created for s in specs},
    )
    keys = {t.case.reference: int(t.key) for t in made}
    tracker.close()
    db = sqlite3.connect(path)
    with db:
        for s in specs:
            for when, state in s.moves:
                move(db, keys[s.case.reference], state, when)
    db.close()
    return path


def move(db: sqlite3.Connection, case_id: int, state: str, when: datetime) -> None:
    """A history entry appended to case ``case_id`` (its state follows), in the store's layout."""
    (seq,) = db.execute("SELECT MAX(seq) FROM history WHERE case_id = ?", (case_id,)).fetchone()
    db.execute(
        "INSERT INTO history (case_id, seq, at, state) VALUES (?, ?, ?, ?)", (case_id, seq + 1, iso(when), state)
    )
    db.execute("UPDATE cases SET state = ? WHERE id = ?", (state, case_id))


def received_by_local_day(first: str | None = None, last: str | None = None) -> list[str]:
    """References of the cases received by ``NOW`` whose local date (the report zone) is in the range."""
    out = []
    for s in SPECS:
        if s.received is None or s.received > NOW:
            continue
        day = s.received.astimezone(REPORT_ZONE).date().isoformat()
        if (first is None or day >= first) and (last is None or day <= last):
            out.append(s.case.reference)
    return out

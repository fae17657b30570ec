"""Counting what a killed run may leave behind, against the tracker's and the target's own records.

Used by the kill -9 harnesses (tests/test_kill_gaps.py, tests/test_mail_faults.py): after one rerun,
the audit log and the tracker must agree.

- escalations: every key the target holds has exactly one ``escalation.posted`` record (a resend adds
  one marked ``resent``) and one ``escalation.handled`` record; its case is linked to the posted item,
  carries exactly one comment with the escalation's marker, and stands in its expected state;
- intake: every case in the tracker has exactly one ``intake.create`` record, every SLA write of intake
  (ground truth: the write-log trigger of tests/test_sync_support.py) one ``intake.set_fields`` record;
- no pending intent is left and the chain verifies.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from casebridge.app.escalate_followup import escalation_marker
from casebridge.app.intake_stream import INTAKE_BATCH
from casebridge.connectors.email import SENT
from casebridge.connectors.local import LocalConnector
from casebridge.state.audit import AuditLog
from casebridge.workflows.intake import CREATE, SET_FIELDS


@dataclass
class Gaps:
    audit_gaps: list[str] = field(default_factory=list)  # a write of the tracker/target without its record
    duplicates: list[str] = field(default_factory=list)  # a record, comment or item twice
    missing_links: list[str] = field(default_factory=list)
    missing_comments: list[str] = field(default_factory=list)
    wrong_states: list[str] = field(default_factory=list)
    pending: int = 0
    chain_ok: bool = True

    @property
    def count(self) -> int:
        lists = (self.audit_gaps, self.duplicates, self.missing_links, self.missing_comments, self.wrong_states)
        return sum(len(x) for x in lists) + self.pending + (not self.chain_ok)

    def merge(self, other: Gaps, label: str) -> None:
        for name in ("audit_gaps", "duplicates", "missing_links", "missing_comments", "wrong_states"):
            getattr(self, name).extend(f"{label}: {x}" for x in getattr(other, name))
        self.pending += other.pending
        self.chain_ok = self.chain_ok and other.chain_ok


def _records(audit_path: Path) -> tuple[list[dict], int, bool]:
    audit = AuditLog(audit_path)
    try:
        return list(audit.records()), len(audit.pending()), audit.verify().ok
    finally:
        audit.close()


def escalation_gaps(
    tracker: LocalConnector, audit_path: Path, held: Iterable[tuple[str, str]], states: dict[str, str]
) -> Gaps:
    """``held``: (dedupe key, posted item key) of every item the target holds; ``states``: the state each
    escalated case (by reference) must stand in."""
    out = Gaps()
    records, out.pending, out.chain_ok = _records(audit_path)
    posted = Counter(r["data"]["dedupe_key"] for r in records if r["kind"] == "escalation.posted")
    # a resend (an earlier send never confirmed) adds a record marked resent: not a duplicate
    first_sends = Counter(
        r["data"]["dedupe_key"] for r in records if r["kind"] == "escalation.posted" and not r["data"].get("resent")
    )
    handled = Counter(r["data"]["dedupe_key"] for r in records if r["kind"] == "escalation.handled")
    for dedupe_key, item_key in held:
        reference = dedupe_key.split("/")[0]
        case = tracker.find_case(reference)
        for name, counter in (("escalation.posted", posted), ("escalation.handled", handled)):
            if counter[dedupe_key] == 0:
                out.audit_gaps.append(f"{dedupe_key}: no {name} record")
        for name, counter in (("escalation.posted", first_sends), ("escalation.handled", handled)):
            if counter[dedupe_key] > 1:
                out.duplicates.append(f"{dedupe_key}: {counter[dedupe_key]} {name} records")
        if case is None:
            out.missing_links.append(f"{dedupe_key}: no case {reference}")
            continue
        if item_key not in {k for k, _ in tracker.links(case.key)}:
            out.missing_links.append(f"{dedupe_key}: case not linked to {item_key}")
        marker = escalation_marker(dedupe_key)
        comments = sum(1 for text in tracker.comments(case.key) if marker in text)
        if comments == 0:
            out.missing_comments.append(dedupe_key)
        elif comments > 1:
            out.duplicates.append(f"{dedupe_key}: {comments} comments")
        if reference in states and case.state != states[reference]:
            out.wrong_states.append(f"{reference}: {case.state}, expected {states[reference]}")
    return out


def intake_gaps(tracker: LocalConnector, audit_path: Path) -> Gaps:
    """Every case created has one creation record (``intake.create``, or an entry of an ``intake.batch``
    record: the embedded tracker's streamed intake); every SLA write one ``intake.set_fields``."""
    out = Gaps()
    records, out.pending, out.chain_ok = _records(audit_path)
    created = Counter(r["data"]["reference"] for r in records if r["kind"] == CREATE)
    created.update(e["reference"] for r in records if r["kind"] == INTAKE_BATCH for e in r["data"]["created"])
    set_fields = Counter(r["data"]["key"] for r in records if r["kind"] == SET_FIELDS)
    for tracked in tracker.list_cases():
        ref = tracked.case.reference
        if created[ref] == 0:
            out.audit_gaps.append(f"{ref}: no {CREATE} record")
        elif created[ref] > 1:
            out.duplicates.append(f"{ref}: {created[ref]} {CREATE} records")
    writes = Counter(
        str(row[0]) for row in tracker.db.execute("SELECT case_id FROM write_log")
    )  # ground truth: the trigger
    for key in set(writes) | set(set_fields):
        if writes[key] > set_fields[key]:
            out.audit_gaps.append(f"case {key}: {writes[key]} SLA writes, {set_fields[key]} {SET_FIELDS} records")
        elif writes[key] < set_fields[key]:
            out.duplicates.append(f"case {key}: {set_fields[key]} {SET_FIELDS} records for {writes[key]} writes")
    return out


def mail_held(sent_record: Path) -> list[tuple[str, str]]:
    """(dedupe key, Message-ID) of every mail the mail target records as sent (confirmed by a 250)."""
    db = sqlite3.connect(sent_record)
    try:
        rows = db.execute("SELECT dedupe_key, message_id FROM sent WHERE status = ?", (SENT,)).fetchall()
    finally:
        db.close()
    return [(str(key), str(message_id)) for key, message_id in rows]


def dump(gaps: Gaps) -> str:
    return json.dumps(gaps.__dict__, default=str)[:2000]

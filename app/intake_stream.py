"""Intake at agency scale: streamed, batched, and all or nothing on a transactional tracker (issue 16).

Rows arrive as the files are parsed and validated (``workflows.intake.iter_intake_file``) and are
handled a batch at a time: one bulk lookup, the actions reported, one bulk create with the SLA fields
in it, updates. Memory holds one batch, not the file. On a ``transactional`` tracker (the embedded
one) every batch runs inside ONE tracker transaction, so a bad row anywhere, an error or a kill
leaves the tracker as it was.

Crash guarantees, in commit order (four commits for the whole intake instead of four per case):

1. the audit log's *pending* table gets one intent per batch (``intake.batch``: the created cases
   with their keys and SLA fields, the updated ones with a digest of what was written), in one audit
   transaction that commits before the tracker does;
2. the tracker commits: this is the moment the intake happened;
3. the state store's seeds commit (a cache: losing them costs only speed);
4. the intents become hash-chained audit records in one transaction (``complete_intents``).

Killed before 2: the tracker holds nothing of this run; the next intake or sync finds the intents'
cases absent and drops them (``recover_intake``). Killed after 2: the next run finds them present and
turns them into records marked ``recovered``. Either way the audit log ends up with exactly one
record for each write that happened and none for one that did not, as with sync's intents.

Trackers that are not transactional (Jira, Redmine) keep ``app.intake``: the files validated whole
first, then one audit record per confirmed write; a killed run is resumed by rerunning it (the
reference is the idempotency key: the rerun creates only what is missing).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from casebridge.app.intake import plan_intake
from casebridge.app.intake_batch_text import batch_text, created_text, fields_text
from casebridge.connectors import Connector
from casebridge.errors import TrackerError
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.workflows.cases import Case, TrackedCase
from casebridge.workflows.intake import FieldsAtCreation, IntakeAction, IntakeRow

log = logging.getLogger(__name__)

BATCH = 2000  # rows per lookup, create and audit intent: bounds memory, amortises the per-call cost
INTAKE_BATCH = "intake.batch"  # audit kind: one record per batch, its created and updated cases
Seed = Callable[[Iterable[TrackedCase]], int]


def batched(items: Iterable[IntakeRow], size: int) -> Iterator[list[IntakeRow]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def digest(case: Case) -> str:
    """What an update wrote, short enough to keep per case: recovery compares it with the tracker."""
    return hashlib.sha256(case.model_dump_json().encode("utf-8")).hexdigest()[:32]


def intake_streamed(
    rows: Iterable[IntakeRow],
    tracker: Connector,
    audit: AuditLog | None,
    store: StateStore | None,
    *,
    now: datetime,
    report: Callable[[list[IntakeAction]], None] = lambda actions: None,
    batch_size: int | None = None,
) -> Counter[str]:
    """Plan and apply ``rows`` a batch at a time; returns the count of each action kind. ``report`` sees
    each batch's actions before they are applied. On a ``transactional`` tracker nothing is committed
    unless every row is valid and every write succeeded. Raises: IntakeError (a bad row), TrackerError."""
    if not tracker.transactional:
        raise TrackerError(f"{tracker.name}: a streamed intake needs a transactional tracker; use apply_intake")
    counts: Counter[str] = Counter()
    seeding: AbstractContextManager[Seed | None] = store.seeding() if store is not None else nullcontext()
    # commits: the intents first (inside), the tracker second (the moment the intake happened), the
    # store's seeds third, the records fourth
    with seeding as seed, tracker.transaction():
        texts = _apply(rows, tracker, now, report, counts, seed, batch_size or BATCH)
        ids = _announce(audit, texts)
    _complete(audit, ids)  # fourth: the intents become records (the anchor is in the store's file)
    return counts


def _announce(audit: AuditLog | None, texts: Iterable[str]) -> list[int]:
    if audit is None:
        for _ in texts:
            pass
        return []
    return audit.begin_intents_text(INTAKE_BATCH, texts)


def _complete(audit: AuditLog | None, ids: list[int]) -> None:
    if audit is not None and ids:
        audit.complete_intents(ids)


def _apply(
    rows: Iterable[IntakeRow],
    tracker: Connector,
    now: datetime,
    report: Callable[[list[IntakeAction]], None],
    counts: Counter[str],
    seed: Seed | None,
    batch_size: int,
) -> Iterator[str]:
    """Per batch: plan, report, create, update; yields the batch's audit payload (canonical JSON text:
    ``intake_batch_text``) when it wrote anything."""
    for chunk in batched(rows, batch_size):
        actions = plan_intake(chunk, tracker)
        report(actions)
        counts.update(a.kind for a in actions)
        created = _create(tracker, [a for a in actions if a.kind == "create"], now)
        updated = []
        for action in actions:
            if action.kind == "update" and action.existing is not None:
                tracked = tracker.update_case(action.existing.key, action.row.case)
                updated.append(
                    {"reference": tracked.case.reference, "key": tracked.key, "digest": digest(tracked.case)}
                )
        if seed is not None and not tracker.bulk_history:  # one query reads every history: no need
            seed([t for t, _ in created if t.history is not None])
        if created or updated:
            yield batch_text(now.isoformat(), [entry for _, entry in created], updated)


def _create(tracker: Connector, creates: list[IntakeAction], now: datetime) -> list[tuple[TrackedCase, str]]:
    """Bulk create with the SLA fields where the tracker takes them; (tracked, audit entry as canonical
    JSON text) each."""
    if not creates:
        return []
    wf = tracker.workflow
    by_ref = {a.row.case.reference: a.row for a in creates}
    if not tracker.back_dates and any(row.state_since is not None for row in by_ref.values()):
        log.warning("%s cannot back-date: state_since ignored for new cases", tracker.name)
    stamps = None if tracker.back_dates else _wall_clock  # a tracker that stamps creations with its own time
    sla = FieldsAtCreation(by_ref, wf, now, stamps) if tracker.creates_with_sla else None
    states = {ref: row.state or wf.initial for ref, row in by_ref.items()}
    at = {ref: row.state_since for ref, row in by_ref.items()}
    out = []
    for tracked in tracker.create_cases([row.case for row in by_ref.values()], states=states, at=at, sla=sla):
        ref = tracked.case.reference
        fields = fields_text(sla[ref]) if sla is not None else None
        out.append((tracked, created_text(ref, tracked.key, tracked.state, fields)))
    return out


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def recover_intake(tracker: Connector, audit: AuditLog) -> tuple[int, int]:
    """Resolve the intake intents a killed run left: records (marked ``recovered``) for the writes the
    tracker holds, nothing for the rest. Returns (completed, dropped). Raises: TrackerError."""
    completed = dropped = 0
    for intent_id, kind, data in audit.pending():
        if kind != INTAKE_BATCH:
            continue
        created, updated = data.get("created", []), data.get("updated", [])
        found = tracker.find_cases([e["reference"] for e in [*created, *updated]])
        landed_created = [e for e in created if _same_key(found.get(e["reference"]), e)]
        landed_updated = [
            e for e in updated if _same_key(t := found.get(e["reference"]), e) and t and digest(t.case) == e["digest"]
        ]
        if landed_created or landed_updated:
            extra = {"created": landed_created, "updated": landed_updated, "recovered": True}
            audit.complete_intents([intent_id], extra)
            completed += 1
        else:
            audit.drop_intent(intent_id)
            dropped += 1
    if completed or dropped:
        log.info("intake: recovered %d interrupted batches, dropped %d never committed", completed, dropped)
    return completed, dropped


def _same_key(tracked: TrackedCase | None, entry: dict[str, Any]) -> bool:
    return tracked is not None and tracked.key == entry["key"]

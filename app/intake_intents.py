"""Exactly one ``intake.create`` (and ``intake.set_fields``) record per write, even when intake is killed.

Each creation is announced (a pending intent in the audit log's file, one transaction for the batch)
before the tracker is asked; when the tracker confirmed it, the intent becomes its ``intake.create``
record in one transaction. A process killed between the tracker's write and that transaction leaves
the intent: the next intake (they share the run lock with sync and escalate) asks the tracker for those
references first; a case that exists gets its record (marked ``recovered``), an intent without a case
is dropped (that row is simply created again). The SLA write that follows a creation on trackers that
cannot create with fields is announced the same way; on the next run the tracker holding the fields
completes its record, otherwise the intent is dropped (the next sync writes them, with its own record).
"""

from __future__ import annotations

import logging
from typing import Any

from casebridge.app.intents import holds
from casebridge.connectors import Connector
from casebridge.errors import TrackerError
from casebridge.workflows.intake import CREATE, SET_FIELDS
from casebridge.workflows.sla import sla_from_json

log = logging.getLogger(__name__)


def announce_creates(audit: Any, references: list[str]) -> dict[str, int]:
    """Intent ids by reference (none without an audit log or without creations)."""
    if audit is None or not references:
        return {}
    ids = audit.begin_intents(CREATE, [{"reference": ref} for ref in references])
    return dict(zip(references, ids, strict=True))


def announce(audit: Any, kind: str, data: dict[str, Any]) -> int | None:
    return None if audit is None else int(audit.begin_intent(kind, data))


def forget(audit: Any, intent_id: int | None) -> None:
    """The write was refused: its intent goes (nothing happened)."""
    if audit is not None and intent_id is not None:
        audit.drop_intent(intent_id)


def record_create(audit: Any, intent_id: int | None, data: dict[str, Any]) -> None:
    record(audit, intent_id, CREATE, data)


def record(audit: Any, intent_id: int | None, kind: str, data: dict[str, Any]) -> None:
    if audit is None:
        return
    if intent_id is None:
        audit.append(kind, data)
    else:
        audit.complete_intent(intent_id, data)


def recover_creates(tracker: Connector, audit: Any) -> int:
    """Resolve the intents (creations and their SLA writes) a killed intake left; returns how many
    records were completed. A tracker that cannot answer leaves them for the next run (logged)."""
    pending = [(intent_id, kind, data) for intent_id, kind, data in audit.pending() if kind in (CREATE, SET_FIELDS)]
    if not pending:
        return 0
    try:
        found = tracker.find_cases(list(dict.fromkeys(data["reference"] for _, _, data in pending)))
    except TrackerError as exc:
        log.warning("cannot check %d interrupted intake writes yet: %s", len(pending), exc)
        return 0
    completed = 0
    for intent_id, kind, data in pending:
        tracked = found.get(data["reference"])
        if kind == CREATE and tracked is not None:
            audit.complete_intent(intent_id, {"key": tracked.key, "recovered": True})
        elif kind == SET_FIELDS and tracked is not None and holds(tracked, sla_from_json(data["fields"])):
            audit.complete_intent(intent_id, {"recovered": True})
        else:
            audit.drop_intent(intent_id)
            continue
        completed += 1
    if completed:
        log.info("intake: recorded %d writes an interrupted run left unrecorded", completed)
    return completed

"""Exactly one audit record per SLA write, even across crashes and lost answers.

A write is announced (a pending intent in the audit log's file) before it is sent. When the tracker
confirms it, the intent becomes its audit record in one transaction. If the process dies between the
tracker write and that transaction, or the answer was lost, the next run asks the tracker: fields as
intended -> the write happened, append its record (marked ``recovered``); otherwise drop the intent and
let the plan write it again. Retrying a write never adds a record: it is the same intent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from casebridge.connectors import Connector
from casebridge.errors import TrackerError
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.workflows.cases import SlaFields, TrackedCase
from casebridge.workflows.sla import sla_from_json, sla_to_json

log = logging.getLogger(__name__)

SET_FIELDS = "sync.set_fields"


def intent_data(key: str, reference: str, sla: SlaFields, now: datetime) -> dict[str, Any]:
    return {"key": key, "reference": reference, "fields": sla_to_json(sla), "evaluated_at": now.isoformat()}


def merged(held: SlaFields, written: SlaFields) -> SlaFields:
    """What the tracker holds after writing ``written`` (only the changed clocks) over ``held``."""
    return SlaFields(clocks={**held.clocks, **written.clocks}, escalation_level=written.escalation_level)


def holds(tracked: TrackedCase, written: SlaFields) -> bool:
    """Does the tracker hold every field of ``written``?"""
    return tracked.sla.escalation_level == written.escalation_level and all(
        tracked.sla.clocks.get(name) == fields for name, fields in written.clocks.items()
    )


@dataclass
class Recovery:
    completed: int = 0  # writes that had happened: their audit record was appended now
    dropped: int = 0  # writes that had not happened: the plan redoes them
    unresolved_keys: set[str] = field(default_factory=set)  # tracker could not tell: no write to them now


def recover(
    tracker: Connector, audit: AuditLog, store: StateStore, call: Callable[[Callable[[], Any]], Any]
) -> Recovery:
    """Resolve the intents a crashed or failed run left behind (a killed intake's too)."""
    from casebridge.app.intake_stream import recover_intake  # app.intake imports this module

    result = Recovery()
    try:
        call(lambda: recover_intake(tracker, audit))
    except TrackerError as exc:
        log.warning("cannot check an interrupted intake yet: %s", exc)
    for intent_id, kind, data in audit.pending():
        if kind != SET_FIELDS:
            continue
        written = sla_from_json(data["fields"])
        try:
            tracked = call(partial(tracker.find_case, data["reference"]))
        except TrackerError as exc:
            log.warning("%s: cannot check an interrupted write yet: %s", data["reference"], exc)
            result.unresolved_keys.add(data["key"])
            continue
        if tracked is not None and tracked.key == data["key"] and holds(tracked, written):
            audit.complete_intent(intent_id, {"recovered": True})
            # the history may have changed since; let the next read decide (updated_at unknown)
            store.record_write(tracked.key, tracked.sla, None)
            result.completed += 1
        else:
            audit.drop_intent(intent_id)
            result.dropped += 1
    if result.completed or result.dropped:
        log.info("recovered %d interrupted writes, dropped %d never applied", result.completed, result.dropped)
    return result

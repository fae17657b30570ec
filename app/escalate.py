"""Posting planned escalations exactly once (the plan is the domain's: ``casebridge.workflows.escalation``).

``apply_escalations`` posts the plan to a liaison connector: it asks the target for the dedupe keys
first (``find_escalations``: one search per page of keys), so a rerun, a crash between posting and
recording, or a lost state file never posts twice; then it links the case to the posted item and moves
it to the workflow's escalated state with a comment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from casebridge.app.escalate_followup import (
    POSTED,
    AuditLog,
    complete,
    finish_item,
    follow_up,
    needs_completion,
    posted_record,
    record_handled,
)
from casebridge.connectors import Connector
from casebridge.errors import CasebridgeError, redact
from casebridge.workflows.cases import PostedEscalation
from casebridge.workflows.escalation import PlannedEscalation

log = logging.getLogger(__name__)
ALREADY_HANDLED = "already posted; case already handled"

LOOKUP_PAGE = 100  # planned items whose keys are looked up on the target in one bulk call


@dataclass(frozen=True)
class EscalationOutcome:
    dedupe_key: str
    reference: str
    status: str  # "posted" | "resent" (an unconfirmed earlier send, sent again) | "already_posted" | "failed"
    posted: PostedEscalation | None = None
    case_state: str | None = None  # the case's state afterwards
    error: str | None = None  # one line; set on failure, or when a follow-up step failed after posting
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "failed" and self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "dedupe_key": self.dedupe_key,
            "reference": self.reference,
            "status": self.status,
            "posted_key": self.posted.key if self.posted else None,
            "url": self.posted.url if self.posted else None,
            "case_state": self.case_state,
            "error": self.error,
            "notes": list(self.notes),
        }


def apply_escalations(
    plan: Iterable[PlannedEscalation],
    liaison: Connector,
    cases: Connector,
    audit: AuditLog | None = None,
    *,
    now: datetime,
) -> list[EscalationOutcome]:
    """Post each planned escalation exactly once; one failing case never stops the others. The target is
    asked which keys it holds one page of ``LOOKUP_PAGE`` items at a time, just before they are posted
    (one search per page, not per key); a page whose lookup fails fails its items only."""
    states: dict[str, str] = {}
    outcomes = []
    items = list(plan)
    for start in range(0, len(items), LOOKUP_PAGE):
        page = items[start : start + LOOKUP_PAGE]
        try:
            held, problem = liaison.find_escalations(item.dedupe_key for item in page), None
        except CasebridgeError as exc:
            held, problem = {}, redact(str(exc))
        except Exception as exc:  # a connector bug must not stop the other pages
            log.exception("looking up %d escalation keys failed", len(page))
            held, problem = {}, redact(f"{type(exc).__name__}: {exc}")
        for item in page:
            states.setdefault(item.case_key, item.case_state)
            outcomes.append(_guarded(item, held.get(item.dedupe_key), problem, liaison, cases, audit, states, now))
    return outcomes


def _guarded(
    item: PlannedEscalation,
    held: PostedEscalation | None,
    problem: str | None,
    liaison: Connector,
    cases: Connector,
    audit: AuditLog | None,
    states: dict[str, str],
    now: datetime,
) -> EscalationOutcome:
    if problem is not None:
        return _failed(item, problem, audit, now)
    try:
        return _apply_one(item, held, liaison, cases, audit, states, now)
    except CasebridgeError as exc:
        return _failed(item, redact(str(exc)), audit, now)
    except Exception as exc:  # a connector bug must not stop the other cases
        log.exception("escalation %s failed", item.dedupe_key)
        return _failed(item, redact(f"{type(exc).__name__}: {exc}"), audit, now)


def find_posted(plan: Iterable[PlannedEscalation], liaison: Connector) -> dict[str, PostedEscalation]:
    """Read-only: the planned items the target already holds, by dedupe key, so a dry run can print
    "already posted" instead of "would post" (the target's own record decides, never the audit log).
    Raises TrackerError subclasses."""
    return liaison.find_escalations(item.dedupe_key for item in plan)


def _failed(item: PlannedEscalation, error: str, audit: AuditLog | None, now: datetime) -> EscalationOutcome:
    log.error("escalation %s not posted: %s", item.dedupe_key, error)
    if audit is not None:
        audit.append("escalation.failed", {"dedupe_key": item.dedupe_key, "error": error, "at": now.isoformat()})
    return EscalationOutcome(item.dedupe_key, item.reference, "failed", error=error)


def _apply_one(
    item: PlannedEscalation,
    posted: PostedEscalation | None,
    liaison: Connector,
    cases: Connector,
    audit: AuditLog | None,
    states: dict[str, str],
    now: datetime,
) -> EscalationOutcome:
    fresh = posted is None
    if posted is None:
        posted = liaison.post_escalation(item.escalation())
        log.info("posted escalation %s as %s", item.dedupe_key, posted.key)
        if audit is not None:
            audit.append(POSTED, posted_record(item, posted, liaison.name))
        notes, errors = follow_up(item, posted, cases, states, now=now)
    elif needs_completion(item, audit):
        notes, errors = complete(item, posted, cases, states, audit, liaison.name, now=now)
        if not notes and not errors:  # the tracker was asked and nothing was missing
            notes = [ALREADY_HANDLED]
    else:
        return EscalationOutcome(
            item.dedupe_key, item.reference, "already_posted", posted, states[item.case_key], notes=(ALREADY_HANDLED,)
        )
    errors += finish_item(item, posted, liaison)
    if not errors:
        record_handled(audit, item, states[item.case_key], recovered=not fresh)
    if posted.resent:
        notes.insert(0, f"resent: an earlier send was never confirmed; the NCB may receive {posted.key} twice")
    return EscalationOutcome(
        item.dedupe_key,
        item.reference,
        ("resent" if posted.resent else "posted") if fresh else "already_posted",
        posted,
        states[item.case_key],
        # posted, but the case side failed: reported (exit 1), never re-posted; the next run completes it
        error=f"posted, but {'; '.join(errors)}" if errors else None,
        notes=tuple(notes),
    )

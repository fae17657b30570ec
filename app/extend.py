"""Recording an extension (``casebridge extend``): the plan is the domain's (``workflows.extension``);
this writes it to the case in its tracker (the case data field on Jira and Redmine, so ``setup`` and
``check`` need nothing new), comments on the case and appends the audit record.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from casebridge.connectors import Connector
from casebridge.errors import TrackerError, UserError, redact
from casebridge.state.audit import AuditLog
from casebridge.workflows.extension import ExtensionPlan, plan_extension
from casebridge.workflows.render import md_paragraphs, md_text

log = logging.getLogger(__name__)

EXTENSION_RECORDED = "extension.recorded"


def plan_for(tracker: Connector, reference: str, clock: str, at: datetime, note: str | None) -> ExtensionPlan:
    """Raises UserError (no such case, or ExtensionRefused) and TrackerError subclasses."""
    tracked = tracker.find_case(reference) if tracker.exists() else None
    if tracked is None:
        raise UserError(f"no case with reference {reference} in the tracker")
    history = tracked.history if tracked.history is not None else tracker.read_history(tracked.key)
    return plan_extension(tracked.case, history, tracker.workflow, clock, at, note)


def record_extension(tracker: Connector, plan: ExtensionPlan, audit: AuditLog | None, *, now: datetime) -> list[str]:
    """Write the extension, then comment on the case. Returns warnings (the comment failed: the
    extension itself is recorded). Raises TrackerError subclasses when the case could not be written."""
    tracked = tracker.find_case(plan.reference)
    if tracked is None:
        raise UserError(f"no case with reference {plan.reference} in the tracker")
    tracker.update_case(tracked.key, plan.case)
    if audit is not None:
        audit.append(
            EXTENSION_RECORDED,
            {
                "reference": plan.reference,
                "key": tracked.key,
                "clock": plan.clock,
                "number": plan.number,
                "allowed": plan.allowed,
                "by": plan.by,
                "source": plan.source,
                "at": plan.extension.at.isoformat(),
                "old_due": plan.old_due.isoformat() if plan.old_due else None,
                "new_due": plan.new_due.isoformat() if plan.new_due else None,
                "counting": plan.counting,
                "recorded_at": now.isoformat(),
            },
        )
    try:
        tracker.comment(tracked.key, comment_text(plan))
    except TrackerError as exc:
        log.warning("%s: extension recorded, comment failed: %s", plan.reference, redact(str(exc)))
        return [f"extension recorded, but the comment failed: {redact(str(exc))}"]
    return []


def describe(plan: ExtensionPlan) -> str:
    zone = ZoneInfo(plan.case.timezone)
    old = plan.old_due.astimezone(zone).isoformat() if plan.old_due else "-"
    new = plan.new_due.astimezone(zone).isoformat() if plan.new_due else "-"
    source = f" under {plan.source}" if plan.source else ""
    counted = f" ({plan.statement})" if plan.counting != "elapsed" and plan.statement else ""
    return (
        f"{plan.reference}: {plan.clock} extended by {plan.by}{source} ({plan.number} of {plan.allowed}): "
        f"due {old} -> {new}{counted}"
    )


def comment_text(plan: ExtensionPlan) -> str:
    text = md_text(describe(plan)) + f". Renewed request sent {md_text(plan.extension.at.isoformat())}."
    if plan.extension.note:
        text += "\n\n" + "\n\n".join(md_paragraphs(plan.extension.note))
    return text

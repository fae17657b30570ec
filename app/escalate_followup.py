"""The case side of an escalation (link, comment, move) and completing it after a crash.

A post is followed by three steps on the case: link it to the posted item, move it to the escalated
state with a comment (or only comment when it cannot move), then an ``escalation.handled`` audit record.
A process killed anywhere in between (``kill -9``) leaves the target holding the item and the case or
the audit log behind. The next run finds the item on the target ("already posted": the target's own
record of the key decides) and, when the audit log does not say the case side was finished, completes
what is missing, asking the tracker each time instead of trusting the log:

- the target's own finishing step (``Connector.complete_escalation``, e.g. Jira's dossier attachment),
  idempotent, after every post and again until it succeeded;

- no ``escalation.posted`` record -> appended now, marked ``recovered``;
- the link -> made again (every connector's ``link_escalation`` is idempotent);
- the comment -> posted only when no comment on the case carries the escalation's marker (``CBE`` and a
  hash of the dedupe key, letters and digits, so it survives every tracker's markup): comments are not
  idempotent;
- the move -> made when the case is not yet in the escalated state and the workflow allows it;
- then ``escalation.handled`` (``recovered``), so later runs cost no tracker request for it.

``escalation.posted`` records written before ``escalation.handled`` existed carry no
``follow_up_recorded`` flag; their case side ran then and is not redone (their comments have no marker).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from casebridge.connectors import Connector
from casebridge.errors import CasebridgeError, redact
from casebridge.workflows.cases import PostedEscalation
from casebridge.workflows.escalation import PlannedEscalation
from casebridge.workflows.render import md_link, md_text

log = logging.getLogger(__name__)

POSTED = "escalation.posted"
HANDLED = "escalation.handled"


class AuditLog(Protocol):
    """The audit log as escalation uses it: a record of what was done. Whether a key was already
    posted is the target's own record's answer, never the log's alone (a forged or replayed record
    must not suppress a real escalation); the log only tells which completed steps need no re-check."""

    def append(self, kind: str, data: dict[str, Any]) -> Any: ...

    def find_posted(self, dedupe_key: str) -> dict[str, Any] | None: ...

    def find_handled(self, dedupe_key: str) -> dict[str, Any] | None: ...


def escalation_marker(dedupe_key: str) -> str:
    """``CBE`` and 20 hex digits of the key's SHA-256: what a case's comments are searched for."""
    return "CBE" + hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:20].upper()


def needs_completion(item: PlannedEscalation, audit: AuditLog | None) -> bool:
    """For an item the target already holds: may something of it be missing (an audit record, the
    link, the comment, the move)? Answered from the audit log alone, so a rerun with nothing to
    complete costs no tracker request; without a log, always (the tracker is asked)."""
    if audit is None:
        return True
    posted = audit.find_posted(item.dedupe_key)
    if posted is None:
        return True
    if not posted.get("follow_up_recorded"):
        return False  # written before `escalation.handled` existed: its case side ran then
    return audit.find_handled(item.dedupe_key) is None


def posted_record(item: PlannedEscalation, posted: PostedEscalation, target: str) -> dict[str, Any]:
    return {
        "dedupe_key": item.dedupe_key,
        "reference": item.reference,
        "case_key": item.case_key,
        "clock": item.clock,
        "level": item.level,
        "repeat": item.repeat,
        "key": posted.key,
        "url": posted.url,
        "posted_at": posted.posted_at.isoformat(),
        "target": target,
        "resent": posted.resent,
        "follow_up_recorded": True,  # an `escalation.handled` record follows once the case side is done
    }


def record_handled(audit: AuditLog | None, item: PlannedEscalation, state: str, *, recovered: bool) -> None:
    if audit is not None:
        data = {"dedupe_key": item.dedupe_key, "reference": item.reference, "case_key": item.case_key}
        audit.append(HANDLED, {**data, "case_state": state, **({"recovered": True} if recovered else {})})


def follow_up(
    item: PlannedEscalation, posted: PostedEscalation, cases: Connector, states: dict[str, str], *, now: datetime
) -> tuple[list[str], list[str]]:
    """After a fresh post: link the case, then move it to the escalated state with a comment (or only
    comment when it cannot move). Each step is tried even if the one before failed. (notes, errors)."""
    return _steps(item, posted, cases, states, now=now, commented=False)


def complete(
    item: PlannedEscalation,
    posted: PostedEscalation,
    cases: Connector,
    states: dict[str, str],
    audit: AuditLog | None,
    target: str,
    *,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """An item the target already holds and ``needs_completion``: complete what a crashed run left
    undone, asking the tracker. (notes, errors)."""
    notes: list[str] = []
    if audit is not None and audit.find_posted(item.dedupe_key) is None:
        audit.append(POSTED, {**posted_record(item, posted, target), "recovered": True})
        notes.append("its audit record was missing (an interrupted run) and is now recorded")
    try:
        commented = cases.has_comment_marker(item.case_key, escalation_marker(item.dedupe_key))
    except CasebridgeError as exc:  # unknown: post nothing that may be a duplicate; the next run retries
        return notes, [f"reading the case's comments failed: {redact(str(exc))}"]
    step_notes, errors = _steps(item, posted, cases, states, now=now, commented=commented)
    if not commented and not errors:
        notes.append("the case's comment was missing and is now posted")
    return notes + step_notes, errors


def _steps(
    item: PlannedEscalation,
    posted: PostedEscalation,
    cases: Connector,
    states: dict[str, str],
    *,
    now: datetime,
    commented: bool,
) -> tuple[list[str], list[str]]:
    workflow, current = cases.workflow, states[item.case_key]
    target = workflow.escalated_state or ""
    needs_move = bool(target) and current != target
    can_move = needs_move and workflow.can_transition(current, target)
    notes: list[str] = []
    errors = _attempt(lambda: cases.link_escalation(item.case_key, posted), "linking the case")
    comment = None if commented else escalation_comment(item, posted)
    if can_move:
        failed = _attempt(lambda: cases.transition(item.case_key, target, note=comment, at=now), "moving the case")
        if not failed:
            states[item.case_key] = target
            notes.append(f"case moved to {target}")
        errors += failed
    else:
        if comment is not None:
            errors += _attempt(lambda: cases.comment(item.case_key, comment), "commenting on the case")
        if needs_move:
            notes.append(f"case left in {current}: the workflow has no transition {current} -> {target}")
    return notes, errors


def finish_item(item: PlannedEscalation, posted: PostedEscalation, liaison: Connector) -> list[str]:
    """The target's own finishing step (Jira: attach the whole dossier when it was cut); errors."""
    return _attempt(lambda: liaison.complete_escalation(item.escalation(), posted), "finishing the posted item")


def _attempt(step: Callable[[], None], what: str) -> list[str]:
    try:
        step()
    except CasebridgeError as exc:
        log.warning("%s failed: %s", what, redact(str(exc)))
        return [f"{what} failed: {redact(str(exc))}"]
    return []


def escalation_comment(item: PlannedEscalation, posted: PostedEscalation) -> str:
    label = posted.key if not posted.url or posted.url.lower().startswith(("http://", "https://")) else posted.url
    where = md_link(md_text(label), posted.url)
    repeat = f", repeat {item.repeat}" if item.repeat else ""
    return (
        f"Escalated to the INTERPOL NCB liaison queue: {where} (level {item.level}: "
        f"{md_text(item.level_name)}{repeat}). Dedupe key: {md_text(item.dedupe_key)} "
        f"({escalation_marker(item.dedupe_key)})."
    )

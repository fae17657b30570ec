"""Posting planned reminders exactly once (the plan is the domain's: ``casebridge.workflows.reminders``).

A reminder is a comment on the case in its own tracker, and comments are not idempotent. So each carries
its marker (``CBR`` + a hash of the dedupe key ``REF/clock[/C2][/E1]/T3d``) and, as with escalations,
the tracker is asked for the marker before every post: a rerun, a crash between the comment and its
audit record, or a lost state file never posts twice.

Audit: the post is announced as an intent (``reminder.post``) before it is sent and becomes its audit
record once the tracker confirmed it. An intent a crash left behind is resolved at the next run by
looking for the marker: there -> the record is appended (``recovered``); absent -> dropped, and the plan
posts it again. A reminder whose intent cannot be resolved yet (tracker unreachable) is not posted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from casebridge.connectors import Connector
from casebridge.errors import CasebridgeError, NotFoundError, TrackerError, redact
from casebridge.state.audit import AuditLog
from casebridge.workflows.reminders import PlannedReminder

log = logging.getLogger(__name__)

REMINDER_POST = "reminder.post"

Call = Callable[[Callable[[], Any]], Any]


def _direct(fn: Callable[[], Any]) -> Any:
    return fn()


@dataclass(frozen=True)
class ReminderOutcome:
    dedupe_key: str
    reference: str
    status: str  # "posted" | "already_posted" | "failed" | "unresolved" (an earlier post not confirmed yet)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("posted", "already_posted") and self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "dedupe_key": self.dedupe_key,
            "reference": self.reference,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class ReminderRecovery:
    completed: int = 0
    dropped: int = 0
    unresolved: set[str] = field(default_factory=set)  # dedupe keys: not posted this run


def recover_reminders(tracker: Connector, audit: AuditLog, call: Call = _direct) -> ReminderRecovery:
    """Resolve the reminder intents a crashed or failed run left behind."""
    result = ReminderRecovery()
    for intent_id, kind, data in audit.pending():
        if kind != REMINDER_POST:
            continue
        try:
            landed = call(partial(tracker.has_comment_marker, data["case_key"], data["marker"]))
        except NotFoundError:
            landed = False  # the case is gone from the tracker: nothing landed there to record
        except TrackerError as exc:
            log.warning("%s: cannot check an interrupted reminder yet: %s", data["dedupe_key"], redact(str(exc)))
            result.unresolved.add(data["dedupe_key"])
            continue
        if landed:
            audit.complete_intent(intent_id, {"recovered": True})
            result.completed += 1
        else:
            audit.drop_intent(intent_id)
            result.dropped += 1
    return result


def apply_reminders(
    plan: Iterable[PlannedReminder],
    tracker: Connector,
    audit: AuditLog | None,
    *,
    now: datetime,
    call: Call = _direct,
    skip: set[str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[ReminderOutcome]:
    """Post each planned reminder once; one failing case never stops the others. ``skip``: dedupe keys
    whose earlier post is unresolved."""
    outcomes = []
    for item in plan:
        if should_stop():
            break
        if skip and item.dedupe_key in skip:
            unconfirmed = "an earlier post is not confirmed yet (tracker unreachable); retried next run"
            outcomes.append(ReminderOutcome(item.dedupe_key, item.reference, "unresolved", unconfirmed))
            continue
        try:
            outcome = _apply_one(item, tracker, audit, now, call)
        except CasebridgeError as exc:
            outcome = ReminderOutcome(item.dedupe_key, item.reference, "failed", redact(str(exc)))
        except Exception as exc:  # a connector bug must not stop the other cases
            log.exception("reminder %s failed", item.dedupe_key)
            outcome = ReminderOutcome(item.dedupe_key, item.reference, "failed", redact(f"{type(exc).__name__}: {exc}"))
        if outcome.status == "failed":
            log.warning("reminder %s not posted: %s", item.dedupe_key, outcome.error)
        outcomes.append(outcome)
    return outcomes


def _apply_one(
    item: PlannedReminder, tracker: Connector, audit: AuditLog | None, now: datetime, call: Call
) -> ReminderOutcome:
    if call(lambda: tracker.has_comment_marker(item.case_key, item.marker)):
        return ReminderOutcome(item.dedupe_key, item.reference, "already_posted")
    intent = None if audit is None else audit.begin_intent(REMINDER_POST, _audit_data(item, tracker.name, now))
    sent = False

    def post() -> None:
        # a retry after a lost answer first asks whether the comment landed: comments are not idempotent
        nonlocal sent
        if sent and tracker.has_comment_marker(item.case_key, item.marker):
            return
        sent = True
        tracker.post_reminder(item.case_key, item.markdown, notify=item.notify)

    # on a TrackerError the intent stays pending: the next run asks the tracker whether the comment landed
    call(post)
    if audit is not None and intent is not None:
        audit.complete_intent(intent)
    log.info("posted reminder %s on %s", item.dedupe_key, item.case_key)
    return ReminderOutcome(item.dedupe_key, item.reference, "posted")


def _audit_data(item: PlannedReminder, tracker: str, now: datetime) -> dict[str, Any]:
    return {
        "dedupe_key": item.dedupe_key,
        "marker": item.marker,
        "reference": item.reference,
        "case_key": item.case_key,
        "clock": item.clock,
        "cycle": item.cycle,
        "extensions": item.extensions,
        "threshold": item.threshold,
        "due_at": item.due_at.isoformat(),
        "evaluated_at": now.isoformat(),
        "tracker": tracker,
    }

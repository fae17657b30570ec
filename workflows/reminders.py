"""Which reminders are due before a deadline, with which dedupe key and text (posting them is the
application's: ``casebridge.app.remind``).

A clock's policy may list thresholds (``remind = { before = ["14d", "3d", "1d"] }``): when no more than
that much clock time is left before the due time, whoever works the case is told what lapses, when (in
the case's time zone), what can be done, and the article. Pure code: everything comes from the clock
results at ``now``.

Per clock, at most one reminder per run: the nearest threshold already crossed. A case first seen (or
a run that comes late) after several thresholds have passed gets one reminder, not one per skipped
threshold; the skipped ones are never sent later, because a later run again picks the nearest.

The dedupe key is ``REF/clock[/C2][/E1]/T3d``: case x clock x cycle x extension x threshold. An
extension moves the due time, so the reminders before the new due time carry ``/E1`` and are sent
afresh; the ones already sent for the old due time are not repeated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from casebridge.errors import CasebridgeError
from casebridge.workflows.cases import TrackedCase
from casebridge.workflows.clocks import ClockResult
from casebridge.workflows.dossier import fmt_duration
from casebridge.workflows.model import ClockState, ClockTarget, Workflow
from casebridge.workflows.render import clean_text, md_text

__all__ = ["PlannedReminder", "marker_for", "next_reminder", "plan_reminders", "reminder_key"]

# a reminder is only for a clock still counting down: not paused (the due time is unknown), not lapsed
# (escalation's job), not stopped
_COUNTING = frozenset({ClockState.RUNNING, ClockState.AT_RISK})
_NUMBERS = {1: "one", 2: "two", 3: "three"}
_ENDS_ON = {
    "mla_received_at": "Once the MLA request is received (record mla_received_at), the data stays preserved "
    "until that request is decided",
}


@dataclass(frozen=True)
class PlannedReminder:
    dedupe_key: str
    marker: str  # a token of letters and digits derived from the key: survives every tracker's markup
    reference: str
    case_key: str
    clock: str
    cycle: int
    extensions: int  # extensions counted on this clock when the reminder is due
    threshold: str  # as written in the workflow ("3d")
    due_at: datetime
    remaining_seconds: float
    notify: frozenset[str]
    officer_email: str | None
    title: str
    markdown: str

    def to_json(self) -> dict[str, Any]:
        return {
            "dedupe_key": self.dedupe_key,
            "reference": self.reference,
            "case_key": self.case_key,
            "clock": self.clock,
            "threshold": self.threshold,
            "due_at": self.due_at.isoformat(),
            "left": fmt_duration(self.remaining_seconds),
            "notify": sorted(self.notify),
        }


def reminder_key(reference: str, clock: str, threshold: str, cycle: int = 1, extensions: int = 0) -> str:
    """``REF/clock/T3d``; ``/C2`` for a later cycle, ``/E1`` once the due time was extended."""
    return (
        f"{reference}/{clock}"
        + (f"/C{cycle}" if cycle > 1 else "")
        + (f"/E{extensions}" if extensions else "")
        + f"/T{threshold}"
    )


def marker_for(dedupe_key: str) -> str:
    """``CBR`` and 20 hex digits of the key's SHA-256: what a tracker's comments are searched for (the key
    itself may hold any character a case reference holds; this never changes in any markup)."""
    return "CBR" + hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:20].upper()


def due_threshold(clock: ClockResult) -> tuple[float, str] | None:
    """The nearest threshold crossed by ``clock`` (seconds, label), or None."""
    rule = clock.target.remind
    if rule is None or clock.state not in _COUNTING or clock.due_at is None or clock.remaining_seconds is None:
        return None
    left = clock.remaining_seconds
    if left <= 0:
        return None
    crossed = [(s, label) for s, label in zip(rule.before, rule.labels, strict=True) if left <= s]
    return min(crossed) if crossed else None


def next_reminder(clock: ClockResult) -> tuple[str, datetime] | None:
    """The next threshold still ahead for a counting clock and when it falls (24x7: wall time; business
    calendars: approximate, as wall time of clock time). None when none is ahead."""
    rule = clock.target.remind
    if rule is None or clock.state not in _COUNTING or clock.due_at is None or clock.remaining_seconds is None:
        return None
    ahead = [(s, label) for s, label in zip(rule.before, rule.labels, strict=True) if clock.remaining_seconds > s]
    if not ahead:
        return None
    seconds, label = max(ahead)
    return label, clock.due_at - timedelta(seconds=seconds)


def plan_reminders(
    cases: Iterable[tuple[TrackedCase, Sequence[ClockResult]]], workflow: Workflow, *, now: datetime
) -> list[PlannedReminder]:
    """Pure: the reminders due at ``now``, the least time left first."""
    planned = []
    for tracked, clocks in cases:
        state = workflow.states.get(tracked.state)
        if state is not None and state.terminal:
            continue
        for clock in clocks:
            found = due_threshold(clock)
            if found is not None:
                planned.append(_planned(tracked, clock, found[1], workflow))
    planned.sort(key=lambda p: (p.remaining_seconds, p.dedupe_key))
    return planned


def _require_running(clock: ClockResult) -> tuple[datetime, float]:
    """Reminders are planned only for running clocks, which always have a due time; say so if not."""
    if clock.due_at is None or clock.remaining_seconds is None:
        raise CasebridgeError(f"clock {clock.name} has no due time: no reminder can be planned for it")
    return clock.due_at, clock.remaining_seconds


def _planned(tracked: TrackedCase, clock: ClockResult, threshold: str, workflow: Workflow) -> PlannedReminder:
    case = tracked.case
    used = case.extensions_for(clock.name)
    key = reminder_key(case.reference, clock.name, threshold, clock.cycle, used)
    due_at, remaining = _require_running(clock)
    label = workflow.clocks[clock.name].label if clock.name in workflow.clocks else clock.name
    left = fmt_duration(remaining)
    title = clean_text(f"Reminder: {case.reference}: {label} lapses in {left}", limit=250)
    marker = marker_for(key)
    markdown = _text(tracked, clock, label, used, key, marker)
    return PlannedReminder(
        dedupe_key=key,
        marker=marker,
        reference=case.reference,
        case_key=tracked.key,
        clock=clock.name,
        cycle=clock.cycle,
        extensions=used,
        threshold=threshold,
        due_at=due_at,
        remaining_seconds=remaining,
        notify=clock.target.remind.notify if clock.target.remind else frozenset(),
        officer_email=case.officer_email,
        title=title,
        markdown=markdown,
    )


def what_can_be_done(target: ClockTarget, used: int) -> str:
    """The action the law offers before the lapse, e.g. "request the one 90-day extension under
    18 U.S.C. 2703(f)(2) now"."""
    left = target.max_extensions - min(used, target.max_extensions)
    if target.extension and left > 0:
        days = target.extension / 86400
        size = f"{days:g}-day" if days == int(days) else target.extension_label
        which = "the one" if target.max_extensions == 1 else f"one of the {_NUMBERS.get(left, str(left))} remaining"
        source = f" under {target.extension_source}" if target.extension_source else ""
        action = f"request {which} {size} extension{source} now, then record it with casebridge extend"
        return action + (f"; or {target.on_lapse}" if target.on_lapse else "")
    if target.extension and left == 0:
        return "no extension is left" + (f": {target.on_lapse}" if target.on_lapse else "")
    return target.on_lapse or "act before the due time"


def _text(tracked: TrackedCase, clock: ClockResult, label: str, used: int, key: str, marker: str) -> str:
    case, target = tracked.case, clock.target
    due_at, remaining = _require_running(clock)
    zone = ZoneInfo(case.timezone)
    due = due_at.astimezone(zone).replace(microsecond=0)
    lines = [
        f"**Reminder: {md_text(label)} lapses in {fmt_duration(remaining)}** "
        f"({md_text(case.reference)}, {md_text(str(case.request_type))} x {md_text(str(case.legal_basis))}).",
        "",
        f"- Lapses: {due.strftime('%Y-%m-%d %H:%M')} {md_text(case.timezone)} ({due.isoformat()})",
        f"- What can be done: {md_text(what_can_be_done(target, used))}",
    ]
    if target.extension and used:
        lines.append(f"- Extensions used: {min(used, target.max_extensions)} of {target.max_extensions}")
    if target.ends_on_field:
        lines.append(
            f"- {md_text(_ENDS_ON.get(target.ends_on_field, 'Ends once ' + target.ends_on_field + ' is recorded'))}"
            + (f" ({md_text(target.ends_on_source)})" if target.ends_on_source else "")
        )
    if "officer" in (target.remind.notify if target.remind else ()) and case.officer:
        lines.append(f"- Officer: {md_text(case.officer)}")
    lines += [f"- Source: {md_text(target.source)}", "", f"Reminder key: {md_text(key)} ({marker})"]
    return "\n".join(lines)

"""The sync job: plan a pass, then apply it.

Plan (reads only): pull cases from the tracker, get each one's status history, evaluate every clock at
``now`` (pure code in ``workflows.clocks``), and compare the SLA fields the engine computes with what the
tracker holds. Apply: write only the differences, one small action per case; one failing case never
stops the others. ``--dry-run`` prints the plan and stops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors import Connector
from connectors.errors import CasebridgeError, TrackerError
from workflows.cases import ClockFields, SlaFields, StatusChange, TrackedCase
from workflows.clocks import ClockResult, evaluate_case
from workflows.model import ClockState, Workflow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SetFields:
    """Write these SLA fields (only the clocks that changed) on one case."""

    key: str
    reference: str
    sla: SlaFields
    before: SlaFields

    def describe(self) -> str:
        parts = []
        for name, new in sorted(self.sla.clocks.items()):
            old = self.before.clocks.get(name)
            parts.append(f"{name}: {_fmt_fields(old)} -> {_fmt_fields(new)}")
        if self.sla.escalation_level != self.before.escalation_level:
            parts.append(f"escalation level {self.before.escalation_level} -> {self.sla.escalation_level}")
        return f"set {self.reference}: " + "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": "set_fields",
            "reference": self.reference,
            "key": self.key,
            "clocks": {n: _fields_json(f) for n, f in sorted(self.sla.clocks.items())},
            "escalation_level": self.sla.escalation_level,
        }


@dataclass
class CaseEvaluation:
    tracked: TrackedCase
    history: list[StatusChange]
    clocks: list[ClockResult]


@dataclass
class SyncPlan:
    now: datetime
    evaluations: list[CaseEvaluation] = field(default_factory=list)
    actions: list[SetFields] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # reference -> message (read failures)


@dataclass
class SyncResult:
    applied: list[SetFields] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def _fmt_fields(fields: ClockFields | None) -> str:
    if fields is None:
        return "(none)"
    due = fields.due_at.isoformat() if fields.due_at else "-"
    return f"{fields.state} due {due}"


def _fields_json(fields: ClockFields) -> dict[str, Any]:
    return {
        "due_at": fields.due_at.isoformat() if fields.due_at else None,
        "warn_at": fields.warn_at.isoformat() if fields.warn_at else None,
        "state": fields.state,
    }


def _second(moment: datetime | None) -> datetime | None:
    # trackers keep whole seconds; comparing at that precision keeps a no-change pass write-free
    return None if moment is None else moment.astimezone(UTC).replace(microsecond=0)


def clock_fields(result: ClockResult) -> ClockFields:
    return ClockFields(due_at=_second(result.due_at), warn_at=_second(result.warn_at), state=str(result.state))


def escalation_level(results: Iterable[ClockResult]) -> int:
    """Highest escalation level any breached, escalating clock has reached."""
    level = 0
    for result in results:
        rule = result.target.escalate
        if result.state == ClockState.BREACHED and rule is not None:
            level = max(level, rule.level_at(result.overdue_seconds))
    return level


def computed_sla(results: list[ClockResult]) -> SlaFields:
    return SlaFields(clocks={r.name: clock_fields(r) for r in results}, escalation_level=escalation_level(results))


def sla_changes(computed: SlaFields, held: SlaFields) -> SlaFields | None:
    """The part of ``computed`` that differs from what the tracker holds, or None."""
    changed = {name: f for name, f in computed.clocks.items() if held.clocks.get(name) != f}
    if not changed and computed.escalation_level == held.escalation_level:
        return None
    return SlaFields(clocks=changed, escalation_level=computed.escalation_level)


def evaluate(tracked: TrackedCase, history: list[StatusChange], workflow: Workflow, now: datetime) -> CaseEvaluation:
    return CaseEvaluation(tracked=tracked, history=history, clocks=evaluate_case(tracked.case, history, workflow, now))


def plan_pass(
    cases: Iterable[TrackedCase],
    history_of: Callable[[TrackedCase], list[StatusChange]],
    workflow: Workflow,
    now: datetime,
) -> SyncPlan:
    """Evaluate every case and plan the SLA writes. A case whose history cannot be read is recorded as a
    failure and planned no write (never touch a case whose fetch failed)."""
    plan = SyncPlan(now=now)
    for tracked in cases:
        try:
            history = history_of(tracked)
        except CasebridgeError as exc:
            plan.failures[tracked.case.reference] = str(exc)
            continue
        evaluation = evaluate(tracked, history, workflow, now)
        plan.evaluations.append(evaluation)
        change = sla_changes(computed_sla(evaluation.clocks), tracked.sla)
        if change is not None:
            plan.actions.append(SetFields(tracked.key, tracked.case.reference, change, tracked.sla))
    return plan


def apply_plan(
    plan: SyncPlan, tracker: Connector, *, on_applied: Callable[[SetFields], None] | None = None
) -> SyncResult:
    """Apply each action; a failing case is recorded and the others go on."""
    result = SyncResult(failures=dict(plan.failures))
    for action in plan.actions:
        try:
            tracker.set_sla_fields(action.key, action.sla)
        except TrackerError as exc:
            log.warning("%s: %s", action.reference, exc)
            result.failures[action.reference] = str(exc)
            continue
        result.applied.append(action)
        if on_applied is not None:
            on_applied(action)
    return result


def history_reader(tracker: Connector) -> Callable[[TrackedCase], list[StatusChange]]:
    """Per-case history, with the embedded tracker's bulk read when available."""
    bulk = getattr(tracker, "read_all_histories", None)
    cache: dict[str, list[StatusChange]] | None = None

    def read(tracked: TrackedCase) -> list[StatusChange]:
        nonlocal cache
        if tracked.history is not None:
            return tracked.history
        if bulk is not None:
            if cache is None:
                cache = bulk()
            if tracked.key in cache:
                return cache[tracked.key]
        return tracker.read_history(tracked.key)

    return read


def run_sync(
    tracker: Connector, workflow: Workflow, now: datetime, *, dry_run: bool = False
) -> tuple[SyncPlan, SyncResult]:
    """One full pass over every case (the incremental pass with a state store builds on this)."""
    plan = plan_pass(tracker.list_cases(), history_reader(tracker), workflow, now)
    if dry_run:
        return plan, SyncResult(failures=dict(plan.failures))
    return plan, apply_plan(plan, tracker)

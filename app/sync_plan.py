"""The sync job's plan (reads only, pure given its inputs): evaluate every case's clocks at ``now``
with the one engine (``workflows.clocks``), compare the SLA fields it computes with what the tracker
holds, and list the writes and reminders a pass would make. ``casebridge.sync`` applies the plan; the
read-only commands (``status``, ``escalate``, ``find``, ``report``) evaluate clocks with the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from casebridge.connectors import Connector
from casebridge.errors import EXIT_CASES_FAILED, CasebridgeError, redact
from casebridge.state.store import StoredCase
from casebridge.workflows.cases import ClockFields, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.clocks import ClockResult, evaluate_case
from casebridge.workflows.model import Workflow
from casebridge.workflows.reminders import PlannedReminder, plan_reminders
from casebridge.workflows.sla import changed_sla, counting_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SetFields:
    """Write these SLA fields (only the clocks that changed) on one case."""

    key: str
    reference: str
    sla: SlaFields
    before: SlaFields
    timezone: str = "UTC"  # the case's zone: times are shown in it, as `status` shows them
    # clock -> the rule its due instant is counted by ("elapsed", "eu-1182-71"); recorded in the audit
    counting: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        zone = ZoneInfo(self.timezone)
        parts = []
        for name, new in sorted(self.sla.clocks.items()):
            old = self.before.clocks.get(name)
            if old is None and new.state == "not_started":
                continue  # a clock that does not run for this case: written, but not news to a reader
            rule = self.counting.get(name, "elapsed")
            counted = f" (counted {rule})" if rule != "elapsed" and new.due_at is not None else ""
            parts.append(f"{name}: {_fmt_fields(old, zone)} -> {_fmt_fields(new, zone)}{counted}")
        if self.sla.escalation_level != self.before.escalation_level:
            parts.append(f"escalation level {self.before.escalation_level} -> {self.sla.escalation_level}")
        return f"set {self.reference}: " + ("; ".join(parts) or "initial fields")

    def to_json(self) -> dict[str, Any]:
        return {
            "action": "set_fields",
            "reference": self.reference,
            "key": self.key,
            "clocks": {n: _fields_json(f) for n, f in sorted(self.sla.clocks.items())},
            "escalation_level": self.sla.escalation_level,
            "counting": {n: self.counting[n] for n in sorted(self.sla.clocks) if n in self.counting},
        }


@dataclass
class CaseEvaluation:
    tracked: TrackedCase
    history: list[StatusChange]
    clocks: list[ClockResult]


@dataclass
class SyncPlan:
    now: datetime
    evaluated: int = 0  # cases evaluated (their results are not kept)
    before: dict[str, TrackedCase] = field(default_factory=dict)  # by key: the cases an action writes
    actions: list[SetFields] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # reference -> message (read failures)
    reminders: list[PlannedReminder] = field(default_factory=list)  # due at now (with remind=True)


@dataclass
class SyncResult:
    applied: list[SetFields] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # reference -> one-line message
    exit_codes: dict[str, int] = field(default_factory=dict)  # reference -> the failure's exit code

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, reference: str, exc: CasebridgeError | str) -> None:
        self.failures[reference] = str(exc)
        self.exit_codes[reference] = exc.exit_code if isinstance(exc, CasebridgeError) else EXIT_CASES_FAILED


def _fmt_fields(fields: ClockFields | None, zone: ZoneInfo) -> str:
    if fields is None:
        return "(none)"
    due = fields.due_at.astimezone(zone).isoformat() if fields.due_at else "-"
    return f"{fields.state} due {due}"


def _fields_json(fields: ClockFields) -> dict[str, Any]:
    return {
        "due_at": fields.due_at.isoformat() if fields.due_at else None,
        "warn_at": fields.warn_at.isoformat() if fields.warn_at else None,
        "state": fields.state,
    }


def evaluate(tracked: TrackedCase, history: list[StatusChange], workflow: Workflow, now: datetime) -> CaseEvaluation:
    return CaseEvaluation(tracked=tracked, history=history, clocks=evaluate_case(tracked.case, history, workflow, now))


# what evaluating one case's clocks may raise on bad data (a calendar that finds no working time for
# a date centuries away, a duration too large for a datetime): reported for that case, never the run
EVALUATION_ERRORS = (CasebridgeError, ValueError, OverflowError)


def evaluate_cases(
    cases: Iterable[TrackedCase],
    history_of: Callable[[TrackedCase], list[StatusChange]],
    workflow: Workflow,
    now: datetime,
) -> tuple[list[CaseEvaluation], dict[str, str]]:
    """Evaluate each case; one that cannot be read or evaluated is a failure of that case only
    (reference -> one-line message), the others go on."""
    failures: dict[str, str] = {}
    return list(iter_evaluations(cases, history_of, workflow, now, failures)), failures


def iter_evaluations(
    cases: Iterable[TrackedCase],
    history_of: Callable[[TrackedCase], list[StatusChange]],
    workflow: Workflow,
    now: datetime,
    failures: dict[str, str],
) -> Iterator[CaseEvaluation]:
    """As ``evaluate_cases``, one case at a time (a pass keeps none of them); failures go to ``failures``."""
    for tracked in cases:
        try:
            history = history_of(tracked)
        except CasebridgeError as exc:
            failures[tracked.case.reference] = str(exc)
            continue
        try:
            evaluation = evaluate(tracked, history, workflow, now)
        except EVALUATION_ERRORS as exc:
            log.debug("evaluating %s failed", tracked.case.reference, exc_info=True)
            failures[tracked.case.reference] = f"cannot evaluate its clocks: {redact(str(exc))}"
            continue
        yield evaluation


def plan_pass(
    cases: Iterable[TrackedCase],
    history_of: Callable[[TrackedCase], list[StatusChange]],
    workflow: Workflow,
    now: datetime,
    *,
    remind: bool = False,
    batch: bool = True,
) -> SyncPlan:
    """Evaluate every case and plan the SLA writes (and, with ``remind``, the reminders due). A case whose
    history cannot be read is recorded as a failure and planned no write (never touch a case whose fetch
    failed). Cases streamed from the state store with their rows still as text (``StoredCase``) go through
    the batch clock path ``BATCH_SIZE`` at a time (``app.sync_batch``; ``batch=False``: one by one), with
    the same plan as a result."""
    plan = SyncPlan(now=now)
    if batch:
        from casebridge.app.sync_batch import plan_chunks  # numpy: imported only by a pass that batches

        plan_chunks(plan, cases, history_of, workflow, remind=remind)
    else:
        plan_scalar(plan, cases, history_of, workflow, remind=remind)
    plan.reminders.sort(key=lambda r: (r.remaining_seconds, r.dedupe_key))
    return plan


def plan_scalar(
    plan: SyncPlan,
    cases: Iterable[TrackedCase],
    history_of: Callable[[TrackedCase], list[StatusChange]],
    workflow: Workflow,
    *,
    remind: bool,
) -> None:
    """Plan these cases one at a time with the scalar engine (``workflows.clocks``)."""
    for evaluation in iter_evaluations(_completed(cases), history_of, workflow, plan.now, plan.failures):
        plan.evaluated += 1  # the clock results are not kept: 100,000 cases x 3 would be ~150 MB
        plan_case(plan, evaluation.tracked, evaluation.clocks, workflow, remind=remind)


def _completed(cases: Iterable[TrackedCase]) -> Iterator[TrackedCase]:
    for tracked in cases:
        yield tracked.complete() if isinstance(tracked, StoredCase) else tracked


def plan_case(
    plan: SyncPlan, tracked: TrackedCase, clocks: list[ClockResult], workflow: Workflow, *, remind: bool
) -> None:
    """Plan one evaluated case: its reminders due (with ``remind``) and the write of what changed."""
    if remind:
        plan.reminders += plan_reminders([(tracked, clocks)], workflow, now=plan.now)
    change = changed_sla(clocks, tracked.sla)
    if change is not None:
        plan.before[tracked.key] = tracked
        counting = {n: r for n, r in counting_of(clocks).items() if n in change.clocks}
        plan.actions.append(
            SetFields(tracked.key, tracked.case.reference, change, tracked.sla, tracked.case.timezone, counting)
        )


def history_reader(tracker: Connector) -> Callable[[TrackedCase], list[StatusChange]]:
    """Per-case history, with the embedded tracker's bulk read when available (the read-only commands
    that evaluate clocks without a pass: ``status``, ``escalate``)."""
    cache: dict[str, list[StatusChange]] | None = None

    def read(tracked: TrackedCase) -> list[StatusChange]:
        nonlocal cache
        if tracked.history is not None:
            return tracked.history
        if tracker.bulk_history:
            if cache is None:
                cache = tracker.read_all_histories()
            if tracked.key in cache:
                return cache[tracked.key]
        return tracker.read_history(tracked.key)

    return read

"""Which cases are due for escalation, at what level, with which dedupe key (posting them is the
application's: ``casebridge.app.escalate``).

``plan_escalations`` is pure: from each case and its clock results at ``now`` it selects every breached
clock whose policy escalates, works out the level and repeat that are due, and writes the dossier.

Per clock, one post per run: the most recent step that is due. Steps are level L1, L2, ... (from the
policy's levels) and, once a level is reached, its repeats R1..R``max_repeats`` every ``repeat_after``.
If a run comes late and several steps are due at once, only the newest is posted: the NCB gets one
current message, not a burst of stale ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, partial
from typing import Any

from casebridge.errors import EscalationBlocked
from casebridge.workflows.cases import Escalation, TrackedCase
from casebridge.workflows.directory import Directory
from casebridge.workflows.dossier import (
    ClockLike,
    EscalationConfig,
    Step,
    build_dossier,
    check_allowlist,
    fmt_duration,
)
from casebridge.workflows.model import EscalationLevel, EscalationRule, Workflow
from casebridge.workflows.render import clean_text
from casebridge.workflows.text_fit import cap_dossier

log = logging.getLogger(__name__)

BREACHED = "breached"
ARTICLE3_FIELDS = ("article3_checked_by", "article3_checked_at")

__all__ = [
    "EscalationConfig",
    "EscalationPlan",
    "NotDue",
    "PlannedEscalation",
    "dedupe_key",
    "due_step",
    "plan_escalations",
]


@dataclass(frozen=True)
class PlannedEscalation:
    dedupe_key: str
    reference: str
    case_key: str
    case_url: str | None
    case_state: str
    clock: str
    level: int
    level_name: str
    repeat: int
    action: str
    overdue_seconds: float
    title: str
    dossier: Callable[[], str] = field(repr=False, compare=False)  # writes the Markdown dossier
    threat_to_life: bool = False  # emergency request or urgency "threat_to_life": planned first

    @cached_property
    def markdown(self) -> str:
        """The dossier, written on first use: only for what is posted or shown (a rerun that finds
        everything already posted writes none). Capped at ``text_fit.DOSSIER_CAP`` characters."""
        return cap_dossier(self.dossier())

    def escalation(self) -> Escalation:
        return Escalation(
            dedupe_key=self.dedupe_key,
            case_reference=self.reference,
            case_key=self.case_key,
            case_url=self.case_url,
            title=self.title,
            markdown=self.markdown,
            level=self.level,
            clock=self.clock,
            attributes={"repeat": self.repeat, "level_name": self.level_name},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "dedupe_key": self.dedupe_key,
            "reference": self.reference,
            "case_key": self.case_key,
            "clock": self.clock,
            "level": self.level,
            "level_name": self.level_name,
            "repeat": self.repeat,
            "overdue": fmt_duration(self.overdue_seconds),
            "threat_to_life": self.threat_to_life,
            "title": self.title,
        }


@dataclass(frozen=True)
class NotDue:
    """Why a clock (or a case named with --case) is not escalated now."""

    reference: str
    clock: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.reference}{'/' + self.clock if self.clock else ''}: {self.reason}"


@dataclass
class EscalationPlan:
    """What ``escalate`` would post; iterating yields the planned escalations."""

    escalations: list[PlannedEscalation] = field(default_factory=list)
    blocked: list[EscalationBlocked] = field(default_factory=list)
    not_due: list[NotDue] = field(default_factory=list)

    def __iter__(self) -> Iterator[PlannedEscalation]:
        return iter(self.escalations)

    def __len__(self) -> int:
        return len(self.escalations)


def due_step(clock: ClockLike) -> tuple[EscalationLevel, int] | str:
    """The newest (level, repeat) due for ``clock``, or the reason nothing is due."""
    state = str(getattr(clock.state, "value", clock.state))
    if state != BREACHED:
        return f"clock is {state}, not breached"
    if clock.stopped_at is not None:
        return "clock stopped after its due time (answered late): nothing to escalate"
    rule: EscalationRule | None = clock.target.escalate
    if rule is None or not rule.levels:
        lapse = f" (on lapse: {clock.target.on_lapse})" if clock.target.on_lapse else ""
        return f"the policy for this clock does not escalate{lapse}"
    number = rule.level_at(clock.overdue_seconds)
    if number == 0:
        first = min(lvl.after for lvl in rule.levels)
        return f"overdue {fmt_duration(clock.overdue_seconds)}; level 1 starts {fmt_duration(first)} past due"
    level = max((lvl for lvl in rule.levels if lvl.level == number), key=lambda lvl: lvl.after)
    repeat = 0
    if rule.repeat_after and rule.max_repeats > 0:
        repeat = min(rule.max_repeats, math.floor((clock.overdue_seconds - level.after) / rule.repeat_after))
    return level, max(0, repeat)


def dedupe_key(reference: str, clock: str, level: int, repeat: int = 0, cycle: int = 1) -> str:
    """``REF/clock/L2`` (``/R1`` for repeats). A clock that stopped and started again (cycle 2, e.g.
    after an MLA redirect) gets ``/C2`` so its new breach is escalated afresh."""
    return (
        f"{reference}/{clock}" + (f"/C{cycle}" if cycle > 1 else "") + f"/L{level}" + (f"/R{repeat}" if repeat else "")
    )


def article3_problem(tracked: TrackedCase, now: datetime) -> EscalationBlocked | None:
    """EscalationBlocked naming the case and the field when the Art. 3 self-check is missing."""
    case = tracked.case
    for name in ARTICLE3_FIELDS:
        if getattr(case, name) in (None, ""):
            return _blocked(
                case.reference,
                name,
                f"{name} is not set; record who completed the INTERPOL "
                "Article 3 self-check and when (article3_checked_by, article3_checked_at)",
            )
    if case.article3_checked_at and case.article3_checked_at > now:
        return _blocked(case.reference, "article3_checked_at", "article3_checked_at is in the future; correct it")
    return None


def _blocked(reference: str, field_name: str, message: str) -> EscalationBlocked:
    return EscalationBlocked(f"{reference}: {message}", reference=reference, field=field_name)


def plan_escalations(
    cases: Iterable[tuple[TrackedCase, Sequence[ClockLike]]],
    workflow: Workflow,
    *,
    now: datetime,
    config: EscalationConfig | None = None,
    only: Collection[str] | None = None,
    directory: Directory | None = None,
) -> EscalationPlan:
    """Pure: what to post at ``now``. ``only`` restricts to these references (``--case``); for them the
    plan also says why each clock is not due. Cases without the Art. 3 self-check land in ``blocked``."""
    config = config or EscalationConfig()
    allowed = check_allowlist(config.allowlist)
    wanted = set(only) if only is not None else None
    plan, seen = EscalationPlan(), set()
    for tracked, clocks in cases:
        ref = tracked.case.reference
        if wanted is not None and ref not in wanted:
            continue
        seen.add(ref)
        steps, reasons = _due_steps(tracked, clocks, workflow, explain=wanted is not None)
        if wanted is not None:
            plan.not_due += reasons
        if not steps:
            if wanted is not None and not reasons:
                plan.not_due.append(NotDue(ref, None, "no clock results (no clock runs for this case)"))
            continue
        problem = article3_problem(tracked, now)
        if problem is not None:
            plan.blocked.append(problem)
            continue
        for clock, level, repeat in steps:
            plan.escalations.append(
                _planned(tracked, clocks, clock, level, repeat, workflow, allowed, config, now, directory)
            )
    for ref in sorted((wanted or set()) - seen):
        plan.not_due.append(NotDue(ref, None, "no such case among the tracked cases"))
    plan.escalations.sort(key=lambda p: (not p.threat_to_life, -p.overdue_seconds, p.dedupe_key))
    return plan


def _due_steps(
    tracked: TrackedCase, clocks: Sequence[ClockLike], workflow: Workflow, *, explain: bool = True
) -> tuple[list[tuple[ClockLike, EscalationLevel, int]], list[NotDue]]:
    """The (clock, level, repeat) steps due, and with ``explain`` why each other clock is not due."""
    ref, steps, reasons = tracked.case.reference, [], []
    state = workflow.states.get(tracked.state)
    if state is not None and state.terminal:
        return [], [NotDue(ref, None, f"case is {tracked.state} (a terminal state)")] if explain else []
    for clock in clocks:
        if not explain and str(getattr(clock.state, "value", clock.state)) != BREACHED:
            continue  # not due, and nobody asked why (a run over every case: 300,000 reasons unread)
        found = due_step(clock)
        if isinstance(found, str):
            if explain:
                reasons.append(NotDue(ref, clock.name, found))
        else:
            steps.append((clock, *found))
    return steps, reasons


def _planned(
    tracked: TrackedCase,
    clocks: Sequence[ClockLike],
    clock: ClockLike,
    level: EscalationLevel,
    repeat: int,
    workflow: Workflow,
    allowed: frozenset[str],
    config: EscalationConfig,
    now: datetime,
    directory: Directory | None = None,
) -> PlannedEscalation:
    case = tracked.case
    key = dedupe_key(case.reference, clock.name, level.level, repeat, int(getattr(clock, "cycle", 1) or 1))
    step = Step(key, clock.name, level.level, level.name, repeat, level.action)
    # written only when read (posted or shown); the provider directory is consulted then, too
    dossier = partial(_write_dossier, tracked, clocks, step, workflow, allowed, config, now, directory)
    label = workflow.clocks[clock.name].label if clock.name in workflow.clocks else clock.name
    title = f"NCB escalation L{level.level}{f' R{repeat}' if repeat else ''}: {case.reference}: {label} overdue"
    if "title" in allowed:
        title += f": {case.title}"
    return PlannedEscalation(
        dedupe_key=key,
        reference=case.reference,
        case_key=tracked.key,
        case_url=tracked.url,
        case_state=tracked.state,
        clock=clock.name,
        level=level.level,
        level_name=level.name,
        repeat=repeat,
        action=case.ncb_action or level.action,
        overdue_seconds=clock.overdue_seconds,
        title=clean_text(title, limit=250),
        dossier=dossier,
        threat_to_life=case.urgency == "threat_to_life" or case.request_type == "emergency",
    )


def _write_dossier(
    tracked: TrackedCase,
    clocks: Sequence[ClockLike],
    step: Step,
    workflow: Workflow,
    allowed: frozenset[str],
    config: EscalationConfig,
    now: datetime,
    directory: Directory | None,
) -> str:
    case = tracked.case
    return build_dossier(
        tracked,
        clocks,
        step,
        workflow,
        allowed=allowed,
        now=now,
        requesting_ncb=config.requesting_ncb,
        default_restrictions=config.handling_restrictions,
        provider=None
        if directory is None
        else directory.resolve(case.provider) or directory.resolve(case.provider_legal_entity),
    )

"""Recording an extension of a clock: is it allowed, and where does the due time go (pure code; the
application writes it: ``casebridge.app.extend``).

A policy declares what the law grants (``extension = { by = "90d", max = 1, source = "18 U.S.C.
2703(f)(2)" }``). An extension is recorded with the instant the renewed request was sent; it is refused
when the clock does not run for the case, its policy grants none, ``max`` are already used, or the clock
has already lapsed (or stopped) at that instant: an extension is asked for within the period (2703(f)(2)
"upon a renewed request"; Reg. 2023/1543 Art. 11(1) "during that 60-day period"). The due time then
moves by ``by``, counted from the current due time by the policy's rule: exactly ``by`` of clock time
(``elapsed``), or ``by`` counted under Reg. 1182/71 Art. 3 (``eu-1182-71``: the day after the current
last day is day 1; a last day on a weekend or public holiday moves to the next working day).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from casebridge.errors import UserError
from casebridge.workflows.cases import Case, Extension, StatusChange
from casebridge.workflows.clocks import ClockResult, evaluate_case
from casebridge.workflows.counting import statement
from casebridge.workflows.model import ClockState, Workflow

__all__ = ["ExtensionPlan", "ExtensionRefused", "plan_extension"]

_OPEN = frozenset({ClockState.RUNNING, ClockState.AT_RISK, ClockState.PAUSED})


class ExtensionRefused(UserError):
    """The extension cannot be recorded (exit 2): the message says why and what the law allows."""


@dataclass(frozen=True)
class ExtensionPlan:
    reference: str
    clock: str
    by: str  # as written in the workflow ("90d")
    source: str
    number: int  # this extension's number (1 = the first)
    allowed: int
    old_due: datetime | None  # None while paused
    new_due: datetime | None
    case: Case  # the case with the extension recorded
    counting: str = "elapsed"  # the rule the new due time is counted by
    statement: str = ""  # "due 2027-07-23 24:00 Europe/Dublin, counted under Reg. (EEC, Euratom) ..."

    @property
    def extension(self) -> Extension:
        return self.case.extensions[-1]


def _clock_of(results: Sequence[ClockResult], name: str) -> ClockResult | None:
    return next((r for r in results if r.name == name), None)


def plan_extension(
    case: Case,
    history: Sequence[StatusChange],
    workflow: Workflow,
    clock: str,
    at: datetime,
    note: str | None = None,
) -> ExtensionPlan:
    """The case with one more extension of ``clock`` recorded at ``at``. Raises ExtensionRefused."""
    ref = case.reference
    if clock not in workflow.clocks:
        known = ", ".join(workflow.clocks)
        raise ExtensionRefused(f"{ref}: unknown clock {clock!r} (clocks of {workflow.name}: {known})")
    before = _clock_of(evaluate_case(case, history, workflow, at), clock)
    if before is None:
        raise ExtensionRefused(f"{ref}: the {clock} clock does not run for {case.request_type} x {case.legal_basis}")
    target = before.target
    if not target.extension or not target.max_extensions:
        lapse = f" (on lapse: {target.on_lapse})" if target.on_lapse else ""
        if target.ends_on_field:
            lapse = f"; it ends once {target.ends_on_field} is recorded ({target.ends_on_source})"
        raise ExtensionRefused(f"{ref}: the policy for {clock} grants no extension{lapse}")
    used = case.extensions_for(clock)
    where = f" under {target.extension_source}" if target.extension_source else ""
    if used >= target.max_extensions:
        raise ExtensionRefused(
            f"{ref}: {clock} already extended {used} of {target.max_extensions} time(s){where}; no further extension"
        )
    if any(e.clock == clock and e.at == at for e in case.extensions):
        raise ExtensionRefused(f"{ref}: an extension of {clock} at {at.isoformat()} is already recorded")
    if before.state == ClockState.BREACHED:
        when = f" at {before.due_at.isoformat()}" if before.due_at else ""
        raise ExtensionRefused(
            f"{ref}: {clock} lapsed{when}, before --at {at.isoformat()}; "
            "an extension must be requested before the due time"
        )
    if before.state not in _OPEN:
        state = str(before.state).replace("_", " ")
        raise ExtensionRefused(f"{ref}: {clock} is {state} at --at {at.isoformat()}; only a running clock is extended")
    try:
        record = Extension(clock=clock, at=at, note=note or None)
        extended = case.model_copy(update={"extensions": (*case.extensions, record)})
        Case.model_validate(extended.model_dump())  # the limits (count, note length) hold
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]) or "extension"
        raise ExtensionRefused(f"{ref}: {field}: {problem['msg']}") from None
    after = _clock_of(evaluate_case(extended, history, workflow, at), clock)
    return ExtensionPlan(
        reference=ref,
        clock=clock,
        by=target.extension_label,
        source=target.extension_source,
        number=used + 1,
        allowed=target.max_extensions,
        old_due=before.due_at,
        new_due=after.due_at if after else None,
        case=extended,
        counting=target.counting,
        statement=statement(after, extended, workflow.establishments).text if after else "",
    )

"""The in-memory workflow definition: what ``workflows.load_workflow`` builds from TOML.

Plain frozen dataclasses so the clock engine (hot path: 100,000 cases per pass) reads attributes, not
validators. All durations are seconds. For a clock on a business calendar, durations are *working*
seconds, and a ``d`` in the TOML means one working day of that calendar (its daily hours).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from casebridge.workflows.counting import Establishments

WILDCARD = "*"


class ClockKind(StrEnum):
    LEGAL = "legal"  # set by law: never pauses
    OPERATIONAL = "operational"  # the agency's own target: pauses in the listed states


class ClockState(StrEnum):
    NOT_STARTED = "not_started"
    RUNNING = "running"
    PAUSED = "paused"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"
    STOPPED = "stopped"


@dataclass(frozen=True)
class State:
    name: str
    label: str
    terminal: bool = False
    # tracker connector name -> that tracker's status name ("redmine" -> "Submitted to provider")
    tracker_status: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def status_for(self, connector: str) -> str:
        return self.tracker_status.get(connector, self.label)


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str
    name: str = ""


@dataclass(frozen=True)
class Calendar:
    """``24x7`` (kind "24x7") or a business calendar in an IANA timezone."""

    name: str
    kind: str = "24x7"  # "24x7" | "business"
    timezone: str = "UTC"
    working_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    holidays_country: str | None = None
    holidays_subdiv: str | None = None
    closed_dates: frozenset[date] = frozenset()
    open_dates: frozenset[date] = frozenset()  # working days that would otherwise be closed

    @property
    def day_seconds(self) -> int:
        start = self.day_start.hour * 3600 + self.day_start.minute * 60
        end = self.day_end.hour * 3600 + self.day_end.minute * 60
        return end - start


@dataclass(frozen=True)
class ClockDef:
    """How a clock runs: which states start, pause and stop it. Targets come from policies."""

    name: str
    kind: ClockKind
    calendar: str = "24x7"
    start_on: frozenset[str] = frozenset()
    stop_on: frozenset[str] = frozenset()
    # stopping in one of these before the due time is "met"; other stops are "stopped"
    met_on: frozenset[str] = frozenset()
    pause_in: frozenset[str] = frozenset()  # always empty for legal clocks
    # case field that, when set, is the start time of the first cycle (legal clocks run from provider receipt)
    start_field: str | None = None
    label: str = ""
    description: str = ""


@dataclass(frozen=True)
class EscalationLevel:
    level: int
    after: float  # seconds past the due time
    name: str
    action: str = ""


@dataclass(frozen=True)
class EscalationRule:
    levels: tuple[EscalationLevel, ...]
    repeat_after: float | None = None  # re-post the highest level every so often...
    max_repeats: int = 0  # ...at most this many times

    def level_at(self, overdue_seconds: float) -> int:
        """Highest level reached ``overdue_seconds`` after the due time (0 = none)."""
        reached = 0
        for lvl in self.levels:
            if overdue_seconds >= lvl.after:
                reached = max(reached, lvl.level)
        return reached


@dataclass(frozen=True)
class ReminderRule:
    """Remind whoever works the case this long before the due time (clock seconds still left)."""

    before: tuple[float, ...]  # thresholds, largest first
    labels: tuple[str, ...]  # as written in the TOML ("14d"), same order: they name the dedupe key
    notify: frozenset[str] = frozenset({"assignee"})  # assignee, watchers, officer (mail)

    def label_for(self, seconds: float) -> str:
        return self.labels[self.before.index(seconds)]


@dataclass(frozen=True)
class ClockTarget:
    """A policy's target for one clock."""

    clock: str
    target: float
    warn: float  # elapsed (clock) seconds after which the clock is at risk
    extension: float = 0.0  # added to the target per extension used (case.extensions_used + recorded)
    max_extensions: int = 0
    escalate: EscalationRule | None = None
    on_lapse: str = ""
    source: str = ""
    extension_label: str = ""  # the extension as written ("90d")
    extension_source: str = ""  # the article that grants it ("18 U.S.C. 2703(f)(2)")
    remind: ReminderRule | None = None
    # A case field (an instant) after which the clock no longer counts: the period it measured gave way
    # to another regime (Budapest Art. 29(7): once the MLA request is received, preservation continues
    # until the request is decided). Set before the due time, the clock ends there as met.
    ends_on_field: str | None = None
    ends_on_source: str = ""
    # How the law counts the period (``workflows.counting``): "elapsed" (seconds) or "eu-1182-71"
    # (Reg. 1182/71 Art. 3, on the addressee's calendar). ``period`` is the target as written ("10d").
    counting: str = "elapsed"
    counting_source: str = ""
    period: str = ""
    # a policy's own calendar for the counting (``counting_calendar``): wins over the provider directory
    counting_country: str | None = None
    counting_zone: str | None = None
    counting_subdivision: str | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    request_types: frozenset[str]  # may hold WILDCARD
    legal_bases: frozenset[str]  # may hold WILDCARD
    targets: tuple[ClockTarget, ...]
    source: str = ""
    description: str = ""

    def matches(self, request_type: str, legal_basis: str) -> bool:
        return (WILDCARD in self.request_types or request_type in self.request_types) and (
            WILDCARD in self.legal_bases or legal_basis in self.legal_bases
        )

    @property
    def specificity(self) -> int:
        return (WILDCARD not in self.request_types) + (WILDCARD not in self.legal_bases)


# Why providers refuse (issue 13; Europol SIRIUS counts refusals by reason). A workflow may list more.
DEFAULT_REFUSAL_REASONS = (
    "us-legal-process-required",
    "mlat-required",
    "no-data",
    "data-not-retained",
    "not-our-service",
    "overbroad",
    "identifier-invalid",
    "jurisdiction",
    "other",
)


@dataclass(frozen=True)
class ReportStates:
    """Which workflow states mark a request's milestones in ``casebridge report`` (``[report]`` in the
    TOML). A milestone is the first entry into one of its states in the status history."""

    sent: frozenset[str] = frozenset(
        {"submitted", "acknowledged", "awaiting_requester", "partial", "fulfilled", "refused", "redirected_mla",
         "escalated"}
    )  # fmt: skip
    first_response: frozenset[str] = frozenset(
        {"acknowledged", "partial", "fulfilled", "refused", "awaiting_requester", "redirected_mla"}
    )
    fulfilled: frozenset[str] = frozenset({"fulfilled"})
    partial: frozenset[str] = frozenset({"partial"})
    refused: frozenset[str] = frozenset({"refused"})
    redirected: frozenset[str] = frozenset({"redirected_mla"})
    calendar: str = "24x7"  # working days are counted on this calendar (the loader picks the agency's)


@dataclass
class Workflow:
    name: str
    initial: str
    states: dict[str, State]
    transitions: tuple[Transition, ...]
    calendars: dict[str, Calendar]
    clocks: dict[str, ClockDef]
    policies: tuple[Policy, ...]
    escalated_state: str | None = None
    refusal_reasons: tuple[str, ...] = DEFAULT_REFUSAL_REASONS
    report: ReportStates = field(default_factory=ReportStates)
    source_path: str = ""
    description: str = ""
    # Where a provider's EU establishment is (``workflows.counting.Establishments``): data the application
    # attaches after loading (from the provider directory); None: unknown, the stated default calendar.
    # the provider directory's EU establishments (workflows.counting.attach_establishments), or None
    establishments: Establishments | None = field(default=None, compare=False, repr=False)

    def can_transition(self, source: str, target: str) -> bool:
        return any(target == t.target and (source in t.sources or WILDCARD in t.sources) for t in self.transitions)

    def targets_for(self, request_type: str, legal_basis: str) -> dict[str, ClockTarget]:
        """Clock targets for a case: every matching policy contributes; the more specific one wins per clock."""
        chosen: dict[str, tuple[int, ClockTarget]] = {}
        for policy in self.policies:
            if not policy.matches(request_type, legal_basis):
                continue
            for target in policy.targets:
                prev = chosen.get(target.clock)
                if prev is None or policy.specificity > prev[0]:
                    chosen[target.clock] = (policy.specificity, target)
        return {name: t for name, (_, t) in chosen.items()}

    def state_for_status(self, connector: str, status_name: str) -> str | None:
        """Map a tracker status name back to a workflow state (case-insensitive)."""
        wanted = status_name.casefold()
        for state in self.states.values():
            if state.status_for(connector).casefold() == wanted:
                return state.name
        return None

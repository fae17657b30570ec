"""`casebridge report`: per provider, legal basis, request type, agency or month, how many requests were
answered, refused (and why), how fast, and how many legal deadlines were met.

Pure code. Every clock figure comes from the one clock engine (``workflows.clocks.evaluate_case``);
milestones (sent, first response, fulfilled, partial, refused, redirected to MLA) are the first entry into
the workflow's ``[report]`` states in the status history, read up to ``now``. Working days are counted on
the workflow's report calendar (``[report] calendar``, by default the agency's business calendar) with
the same timelines the engine uses.

Definitions (printed under every report, see ``FORMULAS``):
- a request is *sent* once the provider received it (``submitted_at``, else the first entry into a sent
  state); cases never sent are left out and counted as such;
- compliance % = met / (met + breached) x 100 over the legal clocks (kind ``legal``) of the group's cases
  that were met or breached; clocks still running are in neither;
- the median is the middle value (the mean of the two middle ones); p90 is the nearest-rank 90th
  percentile (the value at rank ceil(0.9 n) of the sorted values).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import islice
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from casebridge.workflows.calendars import calendar_named, timeline_for
from casebridge.workflows.cases import Case, StatusChange, TrackedCase
from casebridge.workflows.clocks import ClockResult, evaluate_case
from casebridge.workflows.model import Calendar, ClockKind, ClockState, ReportStates, Workflow

__all__ = [
    "FORMULAS",
    "GROUPINGS",
    "CaseFacts",
    "ClockFigures",
    "Group",
    "ListedCase",
    "Report",
    "assemble",
    "build_report",
    "case_facts",
    "figures_of",
    "median",
    "p90",
]

GROUPINGS = ("provider", "legal_basis", "request_type", "agency", "month")
NO_REASON = "unspecified"
NO_AGENCY = "(none)"
OTHER = "(other)"  # small groups pooled together in an aggregate report
BATCH_SIZE = 2_000  # cases evaluated at once (report_clocks): 100,000 cases, 346 MB peak against 403 MB at 10,000
MIN_BATCH = 32  # fewer: one by one

FORMULAS = (
    "compliance % = met / (met + breached) x 100, over legal deadlines (clocks of kind legal) met or breached;"
    " running deadlines count in neither",
    "median: the middle value (mean of the two middle values); p90: nearest rank, the value at rank"
    " ceil(0.9 x n) of the sorted values",
    "days: calendar days (24 h) from provider receipt; working days: working time on the report calendar"
    " divided by its working-day length",
    "first response: first move to a first-response state; fulfilment: first move to fulfilled",
    "no reply past deadline: no first response yet and a clock of the case (legal deadline or follow-up) breached",
)


@dataclass(frozen=True, slots=True)
class OpenBreach:
    clock: str
    kind: str
    due_at: datetime | None
    overdue_seconds: float


@dataclass(frozen=True, slots=True)
class ClockFigures:
    """What the report counts of one case's clocks."""

    legal_met: int
    legal_breached: int
    legal_breached_open: int
    breached: bool  # any clock, legal or not
    open_breaches: tuple[OpenBreach, ...]  # breached and not stopped, in the workflow's clock order


def figures_of(results: Sequence[ClockResult]) -> ClockFigures:
    """The figures of one case's results (``clocks.evaluate_case``)."""
    legal = [r for r in results if r.kind == ClockKind.LEGAL]
    breached = [r for r in results if r.state == ClockState.BREACHED]
    return ClockFigures(
        legal_met=sum(1 for r in legal if r.state == ClockState.MET),
        legal_breached=sum(1 for r in legal if r.state == ClockState.BREACHED),
        legal_breached_open=sum(1 for r in legal if r.state == ClockState.BREACHED and r.stopped_at is None),
        breached=bool(breached),
        open_breaches=tuple(
            OpenBreach(r.name, str(r.kind), r.due_at, r.overdue_seconds) for r in breached if r.stopped_at is None
        ),
    )


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """One sent case as the report sees it."""

    reference: str
    title: str
    url: str | None
    state: str
    keys: tuple[str, ...]  # the group label of each grouping, in GROUPINGS order
    sent_at: datetime
    first_response: tuple[float, float] | None  # (calendar days, working days)
    fulfilment: tuple[float, float] | None
    full: bool
    partial: bool
    refused: bool
    refusal_reason: str | None
    redirected: bool
    no_reply_overdue: bool
    legal_met: int
    legal_breached: int
    legal_breached_open: int
    escalations: int
    open_breaches: tuple[OpenBreach, ...] = ()

    @property
    def provider(self) -> str:
        return self.keys[0]


class ListedCase(NamedTuple):
    """A case the report lists by name: one with an open breach (what the renderers print of it)."""

    reference: str
    title: str
    provider: str  # its provider group
    state: str
    url: str | None
    open_breaches: tuple[OpenBreach, ...]


_SENT, _FIRST, _FULFILLED, _PARTIAL, _REFUSED, _REDIRECTED, _ESCALATED = range(7)


@lru_cache(maxsize=8)
def _milestone_index(states: ReportStates, escalated: str | None) -> dict[str, tuple[int, ...]]:
    """Per state name, the milestones an entry into it marks (``_ESCALATED``: the escalation state)."""
    kinds = (states.sent, states.first_response, states.fulfilled, states.partial, states.refused, states.redirected)
    names = set().union(*kinds) | ({escalated} if escalated else set())
    return {n: tuple(k for k, found in enumerate((*kinds, {escalated})) if n in found) for n in names}


def _milestones(history: Sequence[StatusChange], index: dict[str, tuple[int, ...]], now: datetime) -> list[Any]:
    """In one pass over the changes up to ``now`` (in history order): the first entry into each milestone
    (``_SENT`` .. ``_REDIRECTED``, None when never) and, at ``_ESCALATED``, how many entries into the
    escalation state."""
    out: list[Any] = [None] * 6 + [0]
    for change in history:
        if change.at > now:
            continue
        for k in index.get(change.state, ()):
            if k == _ESCALATED:
                out[k] += 1
            elif out[k] is None:
                out[k] = change.at
    return out


class _Durations:
    """Calendar and working days between two instants on the report calendar."""

    def __init__(self, calendar: Calendar) -> None:
        self.timeline = timeline_for(calendar)
        self.day = 86400.0 if calendar.kind != "business" else float(calendar.day_seconds)

    def days(self, a: datetime, b: datetime) -> tuple[float, float]:
        a_e, b_e = a.timestamp(), b.timestamp()
        if b_e < a_e:
            b_e = a_e
        return (b_e - a_e) / 86400.0, self.timeline.between(a_e, b_e) / self.day


def case_facts(
    tracked: TrackedCase,
    history: Sequence[StatusChange],
    workflow: Workflow,
    now: datetime,
    *,
    zone: ZoneInfo,
    durations: _Durations | None = None,
    provider_of: Callable[[Case], str] | None = None,
    figures: ClockFigures | None = None,
) -> CaseFacts | None:
    """The report's view of one case at ``now``; None when the provider has not received it yet.
    ``provider_of`` names the provider group (the directory's canonical name); default: the case's text.
    ``figures``: the case's clock figures at ``now`` when already worked out (``report_clocks``)."""
    states = workflow.report
    case = tracked.case
    escalated = workflow.escalated_state
    found = _milestones(history, _milestone_index(states, escalated), now)
    sent_at = case.submitted_at or found[_SENT]
    if sent_at is None or sent_at > now:
        return None
    durations = durations or _Durations(calendar_named(workflow, states.calendar))
    first, fulfilled, refused = found[_FIRST], found[_FULFILLED], found[_REFUSED] is not None
    if figures is None:
        figures = figures_of(evaluate_case(case, history, workflow, now))  # the one clock engine
    return CaseFacts(
        reference=case.reference,
        title=case.title,
        url=tracked.url,
        state=tracked.state,
        keys=(
            case.provider if provider_of is None else provider_of(case),
            case.legal_basis.value,
            case.request_type.value,
            case.requesting_agency or NO_AGENCY,
            _month(sent_at, zone),
        ),
        sent_at=sent_at,
        first_response=durations.days(sent_at, first) if first is not None else None,
        fulfilment=durations.days(sent_at, fulfilled) if fulfilled is not None else None,
        full=fulfilled is not None,
        partial=fulfilled is None and found[_PARTIAL] is not None,
        refused=refused,
        refusal_reason=(case.refusal_reason or NO_REASON) if refused else None,
        redirected=found[_REDIRECTED] is not None,
        no_reply_overdue=first is None and figures.breached,
        legal_met=figures.legal_met,
        legal_breached=figures.legal_breached,
        legal_breached_open=figures.legal_breached_open,
        escalations=found[_ESCALATED],
        open_breaches=figures.open_breaches,
    )


def _month(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def median(values: Sequence[float]) -> float | None:
    """The middle of the sorted ``values`` (mean of the two middle ones); None when empty."""
    n = len(values)
    if n == 0:
        return None
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


def p90(values: Sequence[float]) -> float | None:
    """Nearest-rank 90th percentile of the sorted ``values``; None when empty."""
    if not values:
        return None
    return values[max(1, math.ceil(0.9 * len(values))) - 1]


COUNTS = (
    "requests",
    "answered_full",
    "answered_partial",
    "refused",
    "redirected_mla",
    "no_reply",
    "no_reply_overdue",
    "legal_met",
    "legal_breached",
    "legal_breached_open",
    "escalations",
)


@dataclass
class Group:
    """Figures of one group (or the total)."""

    label: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    refusals: dict[str, int] = field(default_factory=dict)  # reason -> count
    first_response: list[tuple[float, float]] = field(default_factory=list)
    fulfilment: list[tuple[float, float]] = field(default_factory=list)
    members: int = 0  # groups pooled into this one (aggregate "(other)")

    def add(self, f: CaseFacts) -> None:
        c = self.counts
        c["requests"] += 1
        c["answered_full"] += f.full
        c["answered_partial"] += f.partial
        c["refused"] += f.refused
        c["redirected_mla"] += f.redirected
        c["no_reply"] += f.first_response is None
        c["no_reply_overdue"] += f.no_reply_overdue
        c["legal_met"] += f.legal_met
        c["legal_breached"] += f.legal_breached
        c["legal_breached_open"] += f.legal_breached_open
        c["escalations"] += f.escalations
        if f.refusal_reason is not None:
            self.refusals[f.refusal_reason] = self.refusals.get(f.refusal_reason, 0) + 1
        if f.first_response is not None:
            self.first_response.append(f.first_response)
        if f.fulfilment is not None:
            self.fulfilment.append(f.fulfilment)

    def merge(self, other: Group, *, pooled: bool = True) -> None:
        """Add ``other``'s figures; ``pooled``: it is a whole group folded into this one ("(other)")."""
        for k, v in other.counts.items():
            self.counts[k] += v
        for k, v in other.refusals.items():
            self.refusals[k] = self.refusals.get(k, 0) + v
        self.first_response += other.first_response
        self.fulfilment += other.fulfilment
        if pooled:
            self.members += max(1, other.members)

    @property
    def compliance(self) -> float | None:
        met, breached = self.counts["legal_met"], self.counts["legal_breached"]
        return None if met + breached == 0 else 100.0 * met / (met + breached)

    def times(self, which: str) -> dict[str, float | None]:
        """median and p90 of calendar and working days for ``which`` (first_response | fulfilment)."""
        pairs = getattr(self, which)
        cal, work = map(sorted, zip(*pairs, strict=True)) if pairs else ([], [])
        return {"median_days": median(cal), "p90_days": p90(cal), "median_working_days": median(work),
                "p90_working_days": p90(work)}  # fmt: skip


@dataclass
class Report:
    now: datetime
    workflow: str
    calendar: Calendar
    zone: str
    date_from: date | None
    date_to: date | None
    total: Group
    groupings: dict[str, list[Group]]
    facts: list[ListedCase]  # the cases with an open breach (none in an aggregate report)
    not_sent: int
    refusal_reasons: list[str]  # the workflow's, then any other reason found
    aggregate: bool = False
    min_count: int = 0

    @property
    def open_breaches(self) -> list[ListedCase]:
        return sorted((f for f in self.facts if f.open_breaches), key=lambda f: f.reference)


def build_report(
    cases: Iterable[tuple[TrackedCase, Sequence[StatusChange]]],
    workflow: Workflow,
    now: datetime,
    *,
    by: Sequence[str] = ("provider",),
    date_from: date | None = None,
    date_to: date | None = None,
    aggregate: bool = False,
    min_count: int = 5,
    provider_of: Callable[[Case], str] | None = None,
) -> Report:
    """The report over every case sent between ``date_from`` and ``date_to`` (inclusive, dates in the
    report calendar's time zone). ``aggregate`` pools groups of fewer than ``min_count`` requests into
    one "(other)" group (renderers then also suppress small cells and leave out case data). ``provider_of``
    names each case's provider group (the provider directory's canonical name, so "Facebook" and "Meta
    Platforms Ireland Ltd" count as one provider); default: the case's own provider text."""
    calendar = calendar_named(workflow, workflow.report.calendar)
    zone = ZoneInfo(calendar.timezone)
    durations = _Durations(calendar)
    # Each case is counted once, into the cell of its five labels; the groupings merge the cells (a few
    # thousand at most), so five groupings cost little more than one.
    cells: dict[tuple[str, ...], Group] = {}
    facts: list[ListedCase] = []
    not_sent = 0
    for tracked, history, figures in _with_figures(cases, workflow, now):
        f = case_facts(
            tracked, history, workflow, now, zone=zone, durations=durations, provider_of=provider_of, figures=figures
        )
        if f is None:
            not_sent += 1
            continue
        day = f.sent_at.astimezone(zone).date()
        if (date_from is not None and day < date_from) or (date_to is not None and day > date_to):
            continue
        if f.open_breaches and not aggregate:  # the only per-case rows a report shows
            facts.append(ListedCase(f.reference, f.title, f.provider, f.state, f.url, f.open_breaches))
        cell = cells.get(f.keys)
        if cell is None:
            cell = cells[f.keys] = Group("")
        cell.add(f)
    return assemble(cells, facts, not_sent, workflow, now, by=by, date_from=date_from, date_to=date_to,
                    aggregate=aggregate, min_count=min_count)  # fmt: skip


def assemble(
    cells: dict[tuple[str, ...], Group],
    facts: list[ListedCase],
    not_sent: int,
    workflow: Workflow,
    now: datetime,
    *,
    by: Sequence[str],
    date_from: date | None,
    date_to: date | None,
    aggregate: bool,
    min_count: int,
) -> Report:
    """The report from its cells (the figures of the cases with the same five labels, ``GROUPINGS``
    order), the cases with an open breach, and how many were not sent yet."""
    calendar = calendar_named(workflow, workflow.report.calendar)
    total = Group("total")
    groups: dict[str, dict[str, Group]] = {g: {} for g in by}
    for keys, cell in cells.items():
        total.merge(cell, pooled=False)
        for g in by:
            label = keys[GROUPINGS.index(g)]
            group = groups[g].get(label)
            if group is None:
                group = groups[g][label] = Group(label)
            group.merge(cell, pooled=False)
    reasons = list(workflow.refusal_reasons)
    reasons += sorted(set(total.refusals) - set(reasons))
    ordered = {g: _ordered(g, list(found.values()), aggregate, min_count) for g, found in groups.items()}
    return Report(
        now=now.astimezone(UTC),
        workflow=workflow.name,
        calendar=calendar,
        zone=calendar.timezone,
        date_from=date_from,
        date_to=date_to,
        total=total,
        groupings=ordered,
        facts=sorted(facts, key=lambda f: f.reference),
        not_sent=not_sent,
        refusal_reasons=reasons,
        aggregate=aggregate,
        min_count=min_count,
    )


def _with_figures(
    cases: Iterable[tuple[TrackedCase, Sequence[StatusChange]]], workflow: Workflow, now: datetime
) -> Iterator[tuple[TrackedCase, Sequence[StatusChange], ClockFigures | None]]:
    """The cases with their clock figures worked out ``BATCH_SIZE`` at a time through the columnar engine
    (still streamed: never more than one chunk held); a smaller input is left to ``case_facts`` (None)."""
    it = iter(cases)
    while chunk := list(islice(it, BATCH_SIZE)):
        if len(chunk) < MIN_BATCH:  # numpy's set-up would not pay
            yield from ((tracked, history, None) for tracked, history in chunk)
            continue
        from casebridge.workflows.report_clocks import batch_figures  # numpy: only for large reports

        figures = batch_figures([t.case for t, _h in chunk], [h for _t, h in chunk], workflow, now)
        yield from ((t, h, f) for (t, h), f in zip(chunk, figures, strict=True))


def _ordered(grouping: str, groups: list[Group], aggregate: bool, min_count: int) -> list[Group]:
    if grouping == "month":
        groups.sort(key=lambda g: g.label)
    else:  # most requests first, then by name
        groups.sort(key=lambda g: (-g.counts["requests"], g.label))
    if not aggregate:
        return groups
    kept = [g for g in groups if g.counts["requests"] >= min_count]
    small = [g for g in groups if g.counts["requests"] < min_count]
    if small:
        other = Group(OTHER)
        for g in small:
            other.merge(g)
        kept.append(other)
    return kept

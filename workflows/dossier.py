"""The escalation dossier: one Markdown document per escalation, carrying what an NCB needs.

Contents follow shared/domain/README.md ("What an NCB escalation carries"). Every value that came
from case data goes through ``render.md_text``/``md_paragraphs``, so a field can never become markup;
only the labels, headings and tables written here are Markdown. Which case fields may leave the agency
is decided by an allowlist (``check_allowlist``); the reference, the Article 3 self-check and the
handling restrictions are always included because an escalation is not valid without them.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from casebridge.errors import ConfigError, validation_problem
from casebridge.workflows.cases import Case, TrackedCase
from casebridge.workflows.counting import statement
from casebridge.workflows.directory import Fact, Provider
from casebridge.workflows.model import ClockTarget, Workflow
from casebridge.workflows.render import md_link, md_paragraphs, md_text

CASE_FIELDS: frozenset[str] = frozenset(Case.model_fields)
ALWAYS_INCLUDED: frozenset[str] = frozenset(
    {"reference", "article3_checked_by", "article3_checked_at", "handling_restrictions"}
)
# Default: what the domain README says an escalation carries. Narrow it in [escalation] allowlist.
# Every field the Case model has is case metadata (it holds nothing a provider disclosed).
DEFAULT_ALLOWLIST: tuple[str, ...] = tuple(sorted(CASE_FIELDS))
DEFAULT_RESTRICTIONS = (
    "For police use only. Not to be disclosed to the provider or third parties, nor used as evidence, "
    "without the requesting agency's written consent."
)
ART3 = (
    "the matter has no predominantly political, military, religious or racial character "
    "(INTERPOL Constitution, Article 3)"
)


def check_allowlist(names: Iterable[str], *, section: str = "escalation") -> frozenset[str]:
    """The allowlist as a set. Raises ConfigError for a name that is not a case field: provider
    disclosures or ad-hoc keys can never be allowed by mistake."""
    allowed = frozenset(names)
    unknown = sorted(allowed - CASE_FIELDS)
    if unknown:
        raise ConfigError(
            f"{section}.allowlist <- unknown case field(s) {', '.join(map(repr, unknown))}; "
            f"allowed names: {', '.join(sorted(CASE_FIELDS))}"
        )
    return allowed | ALWAYS_INCLUDED


class EscalationConfig(BaseModel):
    """The ``[escalation]`` config section."""

    model_config = ConfigDict(extra="forbid")

    allowlist: list[str] = list(DEFAULT_ALLOWLIST)  # case fields that may leave the agency
    requesting_ncb: str | None = None  # e.g. "NCB Islamabad"
    handling_restrictions: str = DEFAULT_RESTRICTIONS  # used when a case states none

    @field_validator("allowlist")
    @classmethod
    def _known_fields(cls, names: list[str]) -> list[str]:
        try:
            check_allowlist(names)
        except ConfigError as exc:
            raise ValueError(str(exc).split("<- ", 1)[-1]) from None
        return names

    @classmethod
    def from_raw(cls, raw: dict[str, Any] | None, *, section: str = "escalation") -> EscalationConfig:
        """Raises ConfigError as ``section.key <- problem``."""
        try:
            return cls.model_validate(raw or {})
        except ValidationError as exc:
            raise ConfigError(validation_problem(exc, cls, section)) from None


class ClockLike(Protocol):
    """What the dossier and the selection read of a ``workflows.clocks.ClockResult``."""

    name: str
    state: Any
    due_at: datetime | None
    stopped_at: datetime | None
    overdue_seconds: float
    target: ClockTarget


@dataclass(frozen=True)
class Step:
    """The escalation being written: which clock, which level, which repeat, what is asked."""

    dedupe_key: str
    clock: str
    level: int
    level_name: str
    repeat: int
    action: str


def fmt_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{rest // 60} min" if rest >= 60 else "",
    ]
    return " ".join(p for p in parts if p) or "0 min"


def fmt_time(value: datetime | date | None, tz: str) -> str:
    """UTC and the case's own time zone, so the NCB abroad and the officer read the same instant."""
    if value is None:
        return "not set"
    if not isinstance(value, datetime):
        return value.isoformat()
    utc = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if tz == "UTC":
        return utc
    local = value.astimezone(zoneinfo.ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    return f"{utc} ({local} {tz})"


class _Doc:
    """Collects Markdown lines; ``field`` writes a bullet only for allowed, non-empty case fields."""

    def __init__(self, case: Case, allowed: frozenset[str]) -> None:
        self.case, self.allowed, self.lines = case, allowed, []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def heading(self, text: str, level: int = 2) -> None:
        self.add("#" * level + " " + text, "")

    def ok(self, name: str) -> bool:
        return name in self.allowed and getattr(self.case, name) not in (None, "", ())

    def bullets(self, items: Sequence[tuple[str, str | None]]) -> None:
        rows = [f"- **{label}:** {value}" for label, value in items if value]
        if rows:
            self.add(*rows, "")

    def value(self, name: str) -> str | None:
        """The field as escaped Markdown, or None when not allowed or empty."""
        if not self.ok(name):
            return None
        raw = getattr(self.case, name)
        if isinstance(raw, datetime | date):
            return md_text(fmt_time(raw, self.case.timezone))
        return md_text(getattr(raw, "value", raw))

    def paragraphs(self, name: str) -> None:
        if self.ok(name):
            self.add(*[p for para in md_paragraphs(getattr(self.case, name)) for p in (para, "")])

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.add("| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|")
        self.add(*("| " + " | ".join(cell or " " for cell in row) + " |" for row in rows), "")


def build_dossier(
    tracked: TrackedCase,
    clocks: Sequence[ClockLike],
    step: Step,
    workflow: Workflow,
    *,
    allowed: frozenset[str],
    now: datetime,
    requesting_ncb: str | None = None,
    default_restrictions: str = DEFAULT_RESTRICTIONS,
    provider: Provider | None = None,
) -> str:
    """The dossier's Markdown. ``allowed`` comes from ``check_allowlist``; ``provider`` is the case's
    provider directory entry (its addressee and channels are cited with their sources)."""
    case, doc = tracked.case, _Doc(tracked.case, allowed | ALWAYS_INCLUDED)
    clock = next((c for c in clocks if c.name == step.clock), None)
    label = md_text(_clock_label(workflow, step.clock))
    repeat = f", repeat {step.repeat}" if step.repeat else ""
    doc.heading(f"INTERPOL NCB escalation: {md_text(case.reference)}", 1)
    doc.add(f"**{label} overdue. Level {step.level}: {md_text(step.level_name)}{repeat}.**", "")
    doc.bullets(
        [
            ("Case", md_link(md_text(case.reference), tracked.url)),
            ("Dedupe key", md_text(step.dedupe_key)),
            ("Prepared", md_text(fmt_time(now, case.timezone))),
        ]
    )
    _action(doc, step)
    _urgency(doc, clock, label, workflow)
    _authority(doc, requesting_ncb)
    _offence(doc)
    _provider_and_identifiers(doc, provider)
    _order_and_requests(doc, tracked, workflow)
    _clocks(doc, clocks, workflow)
    doc.heading("Article 3 self-check")
    doc.add(
        f"Confirmed by {md_text(case.article3_checked_by or 'nobody')} on "
        f"{md_text(fmt_time(case.article3_checked_at, case.timezone))} that {md_text(ART3)}.",
        "",
    )
    doc.heading("Handling restrictions")
    doc.add(*md_paragraphs(case.handling_restrictions or default_restrictions), "")
    return "\n".join(doc.lines).rstrip() + "\n"


def _clock_label(workflow: Workflow, name: str) -> str:
    defn = workflow.clocks.get(name)
    return defn.label if defn and defn.label else name.replace("_", " ").capitalize()


def _action(doc: _Doc, step: Step) -> None:
    doc.heading("Action requested of the NCB")
    case_action = doc.case.ncb_action if doc.ok("ncb_action") else None
    doc.add(*md_paragraphs(case_action or step.action or "Coordinate with the NCB of the provider's country."), "")
    if case_action and step.action and step.action != case_action:
        doc.add(f"Policy for this level: {md_text(step.action)}", "")


def _counted(doc: _Doc, clock: ClockLike, workflow: Workflow) -> str | None:
    """The law's deadline as the law states it ("due 2027-05-04 24:00 Europe/Dublin, counted under Reg.
    (EEC, Euratom) No 1182/71 Art. 3"), for a period not counted as elapsed time."""
    if clock.target.counting == "elapsed" or clock.due_at is None:
        return None
    return statement(clock, doc.case, workflow.establishments).text


def _urgency(doc: _Doc, clock: ClockLike | None, label: str, workflow: Workflow) -> None:
    doc.heading("Urgency")
    threat = doc.case.urgency == "threat_to_life" or doc.case.request_type == "emergency"
    counted = _counted(doc, clock, workflow) if clock else None
    doc.bullets(
        [
            ("Urgency", doc.value("urgency")),
            ("Threat to life", ("YES" if threat else "not indicated") if doc.ok("urgency") else None),
            ("Request type", doc.value("request_type")),
            (f"{label} due", md_text(fmt_time(clock.due_at, doc.case.timezone)) if clock else None),
            ("Deadline in law", md_text(counted) if counted else None),
            ("Overdue by", md_text(fmt_duration(clock.overdue_seconds)) if clock else None),
        ]
    )


def _authority(doc: _Doc, requesting_ncb: str | None) -> None:
    doc.heading("Requesting authority")
    doc.bullets(
        [
            ("Requesting NCB", md_text(requesting_ncb) if requesting_ncb else None),
            ("Agency", doc.value("requesting_agency")),
            ("Officer", doc.value("officer")),
            ("Officer e-mail", doc.value("officer_email")),
            ("Time zone", doc.value("timezone")),
        ]
    )


def _offence(doc: _Doc) -> None:
    doc.heading("Offence")
    doc.bullets(
        [
            ("Offence", doc.value("offence")),
            ("Statute", doc.value("statute")),
            ("Penalty", doc.value("penalty")),
            ("Case title", doc.value("title")),
        ]
    )
    if doc.ok("facts"):
        doc.heading("Facts", 3)
        doc.paragraphs("facts")


def _cited(text: str, fact: Fact) -> str:
    return f"{md_text(text)} ({md_link('source', fact.source)}, checked {fact.checked.isoformat()})"


def _directory_lines(doc: _Doc, provider: Provider) -> list[tuple[str, str | None]]:
    """What the provider directory says: the addressee for this legal basis and the channels, cited."""
    entity = provider.addressee(str(doc.case.legal_basis))
    lines: list[tuple[str, str | None]] = [("Directory entry", md_text(provider.name))]
    if entity is not None:
        role = entity.role.replace("_", " ")
        lines.append(("Addressee", _cited(f"{entity.name} ({entity.country or '?'}, {role})", entity.fact)))
    for channel in provider.request_channels():
        lines.append(("Request channel", _cited(f"{channel.kind}: {channel.address}", channel.fact)))
    for channel in provider.emergency_channels():
        lines.append(("Emergency channel", _cited(f"{channel.kind}: {channel.address}", channel.fact)))
    if provider.foreign_orders_fact is not None:
        answer = "yes" if provider.foreign_orders else "no"
        lines.append(("Accepts foreign orders directly", _cited(answer, provider.foreign_orders_fact)))
    if provider.preservation_fact is not None:
        ext = f", +{provider.preservation_extension} on request" if provider.preservation_extension else ""
        lines.append(("Preservation", _cited(f"{provider.preservation}{ext}", provider.preservation_fact)))
    return lines


def _provider_and_identifiers(doc: _Doc, provider: Provider | None = None) -> None:
    doc.heading("Provider")
    doc.bullets(
        [
            ("Provider", doc.value("provider")),
            ("Legal entity", doc.value("provider_legal_entity")),
            ("Country", doc.value("provider_country")),
            *(_directory_lines(doc, provider) if provider is not None and doc.ok("provider") else []),
        ]
    )
    if doc.ok("identifiers"):
        tz = doc.case.timezone
        doc.heading(f"Identifiers (times in UTC and {md_text(tz)})", 3)
        doc.table(
            ["Type", "Value", "From", "To"],
            [
                [
                    md_text(i.type.value),
                    md_text(i.value),
                    md_text(fmt_time(i.range_from, tz)) if i.range_from else "",
                    md_text(fmt_time(i.range_to, tz)) if i.range_to else "",
                ]
                for i in doc.case.identifiers
            ],
        )


def _order_and_requests(doc: _Doc, tracked: TrackedCase, workflow: Workflow) -> None:
    doc.heading("Legal basis and court order")
    doc.bullets(
        [
            ("Legal basis", doc.value("legal_basis")),
            ("Court order", doc.value("court_order_ref")),
            ("Court", doc.value("court")),
            ("Order date", doc.value("order_date")),
        ]
    )
    doc.heading("Prior requests")
    doc.bullets(
        [
            ("Received by the provider", doc.value("submitted_at")),
            ("Provider ticket", doc.value("provider_ticket")),
            ("Acknowledged", doc.value("acknowledged_at")),
            ("Responded", doc.value("responded_at")),
            ("Outcome", doc.value("outcome")),
            ("Extensions used", doc.value("extensions_used") if doc.case.extensions_used else None),
            ("Preservation expires", doc.value("preservation_expires_at")),
        ]
    )
    if doc.ok("refusal_text"):
        doc.add("**Refusal text from the provider:**", "")
        doc.paragraphs("refusal_text")
    if tracked.history:
        doc.heading("Case history", 3)
        doc.table(
            ["When", "State"],
            [
                [md_text(fmt_time(ch.at, doc.case.timezone)), md_text(_state_label(workflow, ch.state))]
                for ch in tracked.history
            ],
        )


def _state_label(workflow: Workflow, state: str) -> str:
    found = workflow.states.get(state)
    return found.label if found else state


def _clocks(doc: _Doc, clocks: Sequence[ClockLike], workflow: Workflow) -> None:
    doc.heading("Clocks")
    clocks = [c for c in clocks if str(getattr(c.state, "value", c.state)) != "not_started"]
    if not clocks:
        doc.add("No clock has started.", "")
        return
    tz = doc.case.timezone
    doc.table(
        ["Clock", "State", "Due", "Overdue", "On lapse", "Source"],
        [
            [
                md_text(_clock_label(workflow, c.name)),
                md_text(getattr(c.state, "value", c.state)),
                md_text("; ".join(filter(None, (fmt_time(c.due_at, tz), _counted(doc, c, workflow))))),
                md_text(fmt_duration(c.overdue_seconds)) if c.overdue_seconds > 0 else "",
                md_text(c.target.on_lapse),
                md_text(c.target.source),
            ]
            for c in clocks
        ],
    )

"""Case <-> Redmine issue fields. Pure functions: no network.

The ``Case data`` long-text field holds the full case record as JSON, so a case round-trips exactly;
the other fields (reference, provider, ...) are copies for people to filter and sort on. Times are
UTC strings ``YYYY-MM-DDTHH:MM:SSZ`` (Redmine has no date-time custom field; this form sorts).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from casebridge.connectors.redmine.config import TIME_FORMAT
from casebridge.connectors.redmine.text import md_escape
from casebridge.errors import RejectedError, TrackerError
from casebridge.workflows.cases import Case, ClockFields, SlaFields
from casebridge.workflows.model import ClockState

log = logging.getLogger(__name__)

CLOCK_STATES = frozenset(ClockState)


def fmt_time(value: datetime | None) -> str:
    """UTC, whole seconds, ``Z`` (the only form Redmine's filters accept)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError("naive datetime: casebridge times carry an offset")
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def required_time(value: str | None, what: str) -> datetime:
    """A time stamp Redmine always sends (``created_on``); missing or malformed: TrackerError naming it."""
    moment = parse_time(value)
    if moment is None:
        raise TrackerError(f"redmine: {what}: time {value!r} is not YYYY-MM-DDTHH:MM:SSZ")
    return moment


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        log.warning("redmine: ignoring malformed time %r (expected YYYY-MM-DDTHH:MM:SSZ)", value)
        return None


def encode_bool(value: bool) -> str:
    """Redmine stores whatever a bool field is sent ('true', 'maybe'): only '1'/'0' mean anything."""
    if not isinstance(value, bool):
        raise RejectedError(f"bool custom field value must be True/False, got {value!r}")
    return "1" if value else "0"


def case_field_values(case: Case, ids: dict[str, int], provider: str | None = None) -> list[dict[str, Any]]:
    """The case's custom field values; ``provider`` is the Provider field's (the canonical name, default
    the case's own text)."""
    values = {
        "reference": case.reference,
        "provider": provider or case.provider,
        "request_type": str(case.request_type),
        "legal_basis": str(case.legal_basis),
        "court_order": encode_bool(case.court_order_ref is not None),
        "submitted_at": fmt_time(case.submitted_at),
        "case_data": json.dumps(case.to_record(), ensure_ascii=False, sort_keys=True),
        "refusal_reason": case.refusal_reason or "",
    }
    return [{"id": ids[k], "value": v} for k, v in values.items()]


def sla_field_values(sla: SlaFields, ids: dict[str, int], clocks: set[str]) -> list[dict[str, Any]]:
    """Only the fields ``sla`` carries. Raises RejectedError for unknown clocks or states."""
    out: list[dict[str, Any]] = []
    for name, fields in sla.clocks.items():
        if name not in clocks:
            raise RejectedError(f"SLA fields for unknown clock {name!r} (workflow clocks: {', '.join(sorted(clocks))})")
        if str(fields.state) not in CLOCK_STATES:
            raise RejectedError(f"SLA state {fields.state!r} of clock {name!r} is not one of {sorted(CLOCK_STATES)}")
        out += [
            {"id": ids[f"sla_due:{name}"], "value": fmt_time(fields.due_at)},
            {"id": ids[f"sla_warn:{name}"], "value": fmt_time(fields.warn_at)},
            {"id": ids[f"sla_state:{name}"], "value": str(fields.state)},
        ]
    out.append({"id": ids["escalation_level"], "value": str(int(sla.escalation_level))})
    return out


def sla_from(values: dict[int, Any], ids: dict[str, int], clocks: list[str]) -> SlaFields:
    result: dict[str, ClockFields] = {}
    for name in clocks:
        state = values.get(ids.get(f"sla_state:{name}", -1)) or ""
        if not state:
            continue
        result[name] = ClockFields(
            due_at=parse_time(values.get(ids[f"sla_due:{name}"])),
            warn_at=parse_time(values.get(ids[f"sla_warn:{name}"])),
            state=state,
        )
    level = values.get(ids.get("escalation_level", -1)) or "0"
    return SlaFields(clocks=result, escalation_level=int(level) if str(level).isdigit() else 0)


def case_from(issue: dict[str, Any], values: dict[int, Any], ids: dict[str, int]) -> Case | None:
    """The case from ``Case data``; else rebuilt from the visible fields; None if neither works."""
    raw = values.get(ids.get("case_data", -1))
    if raw:
        try:
            return Case.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as exc:
            log.warning(
                "redmine: issue #%s: Case data is not a valid case (%s); using the fields",
                issue.get("id"),
                str(exc).splitlines()[0],
            )
    try:
        return Case.model_validate(  # the enums arrive as their tracker strings: validated, not trusted
            {
                "reference": values.get(ids["reference"]) or "",
                "title": issue.get("subject") or "(no subject)",
                "provider": values.get(ids["provider"]) or "unknown",
                "request_type": values.get(ids["request_type"]) or "",
                "legal_basis": values.get(ids["legal_basis"]) or "",
                "submitted_at": parse_time(values.get(ids["submitted_at"])),
            }
        )
    except ValidationError as exc:
        log.warning(
            "redmine: issue #%s is not a casebridge case (%d problems); skipped",
            issue.get("id"),
            exc.error_count(),
        )
        return None


def description_markdown(case: Case) -> str:
    """The issue description, as Markdown with every case value escaped (rendered per instance)."""
    rows = [
        ("Reference", case.reference),
        (
            "Provider",
            case.provider + (f" ({case.provider_legal_entity})" if case.provider_legal_entity else ""),
        ),
        ("Provider ticket", case.provider_ticket),
        ("Request type", str(case.request_type)),
        ("Legal basis", str(case.legal_basis)),
        ("Court order", case.court_order_ref),
        ("Requesting agency", case.requesting_agency),
        ("Officer", case.officer),
        ("Submitted at", fmt_time(case.submitted_at) or None),
        ("Offence", case.offence),
    ]
    lines = [f"* **{label}:** {md_escape(str(value))}" for label, value in rows if value]
    if case.facts:
        lines += ["", "**Facts:** " + md_escape(case.facts)]
    if case.identifiers:
        lines += ["", "**Identifiers:**", ""]
        lines += [f"* {md_escape(str(i.type))}: {md_escape(i.value)}" for i in case.identifiers]
    lines += ["", "_Maintained by casebridge: edit the case through intake, not this text._"]
    return "\n".join(lines)

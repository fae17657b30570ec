"""Configuration of the Redmine connector and the custom fields it uses.

Every custom field is found by *name* on the server (ids differ between Redmine instances and change
when a field is recreated); the names below are the defaults, each can be renamed in the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import ConfigDict, Field

from casebridge.connectors import ConnectorConfig
from casebridge.connectors.field_names import TrackerFieldNames
from casebridge.connectors.secrets import SecretRef, TrackerUrl
from casebridge.workflows.model import ClockState, Workflow

# Redmine has no date-time custom field: times are strings in this one sortable UTC form.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TIME_REGEXP = r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\z"


class RedmineFieldNames(TrackerFieldNames):
    """Names of the Redmine custom fields: the common set plus the case fields Redmine shows as columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_type: str = "Request type"
    legal_basis: str = "Legal basis"
    court_order: str = "Court order"
    submitted_at: str = "Submitted at"


class RedmineConfig(ConnectorConfig):
    """``[tracker]`` section for ``connector = "redmine"``."""

    url: TrackerUrl
    api_key: SecretRef
    project: str = Field(min_length=1, description="identifier of the project holding the cases")
    tracker: str = "Data request"
    liaison_project: str | None = Field(default=None, description="identifier of the NCB liaison project")
    liaison_tracker: str = "NCB escalation"
    liaison_status: str = "New"  # default status of the liaison tracker (created by setup if missing)
    role: str = "Case officer"  # the role setup gives the workflow's transitions to
    fields: RedmineFieldNames = RedmineFieldNames()
    statuses: dict[str, str] = Field(
        default_factory=dict,
        description="workflow state -> Redmine status name, overriding the workflow file",
    )
    text_formatting: Literal["textile", "markdown", "common_mark"] = "textile"  # Redmine 5.0's default
    timeout: float = Field(default=30.0, gt=0)
    retry_attempts: int = Field(default=5, ge=1, le=20)
    retry_ceiling: float = Field(default=30.0, gt=0)
    verify_writes: bool = True  # re-read after SLA writes: Redmine ignores unknown fields silently


@dataclass(frozen=True)
class FieldSpec:
    """One custom field the workflow needs, as setup creates it and the connector expects it."""

    key: str  # internal name: "reference", "sla_due:legal_deadline", ...
    name: str
    format: str  # Redmine field_format: string, text, list, bool, int
    liaison: bool = False  # also (or only) on the liaison tracker
    cases: bool = True
    possible_values: tuple[str, ...] = ()
    regexp: str = ""
    searchable: bool = False
    filter: bool = True


def field_specs(config: RedmineConfig, workflow: Workflow) -> list[FieldSpec]:
    """The custom fields for ``workflow``, in the order setup creates them."""
    from casebridge.workflows.cases import LegalBasis, RequestType

    n = config.fields
    specs = [
        FieldSpec("reference", n.reference, "string", liaison=True, searchable=True),
        FieldSpec("provider", n.provider, "string", searchable=True),
        FieldSpec("request_type", n.request_type, "list", possible_values=tuple(RequestType)),
        FieldSpec("legal_basis", n.legal_basis, "list", possible_values=tuple(LegalBasis)),
        FieldSpec("court_order", n.court_order, "bool"),
        FieldSpec("submitted_at", n.submitted_at, "string", regexp=TIME_REGEXP),
        FieldSpec("case_data", n.case_data, "text", filter=False),
        FieldSpec("refusal_reason", n.refusal_reason, "list", possible_values=workflow.refusal_reasons),
        FieldSpec("escalation_level", n.escalation_level, "int", liaison=True),
        FieldSpec("escalation_key", n.escalation_key, "string", liaison=True, cases=False),
    ]
    for clock in workflow.clocks.values():
        label = clock.label or clock.name
        specs += [
            FieldSpec(f"sla_due:{clock.name}", n.sla_due.format(clock=label), "string", regexp=TIME_REGEXP),
            FieldSpec(f"sla_warn:{clock.name}", n.sla_warn.format(clock=label), "string", regexp=TIME_REGEXP),
            FieldSpec(
                f"sla_state:{clock.name}",
                n.sla_state.format(clock=label),
                "list",
                possible_values=tuple(ClockState),
            ),
        ]
    if config.liaison_project is None:
        specs = [s for s in specs if s.cases]
    return specs


def status_names(config: RedmineConfig, workflow: Workflow) -> dict[str, str]:
    """workflow state -> Redmine status name (config overrides, else ``State.status_for("redmine")``)."""
    return {name: config.statuses.get(name, state.status_for("redmine")) for name, state in workflow.states.items()}


TextFormat = Literal["textile", "markdown", "common_mark"]

"""Which custom fields the Jira connector needs, finding them by name, and what an admin must add."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from casebridge.connectors import Missing
from casebridge.connectors.jira.cases import jql_string
from casebridge.errors import NotFoundError, RejectedError
from casebridge.workflows.model import Workflow

if TYPE_CHECKING:
    from casebridge.connectors.jira import JiraConnector
    from casebridge.connectors.jira.cases import CaseOps

log = logging.getLogger(__name__)

CF = "com.atlassian.jira.plugin.system.customfieldtypes:"
TEXT, TEXTAREA, DATETIME, NUMBER = CF + "textfield", CF + "textarea", CF + "datetime", CF + "float"
SEARCHERS = {
    TEXT: CF + "textsearcher",
    TEXTAREA: CF + "textsearcher",
    DATETIME: CF + "datetimerange",
    NUMBER: CF + "exactnumber",
}
TYPE_LABELS = {
    TEXT: "Text Field (single line)",
    TEXTAREA: "Text Field (multi-line)",
    DATETIME: "Date Time Picker",
    NUMBER: "Number Field",
}


@dataclass(frozen=True)
class FieldSpec:
    role: str  # "reference", "case_data", "escalation_level", "escalation_key", "sla:<clock>:<due|warn|state>"
    name: str
    type: str


def needed_fields(names: Any, workflow: Workflow, *, liaison: bool) -> list[FieldSpec]:
    """The custom fields for ``workflow``; ``names`` is the config's JiraFieldNames."""
    specs = [
        FieldSpec("reference", names.reference, TEXT),
        FieldSpec("case_data", names.case_data, TEXTAREA),
        FieldSpec("escalation_level", names.escalation_level, NUMBER),
        FieldSpec("refusal_reason", names.refusal_reason, TEXT),
        FieldSpec("provider", names.provider, TEXT),
    ]
    for clock in workflow.clocks.values():
        label = clock.label or clock.name
        specs += [
            FieldSpec(f"sla:{clock.name}:due", names.sla_due.format(clock=label), DATETIME),
            FieldSpec(f"sla:{clock.name}:warn", names.sla_warn.format(clock=label), DATETIME),
            FieldSpec(f"sla:{clock.name}:state", names.sla_state.format(clock=label), TEXT),
        ]
    if liaison:
        specs.append(FieldSpec("escalation_key", names.escalation_key, TEXT))
    return specs


def match_fields(jira_fields: list[dict[str, Any]], specs: list[FieldSpec]) -> tuple[dict[str, str], list[FieldSpec]]:
    """(role -> field id, specs not found). Names match case-insensitively; of several custom fields
    with one name (Jira allows that) the oldest wins, with a warning."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for fdef in jira_fields:
        if fdef.get("custom"):
            by_name.setdefault(str(fdef.get("name", "")).casefold(), []).append(fdef)
    found: dict[str, str] = {}
    missing: list[FieldSpec] = []
    for spec in specs:
        candidates = sorted(by_name.get(spec.name.casefold(), []), key=lambda f: _field_number(f["id"]))
        if not candidates:
            missing.append(spec)
            continue
        if len(candidates) > 1:
            log.warning(
                "jira: %d custom fields are named %r; using %s",
                len(candidates),
                spec.name,
                candidates[0]["id"],
            )
        actual = (candidates[0].get("schema") or {}).get("custom")
        if actual and actual != spec.type:
            log.warning("jira: field %r is %s, expected %s", spec.name, actual, spec.type)
        found[spec.role] = candidates[0]["id"]
    return found, missing


def _field_number(field_id: str) -> int:
    tail = field_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def missing_field(spec: FieldSpec) -> Missing:
    return Missing(
        "custom field",
        spec.name,
        f"create a '{TYPE_LABELS[spec.type]}' custom field named {spec.name!r} and add it to the project's "
        "create and edit screens (`casebridge setup jira --apply` creates it when the account may)",
    )


def field_body(spec: FieldSpec) -> dict[str, str]:
    return {
        "name": spec.name,
        "type": spec.type,
        "searcherKey": SEARCHERS[spec.type],
        "description": "Maintained by casebridge; do not edit by hand.",
    }


class SchemaChecks:
    """What the Jira project lacks: project, issue type, statuses, link type, transitions."""

    def __init__(self, connector: JiraConnector, ops: CaseOps) -> None:
        self.c = connector
        self.cfg = connector.config
        self.search = ops.search

    def check_project(self, project: str, issue_type: str, *, statuses: bool) -> list[Missing]:
        http = self.c.http()
        try:
            info = http.call("GET", f"project/{project}")
        except NotFoundError:
            return [Missing("project", project, "create the project or fix [jira] project")]
        types = {t["name"].casefold() for t in info.get("issueTypes", [])}
        if issue_type.casefold() not in types:
            return [Missing("issue type", issue_type, f"add issue type {issue_type!r} to project {project}")]
        if not statuses:
            return []
        per_type = http.call("GET", f"project/{project}/statuses") or []
        have = {
            s["name"].casefold()
            for t in per_type
            if t["name"].casefold() == issue_type.casefold()
            for s in t.get("statuses", [])
        }
        return [
            Missing(
                "status",
                self.c.status_name(state),
                f"add status {self.c.status_name(state)!r} to the "
                f"workflow of {project}/{issue_type} (or map state {state!r} in [jira] status_names)",
            )
            for state in self.c.workflow.states
            if self.c.status_name(state).casefold() not in have
        ]

    def check_link_type(self, name: str) -> list[Missing]:
        types = (self.c.http().call("GET", "issueLinkType") or {}).get("issueLinkTypes", [])
        if any(t["name"].casefold() == name.casefold() for t in types):
            return []
        return [Missing("issue link type", name, "add it under Jira settings > Issues > Issue linking")]

    def check_transitions(self) -> list[Missing]:
        """Jira exposes a workflow's transitions only per issue, so one issue in each status is sampled;
        statuses no issue is in yet cannot be checked (logged)."""
        missing: list[Missing] = []
        for state in self.c.workflow.states:
            outgoing = [t.target for t in self.c.workflow.transitions if state in t.sources or "*" in t.sources]
            if not outgoing:
                continue
            jql = (
                f"project = {jql_string(self.cfg.project)} "
                f"AND status = {jql_string(self.c.status_name(state))} "
                "ORDER BY key ASC"
            )
            try:
                sample = next(iter(self.search(jql, ["status"], page_size=1)), None)
            except RejectedError as exc:
                # an unknown status is reported as a missing status already; anything else (405 from a
                # proxy, a search the account may not run) must not pass as "nothing missing"
                log.warning("jira: transitions from %r not checked: the search was refused (%s)", state, exc)
                continue
            if sample is None:
                log.info("jira: no issue in status %r; its transitions are checked on first use", state)
                continue
            listed = self.c.http().call("GET", f"issue/{sample['key']}/transitions") or {}
            reachable = {t["to"]["name"].casefold() for t in listed.get("transitions", [])}
            for target in outgoing:
                if self.c.status_name(target).casefold() not in reachable:
                    name = f"{self.c.status_name(state)} -> {self.c.status_name(target)}"
                    missing.append(Missing("transition", name, f"add it to the workflow of project {self.cfg.project}"))
        return missing

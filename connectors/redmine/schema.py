"""What the Redmine server holds for our workflow, read over REST, and what it lacks.

Ids of trackers, statuses and custom fields are resolved by name once per connector. Custom fields are
read from the project (``include=issue_custom_fields``, visible to any member for fields that are not
"for all projects", which is how setup creates them) and, for an administrator, from
``/custom_fields.json`` (format, "used as a filter", trackers).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from casebridge.connectors import Missing
from casebridge.connectors.redmine.config import FieldSpec, RedmineConfig, field_specs, status_names
from casebridge.connectors.redmine.setup import transition_pairs
from casebridge.errors import NotFoundError, PermissionDenied
from casebridge.workflows.model import Workflow

log = logging.getLogger(__name__)

Get = Callable[..., dict[str, Any]]
SETUP = "run `casebridge setup redmine` and have a Redmine administrator run the script with rails runner"


@dataclass
class Schema:
    user_id: int = 0
    login: str = ""
    admin: bool = False
    project_id: int = 0
    liaison_project_id: int | None = None
    tracker_id: int = 0
    liaison_tracker_id: int | None = None
    status_ids: dict[str, int] = field(default_factory=dict)  # Redmine status name -> id
    fields: dict[str, int] = field(default_factory=dict)  # FieldSpec.key -> custom field id
    specs: dict[str, FieldSpec] = field(default_factory=dict)  # FieldSpec.key -> spec
    admin_fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> /custom_fields.json entry

    @property
    def status_names(self) -> dict[int, str]:
        return {i: n for n, i in self.status_ids.items()}


def inspect_schema(get: Get, config: RedmineConfig, workflow: Workflow) -> tuple[Schema, list[Missing]]:
    """Read the server's schema. Raises AuthenticationFailed / TrackerUnreachable, never for what is
    missing: that is returned as ``Missing`` entries."""
    me = get("/users/current.json")["user"]
    schema = Schema(user_id=me["id"], login=me.get("login", ""), admin=bool(me.get("admin")))
    missing: list[Missing] = []
    trackers = {t["name"]: t["id"] for t in get("/trackers.json")["trackers"]}
    schema.status_ids = {s["name"]: s["id"] for s in get("/issue_statuses.json")["issue_statuses"]}

    wanted_trackers = [config.tracker] + ([config.liaison_tracker] if config.liaison_project else [])
    for name in wanted_trackers:
        if name not in trackers:
            missing.append(Missing("tracker", name, f"Administration > Trackers > New tracker, or {SETUP}"))
    schema.tracker_id = trackers.get(config.tracker, 0)
    schema.liaison_tracker_id = trackers.get(config.liaison_tracker) if config.liaison_project else None

    wanted_statuses = list(status_names(config, workflow).values())
    if config.liaison_project:
        wanted_statuses.append(config.liaison_status)
    for name in dict.fromkeys(wanted_statuses):
        if name not in schema.status_ids:
            missing.append(Missing("status", name, f"Administration > Issue statuses > New status, or {SETUP}"))

    project_fields: dict[str, dict[str, int]] = {}
    for ident, tracker in [(config.project, config.tracker)] + (
        [(config.liaison_project, config.liaison_tracker)] if config.liaison_project else []
    ):
        project = _project(get, ident, tracker, missing)
        if project is None:
            continue
        if ident == config.project:
            schema.project_id = project["id"]
        else:
            schema.liaison_project_id = project["id"]
        project_fields[ident] = {f["name"]: f["id"] for f in project.get("issue_custom_fields", [])}

    if schema.admin:
        try:
            schema.admin_fields = {
                f["name"]: f for f in get("/custom_fields.json")["custom_fields"] if f.get("customized_type") == "issue"
            }
        except PermissionDenied:
            log.info("redmine: /custom_fields.json refused; custom field settings not verified")

    for spec in field_specs(config, workflow):
        schema.specs[spec.key] = spec
        where = (config.project if spec.cases else config.liaison_project) or ""
        field_id = _field_id(schema, spec, project_fields.get(where, {}), where, missing)
        if field_id is not None:
            schema.fields[spec.key] = field_id
    return schema, missing


def _project(get: Get, ident: str, tracker: str, missing: list[Missing]) -> dict[str, Any] | None:
    try:
        project: dict[str, Any] = get(f"/projects/{ident}.json", include="trackers,issue_custom_fields")["project"]
    except NotFoundError:
        missing.append(
            Missing(
                "project",
                ident,
                f"create it (identifier {ident!r}, module Issue tracking) and add the API user as a member, or {SETUP}",
            )
        )
        return None
    if tracker not in {t["name"] for t in project.get("trackers", [])}:
        missing.append(
            Missing(
                "tracker in project",
                f"{tracker} in {ident}",
                f"Project {ident} > Settings > Issue tracking: tick {tracker!r}",
            )
        )
    return project


def _field_id(
    schema: Schema, spec: FieldSpec, in_project: dict[str, int], ident: str, missing: list[Missing]
) -> int | None:
    admin_entry = schema.admin_fields.get(spec.name)
    field_id = in_project.get(spec.name) or (admin_entry or {}).get("id")
    if field_id is None:
        missing.append(
            Missing(
                "custom field",
                spec.name,
                f"issue custom field of format {spec.format!r}, "
                f"enabled in project {ident!r} for its tracker, or {SETUP}",
            )
        )
        return None
    if admin_entry is None:
        return field_id
    where = f"Administration > Custom fields > {spec.name}"
    if admin_entry.get("field_format") != spec.format:
        missing.append(
            Missing(
                "custom field format",
                spec.name,
                f"it is {admin_entry.get('field_format')!r}, expected {spec.format!r}: "
                "rename the existing field and rerun the setup script",
            )
        )
    if spec.filter and not admin_entry.get("is_filter"):
        missing.append(
            Missing(
                "custom field setting",
                f"{spec.name}: used as a filter",
                f"{where}: tick 'Used as a filter' (else Redmine ignores the filter and returns every issue)",
            )
        )
    on_trackers = {t["id"] for t in admin_entry.get("trackers", [])}
    wanted = schema.tracker_id if spec.cases else schema.liaison_tracker_id
    if wanted and wanted not in on_trackers:
        missing.append(
            Missing(
                "custom field tracker",
                spec.name,
                f"{where}: tick the tracker (else Redmine ignores the value silently)",
            )
        )
    return field_id


def probe_filterable(get: Get, schema: Schema, field_key: str) -> Missing | None:
    """Ask Redmine to filter on a value no issue has: any result means the filter was ignored."""
    spec = schema.specs[field_key]
    field_id = schema.fields.get(field_key)
    if field_id is None:
        return None
    nonce = f"casebridge-probe-{secrets.token_hex(6)}"
    found = get("/issues.json", project_id=schema.project_id, status_id="*", limit=1, **{f"cf_{field_id}": nonce})
    if found.get("total_count", 0) > 0:
        return Missing(
            "custom field setting",
            f"{spec.name}: used as a filter",
            f"Administration > Custom fields > {spec.name}: tick 'Used as a filter' "
            "(Redmine ignored a filter on it and returned every issue)",
        )
    return None


def missing_transitions(get: Get, schema: Schema, config: RedmineConfig, workflow: Workflow) -> list[Missing]:
    """Transitions the workflow needs that Redmine does not offer, judged from one existing issue per
    status (``include=allowed_statuses``). Statuses with no issue cannot be judged over REST."""
    names = status_names(config, workflow)
    needed: dict[str, set[str]] = {}
    for src, dst in transition_pairs(workflow, names):
        if src is not None:
            needed.setdefault(src, set()).add(dst)
    sample = get(
        "/issues.json",
        project_id=schema.project_id,
        tracker_id=schema.tracker_id,
        status_id="*",
        limit=100,
        sort="id:desc",
    )["issues"]
    by_status: dict[str, int] = {}
    for issue in sample:
        by_status.setdefault(issue["status"]["name"], issue["id"])
    missing = []
    for status, issue_id in sorted(by_status.items()):
        if status not in needed:
            continue
        issue = get(f"/issues/{issue_id}.json", include="allowed_statuses")["issue"]
        allowed = {s["name"] for s in issue.get("allowed_statuses", [])}
        for dst in sorted(needed[status] - allowed - {status}):
            missing.append(
                Missing(
                    "transition",
                    f"{status} -> {dst}",
                    f"Administration > Workflow: tracker {config.tracker!r}, role "
                    f"{config.role!r}: tick {status} -> {dst}, or {SETUP}",
                )
            )
    return missing

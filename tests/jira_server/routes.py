"""Request handlers of the fake Jira. Each takes a ``Ctx`` and returns (status, JSON body or None)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from tests.jira_server import jql
from tests.jira_server import search as jql_search
from tests.jira_server.render import Renderer
from tests.jira_server.state import CF, CUSTOM_TYPES, Issue, JiraState, Project, adf_problem

READ_ONLY = frozenset({"status", "created", "updated", "project", "issuetype", "issuelinks", "comment", "attachment"})
TEXT_LIMIT = 32_767  # jira.text.field.character.limit, the default of Cloud and Data Center (attachments.py)
TOO_LONG = f"The entered text is too long. It exceeds the allowed limit of {TEXT_LIMIT:,} characters."
CLOUD_PAGE_CAP, CLOUD_KEYS_CAP, DC_PAGE_CAP = 100, 5000, 1000


class ApiError(Exception):
    def __init__(self, status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None):
        super().__init__(status, messages, errors)
        self.status = status
        self.body = {"errorMessages": messages or [], "errors": errors or {}}


@dataclass
class Ctx:
    state: JiraState
    render: Renderer
    mode: str  # "cloud" | "datacenter"
    api: str  # "2" | "3"
    params: dict[str, str]
    query: MultiDict
    body: Any
    user_tz: str = "UTC"
    snapshots: dict[str, list[int]] = field(default_factory=dict)
    headers: Any = None  # the request's headers (attachments need X-Atlassian-Token)
    files: Any = None  # multipart parts (attachments)

    def issue(self) -> Issue:
        key = self.params["issueIdOrKey"]
        found = self.state.find_issue(key)
        if found is None:
            raise ApiError(404, ["Issue does not exist or you do not have permission to see it."])
        return found

    def list_param(self, name: str) -> list[str]:
        values: list[str] = []
        for raw in self.query.getlist(name):
            values.extend(v.strip() for v in raw.split(",") if v.strip())
        return values


def _fields_wanted(state: JiraState, requested: list[str] | None, default_all: bool) -> list[str] | None:
    if not requested:
        return None if default_all else [f for f in state.fields if f not in ("comment",)]
    if "*all" in requested or "*navigable" in requested:
        return None
    return requested


def _project(state: JiraState, ref: dict[str, Any] | None) -> Project:
    ref = ref or {}
    for project in state.projects.values():
        if ref.get("key") == project.key or ref.get("id") == project.id:
            return project
    raise ApiError(400, [], {"project": "valid project is required"})


def _issuetype(project: Project, ref: dict[str, Any] | None) -> str:
    ref = ref or {}
    for name, type_id in project.issuetypes.items():
        if ref.get("name") == name or ref.get("id") == type_id:
            return name
    raise ApiError(400, [], {"issuetype": "Specify a valid issue type"})


def coerce_fields(ctx: Ctx, fields: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validate field values as Jira does (by field id only); raises ApiError(400) with per-field errors."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for fid, value in fields.items():
        fdef = ctx.state.fields.get(fid)
        if fdef is None or fid in READ_ONLY:
            errors[fid] = f"Field '{fid}' cannot be set. It is not on the appropriate screen, or unknown."
            continue
        problem, stored = _coerce_one(ctx, fid, fdef.custom_type, value)
        if problem:
            errors[fid] = problem
        else:
            values[fid] = stored
    if creating and not values.get("summary"):
        errors["summary"] = "You must specify a summary of the issue."
    if errors:
        raise ApiError(400, [], errors)
    return values


def _coerce_one(ctx: Ctx, fid: str, custom_type: str | None, value: Any) -> tuple[str | None, Any]:
    if value is None:
        return None, None
    rich = fid == "description" or custom_type == CF + "textarea"
    if rich and ctx.api == "3":
        return adf_problem(value) or _too_long(value), value
    if rich or fid == "summary" or custom_type == CF + "textfield":
        if not isinstance(value, str):
            return "Operation value must be a string", None
        if rich and _too_long(value):
            return TOO_LONG, None
        if (fid == "summary" or custom_type == CF + "textfield") and len(value) > 255:
            return "The entered text is too long. It exceeds the allowed limit of 255 characters.", None
        return None, value
    if custom_type == CF + "datetime":
        for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
            try:
                return None, datetime.strptime(str(value), fmt)
            except ValueError:
                continue
        return (
            f"Invalid date format. Please enter the date in the format \"yyyy-MM-dd'T'HH:mm:ss.SSSZ\" ({value!r})",
            None,
        )
    if custom_type == CF + "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "Operation value must be a number", None
        return None, float(value)
    if fid == "labels":
        if not isinstance(value, list) or any(not isinstance(v, str) or " " in v for v in value):
            return "The label must not contain spaces.", None
        return None, value
    return None, value


def _too_long(value: Any) -> str | None:
    """Jira's text limit: the wiki string, or (API v3) the ADF document's compact JSON."""
    size = len(value) if isinstance(value, str) else len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    return TOO_LONG if size > TEXT_LIMIT else None


def _change_items(ctx: Ctx, issue: Issue, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Changelog items for edited fields. Absent sides are left out: the documents type ``from``,
    ``fromString``, ``to`` and ``toString`` as non-nullable strings."""
    items = []
    for fid, new in values.items():
        old = issue.values.get(fid)
        if old == new:
            continue
        fdef = ctx.state.fields[fid]
        item: dict[str, Any] = {"field": fdef.name, "fieldtype": "custom" if fdef.custom else "jira", "fieldId": fid}
        if old is not None:
            item["fromString"] = str(old)
        if new is not None:
            item["toString"] = str(new)
        items.append(item)
    return items


# -- handlers --------------------------------------------------------------------------------------
def server_info(ctx: Ctx) -> tuple[int, Any]:
    cloud = ctx.mode == "cloud"
    return 200, {
        "baseUrl": ctx.render.base,
        "version": "1001.0.0-SNAPSHOT" if cloud else "10.3.24",
        "versionNumbers": [1001, 0, 0] if cloud else [10, 3, 24],
        "deploymentType": "Cloud" if cloud else "Server",
        "buildNumber": 100280 if cloud else 10030024,
        "buildDate": "2026-11-01T00:00:00.000+0000",
        "serverTime": ctx.render.state.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "scmInfo": "57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71",
        "serverTitle": "Fake Jira",
    }


def myself(ctx: Ctx) -> tuple[int, Any]:
    return 200, {
        "self": ctx.render.url("myself"),
        "displayName": "casebridge bot",
        "active": True,
        "timeZone": ctx.user_tz,
    }


def list_fields(ctx: Ctx) -> tuple[int, Any]:
    return 200, [f.as_json() for f in ctx.state.fields.values()]


def create_field(ctx: Ctx) -> tuple[int, Any]:
    if not ctx.state.admin:  # type: ignore[attr-defined]
        raise ApiError(403, ["You do not have permission to create custom fields."])
    body = ctx.body or {}
    ftype = body.get("type")
    if not body.get("name") or ftype not in CUSTOM_TYPES:
        raise ApiError(400, [f"Field type {ftype!r} is not supported or the name is empty."])
    fdef = ctx.state.add_custom_field(body["name"], ftype)
    return 201, fdef.as_json()


def get_project(ctx: Ctx) -> tuple[int, Any]:
    project = _project_by_ref(ctx)
    return 200, ctx.render.project(project, full=True)


def _project_by_ref(ctx: Ctx) -> Project:
    ref = ctx.params["projectIdOrKey"]
    for project in ctx.state.projects.values():
        if ref in (project.key, project.id):
            return project
    raise ApiError(404, [f"No project could be found with key '{ref}'."])


def project_statuses(ctx: Ctx) -> tuple[int, Any]:
    project = _project_by_ref(ctx)
    out = []
    for name in project.issuetypes:
        entry = ctx.render.issuetype(project, name)
        out.append(
            {
                "self": entry["self"],
                "id": entry["id"],
                "name": name,
                "subtask": False,
                "statuses": [ctx.render.status(s) for s in project.statuses],
            }
        )
    return 200, out


def link_types(ctx: Ctx) -> tuple[int, Any]:
    return 200, {
        "issueLinkTypes": [dict(t, self=ctx.render.url(f"issueLinkType/{t['id']}")) for t in ctx.state.link_types]
    }


def create_issue(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body or {}
    fields = dict(body.get("fields") or {})
    project = _project(ctx.state, fields.pop("project", None))
    issuetype = _issuetype(project, fields.pop("issuetype", None))
    values = coerce_fields(ctx, fields, creating=True)
    issue = ctx.state.new_issue(project, issuetype, values, ctx.state.now())
    for prop in body.get("properties") or []:
        issue.properties[prop["key"]] = prop["value"]
    return 201, {"id": str(issue.id), "key": issue.key, "self": ctx.render.url(f"issue/{issue.id}")}


BULK_LIMIT = 50  # Jira's maximum issues per bulk create


def create_issues(ctx: Ctx) -> tuple[int, Any]:
    """POST issue/bulk: each valid element created, the others reported by element number (not atomic);
    400 when none was created, as Jira answers."""
    updates = (ctx.body or {}).get("issueUpdates") or []
    if len(updates) > BULK_LIMIT:
        raise ApiError(400, [f"Bulk create is limited to {BULK_LIMIT} issues; got {len(updates)}."])
    created, errors = [], []
    for n, update in enumerate(updates):
        fields = dict(update.get("fields") or {})
        try:
            project = _project(ctx.state, fields.pop("project", None))
            issuetype = _issuetype(project, fields.pop("issuetype", None))
            values = coerce_fields(ctx, fields, creating=True)
        except ApiError as exc:
            errors.append({"status": exc.status, "failedElementNumber": n, "elementErrors": exc.body})
            continue
        issue = ctx.state.new_issue(project, issuetype, values, ctx.state.now())
        created.append({"id": str(issue.id), "key": issue.key, "self": ctx.render.url(f"issue/{issue.id}")})
    return (201 if created or not errors else 400), {"issues": created, "errors": errors}


def get_issue(ctx: Ctx) -> tuple[int, Any]:
    issue = ctx.issue()
    fields = _fields_wanted(ctx.state, ctx.list_param("fields"), default_all=True)
    expand = set(ctx.list_param("expand"))
    return 200, ctx.render.issue(issue, fields, expand=expand, properties=ctx.list_param("properties"))


def edit_issue(ctx: Ctx) -> tuple[int, Any]:
    issue = ctx.issue()
    body = ctx.body or {}
    values = coerce_fields(ctx, dict(body.get("fields") or {}), creating=False)
    items = _change_items(ctx, issue, values)
    issue.values.update(values)
    for prop in body.get("properties") or []:
        issue.properties[prop["key"]] = prop["value"]
    ctx.state.record_change(issue, items, ctx.state.now())
    return 204, None


def get_transitions(ctx: Ctx) -> tuple[int, Any]:
    issue = ctx.issue()
    project = ctx.state.projects[issue.project]
    with_fields = "transitions.fields" in ctx.list_param("expand")
    out = []
    for t in project.available(issue.status):
        entry: dict[str, Any] = {
            "id": t.id,
            "name": t.name,
            "to": ctx.render.status(project.status(t.to)),
            "hasScreen": bool(t.required_fields),
            "isGlobal": t.sources is None,
            "isInitial": False,
            "isAvailable": True,
            "isConditional": False,
            "isLooped": False,
        }
        if with_fields:
            entry["fields"] = {
                fid: {
                    "required": True,
                    "name": ctx.state.fields[fid].name,
                    "key": fid,
                    "operations": ["set"],
                    "schema": ctx.state.fields[fid].as_json()["schema"],
                    "hasDefaultValue": False,
                }
                for fid in t.required_fields
            }
        out.append(entry)
    return 200, {"expand": "transitions", "transitions": out}


def do_transition(ctx: Ctx) -> tuple[int, Any]:
    issue = ctx.issue()
    project = ctx.state.projects[issue.project]
    body = ctx.body or {}
    wanted = str((body.get("transition") or {}).get("id", ""))
    chosen = next((t for t in project.available(issue.status) if t.id == wanted), None)
    if chosen is None:
        raise ApiError(400, [f"Transition id '{wanted}' is not valid for this issue."])
    fields = dict(body.get("fields") or {})
    missing = {f: f"{ctx.state.fields[f].name} is required." for f in chosen.required_fields if not fields.get(f)}
    if missing:
        raise ApiError(400, [], missing)
    values = coerce_fields(ctx, {k: v for k, v in fields.items() if k != "resolution"}, creating=False)
    issue.values.update(values)
    if "resolution" in fields:
        issue.values["resolution"] = fields["resolution"]
    ctx.state.move(issue, chosen.to, ctx.state.now())
    return 204, None


def get_changelog(ctx: Ctx) -> tuple[int, Any]:
    issue = ctx.issue()
    start = int(ctx.query.get("startAt", 0))
    size = min(int(ctx.query.get("maxResults", 100)), 100)
    page = issue.changelog[start : start + size]
    return 200, {
        "self": ctx.render.url(f"issue/{issue.key}/changelog?startAt={start}&maxResults={size}"),
        "startAt": start,
        "maxResults": size,
        "total": len(issue.changelog),
        "isLast": start + size >= len(issue.changelog),
        "values": [ctx.render.history(h) for h in page],
    }


def add_comment(ctx: Ctx) -> tuple[int, Any]:
    issue = ctx.issue()
    body = (ctx.body or {}).get("body")
    problem = (
        adf_problem(body)
        if ctx.api == "3"
        else (None if isinstance(body, str) and body else "Comment body can not be empty!")
    )
    problem = problem or _too_long(body)
    if problem:
        raise ApiError(400, [], {"comment": problem})
    comment = ctx.state.add_comment(issue, body, ctx.state.now())
    return 201, ctx.render.comment(issue, comment)


def get_comments(ctx: Ctx) -> tuple[int, Any]:
    issue = ctx.issue()
    start = int(ctx.query.get("startAt", 0))
    size = int(ctx.query.get("maxResults", 50))
    comments = [ctx.render.comment(issue, c) for c in issue.comments]
    return 200, {
        "startAt": start,
        "maxResults": size,
        "total": len(comments),
        "comments": comments[start : start + size],
    }


def create_link(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body or {}
    type_name = (body.get("type") or {}).get("name", "")
    if not any(t["name"].casefold() == type_name.casefold() for t in ctx.state.link_types):
        raise ApiError(404, [f"No issue link type with name '{type_name}' found."])
    sides = []
    for side in ("inwardIssue", "outwardIssue"):
        ref = body.get(side) or {}
        found = ctx.state.find_issue(str(ref.get("key") or ref.get("id") or ""))
        if found is None:
            raise ApiError(404, [f"Issue '{ref}' does not exist."])
        sides.append(found)
    ctx.state.add_link(type_name, sides[0], sides[1])
    return 201, None


def search_gone(ctx: Ctx) -> tuple[int, Any]:
    raise ApiError(410, ["The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."])


def search(ctx: Ctx) -> tuple[int, Any]:
    args = ctx.body if isinstance(ctx.body, dict) else _search_args_from_query(ctx)
    text = str(args.get("jql") or "")
    fields = _fields_wanted(ctx.state, _as_list(args.get("fields")), default_all=False)
    expand = set(_as_list(args.get("expand")))
    properties = _as_list(args.get("properties"))
    max_results = int(args.get("maxResults") or 50)
    token = args.get("nextPageToken")
    try:
        snapshot, start, ids = _matching_ids(ctx, text, token, int(args.get("startAt") or 0))
    except jql.JqlError as exc:
        raise ApiError(400, [str(exc)]) from None
    if ctx.mode == "cloud":
        cap = CLOUD_KEYS_CAP if fields is not None and set(fields) <= {"id", "key"} else CLOUD_PAGE_CAP
    else:
        cap = DC_PAGE_CAP
    size = max(0, min(max_results, cap))
    page = [ctx.state.issues[i] for i in ids[start : start + size]]
    issues = [ctx.render.issue(i, fields, expand=expand, properties=properties) for i in page]
    if ctx.mode == "cloud":
        out: dict[str, Any] = {"issues": issues, "isLast": start + size >= len(ids)}
        if not out["isLast"]:
            out["nextPageToken"] = _token(snapshot, start + size)
        return 200, out
    return 200, {
        "expand": "schema,names",
        "startAt": start,
        "maxResults": size,
        "total": len(ids),
        "issues": issues,
    }


def _search_args_from_query(ctx: Ctx) -> dict[str, Any]:
    args: dict[str, Any] = {k: ctx.query.get(k) for k in ("jql", "nextPageToken", "maxResults", "startAt")}
    for name in ("fields", "expand", "properties"):
        args[name] = ctx.list_param(name)
    return args


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _matching_ids(ctx: Ctx, text: str, token: str | None, start_at: int) -> tuple[str, int, list[int]]:
    """(snapshot id, offset, matching issue ids). Cloud pages read the snapshot their token names, as
    ``nextPageToken`` does; DC re-runs the query per page (offset paging), cached per state version."""
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            snapshot, offset = str(decoded["s"]), int(decoded["o"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, ["The provided next page token is invalid or expired."]) from None
        ids = ctx.snapshots.get(snapshot)
        if ids is None:
            raise ApiError(400, ["The provided next page token is invalid or expired."])
        return snapshot, offset, ids
    snapshot = f"{ctx.state.version}:{text}"
    ids = ctx.snapshots.get(snapshot)
    if ids is None:
        ids = [i.id for i in jql_search.run(ctx.state, text, ctx.user_tz)]
        if len(ctx.snapshots) > 64:
            ctx.snapshots.pop(next(iter(ctx.snapshots)))
        ctx.snapshots[snapshot] = ids
    return snapshot, start_at if ctx.mode != "cloud" else 0, ids


def _token(snapshot: str, offset: int) -> str:
    raw = json.dumps({"s": snapshot, "o": offset})
    return base64.urlsafe_b64encode(raw.encode()).decode()

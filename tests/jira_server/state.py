"""The fake Jira's data: projects with workflows, fields, issues with changelog, comments and links.

Everything is in memory behind one lock (the HTTP layer in ``app.py`` holds it per request). Values are
kept as they arrived and rendered per API version on the way out: in API v3 (Cloud) rich-text fields
(description, textarea custom fields, comment bodies) are Atlassian Document Format, in v2 plain strings.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CF = "com.atlassian.jira.plugin.system.customfieldtypes:"
# custom field type -> (schema.type, searcher key)
CUSTOM_TYPES: dict[str, tuple[str, str]] = {
    CF + "textfield": ("string", CF + "textsearcher"),
    CF + "textarea": ("string", CF + "textsearcher"),
    CF + "datetime": ("datetime", CF + "datetimerange"),
    CF + "float": ("number", CF + "exactnumber"),
}
TEXT_TYPES = (CF + "textfield", CF + "textarea")
ADF_NODE_TYPES = frozenset(
    [
        "doc",
        "paragraph",
        "text",
        "heading",
        "bulletList",
        "orderedList",
        "listItem",
        "codeBlock",
        "blockquote",
        "rule",
        "hardBreak",
        "table",
        "tableRow",
        "tableHeader",
        "tableCell",
        "panel",
        "mention",  # inline; attrs.id (the account id) is required
    ]
)
ADF_MARKS = frozenset(["strong", "em", "code", "link", "strike", "underline", "subsup", "textColor"])


def jira_time(value: datetime) -> str:
    """Jira's timestamp format: 2026-01-05T10:00:00.000+0000."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def adf_doc(text: str) -> dict[str, Any]:
    paragraphs = [p for p in text.split("\n\n")] if text else []
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs if p],
    }


def adf_text(node: Any) -> str:
    """Plain text of an ADF document (what API v2 shows for it)."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    parts = [adf_text(child) for child in node.get("content", [])]
    sep = "\n\n" if node.get("type") == "doc" else ""
    return sep.join(parts)


def adf_problem(node: Any, *, top: bool = True) -> str | None:
    """Why ``node`` is not a valid ADF document (None if it is); a subset of Atlassian's checks."""
    if not isinstance(node, dict):
        return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    kind = node.get("type")
    if top and (kind != "doc" or node.get("version") != 1):
        return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    if kind not in ADF_NODE_TYPES:
        return f"INVALID_INPUT: unknown ADF node type {kind!r}"
    if kind == "text" and not isinstance(node.get("text"), str):
        return "INVALID_INPUT: text node without text"
    if kind == "mention" and not isinstance((node.get("attrs") or {}).get("id"), str):
        return "INVALID_INPUT: mention node without attrs.id"
    for mark in node.get("marks", []):
        if not isinstance(mark, dict) or mark.get("type") not in ADF_MARKS:
            return f"INVALID_INPUT: unknown ADF mark {mark!r}"
    for child in node.get("content", []):
        problem = adf_problem(child, top=False)
        if problem:
            return problem
    return None


@dataclass
class FieldDef:
    id: str
    name: str
    custom: bool
    schema_type: str
    custom_type: str | None = None
    system: str | None = None

    def as_json(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.schema_type}
        if self.custom:
            schema.update(custom=self.custom_type, customId=int(self.id.split("_")[1]))
        else:
            schema["system"] = self.system or self.id
        clause = [self.id] if not self.custom else [f"cf[{self.id.split('_')[1]}]", self.name]
        return {
            "id": self.id,
            "key": self.id,
            "name": self.name,
            "custom": self.custom,
            "orderable": True,
            "navigable": True,
            "searchable": True,
            "clauseNames": clause,
            "schema": schema,
        }


SYSTEM_FIELDS = [
    FieldDef("summary", "Summary", False, "string"),
    FieldDef("description", "Description", False, "string"),
    FieldDef("status", "Status", False, "status"),
    FieldDef("issuetype", "Issue Type", False, "issuetype"),
    FieldDef("project", "Project", False, "project"),
    FieldDef("created", "Created", False, "datetime"),
    FieldDef("updated", "Updated", False, "datetime"),
    FieldDef("issuelinks", "Linked Issues", False, "array"),
    FieldDef("comment", "Comment", False, "comments-page"),
    FieldDef("attachment", "Attachment", False, "array"),
    FieldDef("labels", "Labels", False, "array"),
    FieldDef("resolution", "Resolution", False, "resolution"),
    FieldDef("assignee", "Assignee", False, "user"),  # a user object (accountId on Cloud, name on DC) or null
]


@dataclass
class Status:
    id: str
    name: str
    category: str = "indeterminate"  # "new" | "indeterminate" | "done"


@dataclass
class WfTransition:
    id: str
    name: str
    to: str  # status name
    sources: frozenset[str] | None  # status names; None = global (from any status)
    required_fields: tuple[str, ...] = ()  # field ids the transition screen requires


@dataclass
class Project:
    id: str
    key: str
    name: str
    issuetypes: dict[str, str]  # name -> id
    statuses: list[Status]
    transitions: list[WfTransition]
    initial: str  # status name

    def status(self, name: str) -> Status:
        return next(s for s in self.statuses if s.name.casefold() == name.casefold())

    def available(self, current: str) -> list[WfTransition]:
        return [t for t in self.transitions if t.sources is None or current in t.sources]


@dataclass
class Issue:
    id: int
    key: str
    project: str
    issuetype: str
    status: str
    created: datetime
    updated: datetime
    values: dict[str, Any] = field(default_factory=dict)  # field id -> stored value
    changelog: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    attachments: list[dict[str, Any]] = field(default_factory=list)  # id, filename, content (bytes), ...


class JiraState:
    """All data of one fake Jira site. Callers hold ``lock`` around every read-modify-write."""

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        self.lock = threading.RLock()
        self.now = now or (lambda: datetime.now(UTC))
        self.fields: dict[str, FieldDef] = {f.id: f for f in SYSTEM_FIELDS}
        self.projects: dict[str, Project] = {}
        self.issues: dict[int, Issue] = {}
        self.by_key: dict[str, int] = {}
        self.link_types = [
            {"id": "10000", "name": "Relates", "inward": "relates to", "outward": "relates to"},
            {"id": "10001", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
        ]
        self.version = 0  # bumped by every write; search caches key on it
        self._ids = itertools.count(10001)
        self._field_ids = itertools.count(10000)
        self._misc_ids = itertools.count(20001)
        self._project_seq: dict[str, itertools.count[int]] = {}

    # -- setup ------------------------------------------------------------------------------------
    def add_custom_field(self, name: str, custom_type: str) -> FieldDef:
        schema_type = CUSTOM_TYPES[custom_type][0]
        fdef = FieldDef(f"customfield_{next(self._field_ids)}", name, True, schema_type, custom_type)
        self.fields[fdef.id] = fdef
        return fdef

    def add_project(
        self,
        key: str,
        *,
        name: str | None = None,
        issuetypes: tuple[str, ...] = ("Task",),
        statuses: list[str],
        transitions: list[tuple[str, list[str] | None, str]] | None = None,
        initial: str | None = None,
        required: dict[str, tuple[str, ...]] | None = None,
    ) -> Project:
        """``transitions``: (name, source status names or None for global, target status name).
        ``required``: transition name -> field ids its screen requires."""
        done = {"closed", "done", "fulfilled", "withdrawn", "expired"}
        status_objs = [
            Status(str(next(self._misc_ids)), s, "done" if s.casefold() in done else "indeterminate") for s in statuses
        ]
        if status_objs:
            status_objs[0].category = "new"
        wf = [
            WfTransition(
                str(i + 11),
                tname,
                to,
                frozenset(src) if src is not None else None,
                (required or {}).get(tname, ()),
            )
            for i, (tname, src, to) in enumerate(transitions or [])
        ]
        project = Project(
            str(next(self._misc_ids)),
            key,
            name or key,
            {t: str(next(self._misc_ids)) for t in issuetypes},
            status_objs,
            wf,
            initial or statuses[0],
        )
        self.projects[key] = project
        self._project_seq[key] = itertools.count(1)
        return project

    def field_by_name(self, name: str) -> FieldDef | None:
        wanted = name.casefold()
        for fdef in self.fields.values():
            if fdef.id.casefold() == wanted or fdef.name.casefold() == wanted:
                return fdef
        return None

    # -- issues ---------------------------------------------------------------------------------------
    def new_issue(self, project: Project, issuetype: str, values: dict[str, Any], at: datetime) -> Issue:
        issue_id = next(self._ids)
        key = f"{project.key}-{next(self._project_seq[project.key])}"
        issue = Issue(issue_id, key, project.key, issuetype, project.initial, at, at, dict(values))
        self.issues[issue_id] = issue
        self.by_key[key] = issue_id
        self.version += 1
        return issue

    def find_issue(self, id_or_key: str) -> Issue | None:
        if id_or_key.isdigit():
            return self.issues.get(int(id_or_key))
        issue_id = self.by_key.get(id_or_key.upper())
        return self.issues.get(issue_id) if issue_id is not None else None

    def record_change(self, issue: Issue, items: list[dict[str, Any]], at: datetime) -> None:
        if items:
            issue.changelog.append({"id": str(next(self._misc_ids)), "author": _user(), "created": at, "items": items})
        issue.updated = at
        self.version += 1

    def move(self, issue: Issue, to_status: str, at: datetime) -> None:
        project = self.projects[issue.project]
        old, new = project.status(issue.status), project.status(to_status)
        item = {
            "field": "status",
            "fieldtype": "jira",
            "fieldId": "status",
            "from": old.id,
            "fromString": old.name,
            "to": new.id,
            "toString": new.name,
        }
        issue.status = new.name
        self.record_change(issue, [item], at)

    def add_comment(self, issue: Issue, body: Any, at: datetime) -> dict[str, Any]:
        comment = {"id": str(next(self._misc_ids)), "body": body, "created": at, "updated": at}
        issue.comments.append(comment)
        self.record_change(issue, [], at)
        return comment

    def add_attachment(self, issue: Issue, filename: str, content: bytes, mime: str) -> dict[str, Any]:
        at = self.now()
        attachment = {"id": str(next(self._misc_ids)), "filename": filename, "content": content, "mimeType": mime}
        attachment["created"] = at
        issue.attachments.append(attachment)
        self.record_change(issue, [], at)
        return attachment

    def add_link(self, type_name: str, inward: Issue, outward: Issue) -> None:
        ltype = next(t for t in self.link_types if t["name"].casefold() == type_name.casefold())
        link_id = str(next(self._misc_ids))
        outward.links.append({"id": link_id, "type": ltype, "inwardIssue": inward.id})
        inward.links.append({"id": link_id, "type": ltype, "outwardIssue": outward.id})
        at = self.now()
        self.record_change(inward, [], at)
        self.record_change(outward, [], at)


def _user() -> dict[str, Any]:
    return {"accountId": "5b10a2844c20165700ede21g", "displayName": "casebridge bot", "active": True}

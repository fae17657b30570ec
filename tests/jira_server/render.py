"""JSON shapes of the fake Jira's objects, per API version ("2": plain text, "3": ADF)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from tests.jira_server.state import (
    CF,
    Issue,
    JiraState,
    Project,
    Status,
    adf_doc,
    adf_text,
    jira_time,
)


class Renderer:
    def __init__(self, state: JiraState, base_url: str, api: str) -> None:
        self.state = state
        self.base = base_url
        self.api = api

    def url(self, path: str) -> str:
        return f"{self.base}/rest/api/{self.api}/{path}"

    def status(self, status: Status) -> dict[str, Any]:
        cat_ids = {"new": 2, "indeterminate": 4, "done": 3}
        return {
            "self": self.url(f"status/{status.id}"),
            "description": "",
            "iconUrl": f"{self.base}/images/icons/statuses/generic.png",
            "name": status.name,
            "id": status.id,
            "statusCategory": {
                "self": self.url(f"statuscategory/{cat_ids[status.category]}"),
                "id": cat_ids[status.category],
                "key": status.category,
                "colorName": "blue-gray",
                "name": status.category.title(),
            },
        }

    def issuetype(self, project: Project, name: str) -> dict[str, Any]:
        type_id = project.issuetypes[name]
        return {
            "self": self.url(f"issuetype/{type_id}"),
            "id": type_id,
            "description": "",
            "iconUrl": f"{self.base}/images/icons/issuetypes/task.svg",
            "name": name,
            "subtask": False,
        }

    def project(self, project: Project, *, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "self": self.url(f"project/{project.id}"),
            "id": project.id,
            "key": project.key,
            "name": project.name,
        }
        if full:
            out["issueTypes"] = [self.issuetype(project, name) for name in project.issuetypes]
        return out

    def rich(self, value: Any) -> Any:
        if value is None:
            return None
        if self.api == "3":
            return value if isinstance(value, dict) else adf_doc(str(value))
        return adf_text(value) if isinstance(value, dict) else value

    def field_value(self, issue: Issue, field_id: str) -> Any:
        project = self.state.projects[issue.project]
        if field_id == "status":
            return self.status(project.status(issue.status))
        if field_id == "issuetype":
            return self.issuetype(project, issue.issuetype)
        if field_id == "project":
            return self.project(project)
        if field_id in ("created", "updated"):
            return jira_time(getattr(issue, field_id))
        if field_id == "issuelinks":
            return [self.link(link) for link in issue.links]
        if field_id == "comment":
            comments = [self.comment(issue, c) for c in issue.comments]
            return {"comments": comments, "maxResults": len(comments), "total": len(comments), "startAt": 0}
        if field_id == "attachment":
            return [self.attachment(issue, a) for a in issue.attachments]
        if field_id == "labels":
            return issue.values.get("labels", [])
        if field_id == "assignee":
            return issue.values.get("assignee")
        value = issue.values.get(field_id)
        if isinstance(value, datetime):
            return jira_time(value)
        fdef = self.state.fields.get(field_id)
        if field_id == "description" or (fdef and fdef.custom_type == CF + "textarea"):
            return self.rich(value)
        return value

    def issue_brief(self, issue: Issue) -> dict[str, Any]:
        project = self.state.projects[issue.project]
        return {
            "id": str(issue.id),
            "key": issue.key,
            "self": self.url(f"issue/{issue.id}"),
            "fields": {
                "summary": issue.values.get("summary", ""),
                "status": self.status(project.status(issue.status)),
                "issuetype": self.issuetype(project, issue.issuetype),
            },
        }

    def link(self, link: dict[str, Any]) -> dict[str, Any]:
        ltype = dict(link["type"], self=self.url(f"issueLinkType/{link['type']['id']}"))
        out: dict[str, Any] = {"id": link["id"], "self": self.url(f"issueLink/{link['id']}"), "type": ltype}
        for side in ("inwardIssue", "outwardIssue"):
            if side in link:
                out[side] = self.issue_brief(self.state.issues[link[side]])
        return out

    def comment(self, issue: Issue, comment: dict[str, Any]) -> dict[str, Any]:
        return {
            "self": self.url(f"issue/{issue.id}/comment/{comment['id']}"),
            "id": comment["id"],
            "author": _author(),
            "body": self.rich(comment["body"]),
            "updateAuthor": _author(),
            "created": jira_time(comment["created"]),
            "updated": jira_time(comment["updated"]),
        }

    def attachment(self, issue: Issue, attachment: dict[str, Any]) -> dict[str, Any]:
        return {
            "self": self.url(f"attachment/{attachment['id']}"),
            "id": attachment["id"],
            "filename": attachment["filename"],
            "author": _author(),
            "created": jira_time(attachment["created"]),
            "size": len(attachment["content"]),
            "mimeType": attachment["mimeType"],
            "content": f"{self.base}/secure/attachment/{attachment['id']}/{quote(attachment['filename'])}",
        }

    def history(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": entry["id"],
            "author": _author(),
            "created": jira_time(entry["created"]),
            "items": entry["items"],
        }

    def issue(
        self,
        issue: Issue,
        fields: list[str] | None,
        *,
        expand: set[str] = frozenset(),  # type: ignore[assignment]
        properties: list[str] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """``fields`` None = all; otherwise only those ids (unknown ids are skipped, as Jira does)."""
        wanted = list(self.state.fields) if fields is None else fields
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": str(issue.id),
            "self": self.url(f"issue/{issue.id}"),
            "key": issue.key,
            "fields": {f: self.field_value(issue, f) for f in wanted if f in self.state.fields},
        }
        if "changelog" in expand:
            histories = [self.history(h) for h in issue.changelog]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(histories),
                "total": len(histories),
                "histories": histories,
            }
        if properties:
            out["properties"] = {k: issue.properties[k] for k in properties if k in issue.properties}
        return out


def _author() -> dict[str, Any]:
    return {"displayName": "casebridge bot", "active": True, "accountId": "5b10a2844c20165700ede21g"}

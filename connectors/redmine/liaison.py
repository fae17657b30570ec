"""The liaison-queue half of the Redmine connector: escalations as issues in the liaison project.

The dedupe key (case x clock x level) is stored in the "Escalation key" custom field, so a rerun, a
crash mid-run or a lost state file never posts twice: ``find_escalation`` searches by it, and a POST
whose answer was lost is checked the same way before it is repeated. The case and the escalation are
related across projects (Redmine's setting "Allow cross-project issue relations", set by the setup
script).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from casebridge.connectors import Escalation, PostedEscalation
from casebridge.connectors.redmine.base import RedmineBase
from casebridge.connectors.redmine.lookup import field_value, search_values
from casebridge.connectors.redmine.mapping import parse_time
from casebridge.connectors.redmine.text import render
from casebridge.errors import RejectedError, SchemaMissing


class RedmineLiaison(RedmineBase):
    """The liaison queue on the shared plumbing; RedmineConnector adds the cases."""

    def _liaison_project(self) -> int:
        project: int | None = self.schema.liaison_project_id
        if project is None:
            raise SchemaMissing("no liaison project: set liaison_project in the [tracker] section")
        return project

    def _posted(self, issue: dict[str, Any], key: str) -> PostedEscalation:
        return PostedEscalation(
            dedupe_key=key,
            key=str(issue["id"]),
            url=f"{self.client.url}/issues/{issue['id']}",
            posted_at=parse_time(issue["created_on"]) or datetime.now(UTC),
        )

    def find_escalation(self, dedupe_key: str) -> PostedEscalation | None:
        hits = self._search(self._liaison_project(), "escalation_key", dedupe_key)
        return self._posted(hits[0], dedupe_key) if hits else None

    def find_escalations(self, dedupe_keys: Iterable[str]) -> dict[str, PostedEscalation]:
        """One filtered listing per chunk of keys (``lookup.search_values``), not one search per key;
        the oldest issue wins when a key was posted twice, as in ``find_escalation``."""
        project, schema = self._liaison_project(), self.schema
        field_id, name = schema.fields["escalation_key"], schema.specs["escalation_key"].name
        found: dict[str, PostedEscalation] = {}
        hits = search_values(self._get, project, field_id, name, dedupe_keys)
        for issue in sorted(hits, key=lambda i: i["id"]):
            key = field_value(issue, field_id)
            if key not in found:
                found[key] = self._posted(issue, key)
        return found

    def post_escalation(self, escalation: Escalation) -> PostedEscalation:
        project = self._liaison_project()
        ids = self.schema.fields
        fields = [
            {"id": ids["escalation_key"], "value": escalation.dedupe_key},
            {"id": ids["reference"], "value": escalation.case_reference},
            {"id": ids["escalation_level"], "value": str(escalation.level)},
        ]
        payload = {
            "project_id": project,
            "tracker_id": self.schema.liaison_tracker_id,
            "subject": escalation.title[:255],
            "description": render(escalation.markdown, self.config.text_formatting),
            "custom_fields": fields,
        }
        issue = self._write(
            lambda: self._send("post", "/issues.json", {"issue": payload})["issue"],
            applied=lambda: _first(self._search(project, "escalation_key", escalation.dedupe_key)),
        )
        self._verify_fields(issue, fields)
        return self._posted(issue, escalation.dedupe_key)

    def link_escalation(self, key: str, posted: PostedEscalation) -> None:
        """A 'relates' relation from the case issue to the escalation issue (idempotent)."""
        self._relate(key, posted.key)

    def link_cases(self, key_a: str, key_b: str, *, note: str) -> None:
        """A 'relates' relation between two case issues (idempotent); ``note`` is not needed."""
        self._relate(key_a, key_b)

    def _relate(self, key: str, other: str) -> None:
        if self._linked(key, other):
            return
        data = {"relation": {"issue_to_id": int(other), "relation_type": "relates"}}
        try:
            self._write(
                lambda: self._send("post", f"/issues/{int(key)}/relations.json", data),
                applied=lambda: True if self._linked(key, other) else None,
            )
        except RejectedError as exc:
            if "same project" in str(exc):
                raise SchemaMissing(
                    "Redmine refuses relations across projects: Administration > Settings > "
                    "Issue tracking: 'Allow cross-project issue relations', or rerun the setup "
                    "script"
                ) from None
            if "already been taken" not in str(exc):  # a lost answer left the relation in place
                raise

    def _linked(self, key: str, other: str) -> bool:
        relations = self._get(f"/issues/{int(key)}/relations.json")["relations"]
        return any(other in (str(r["issue_to_id"]), str(r["issue_id"])) for r in relations)


def _first(items: list[Any]) -> Any:
    return items[0] if items else None

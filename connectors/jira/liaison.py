"""The Jira connector's side of the NCB liaison queue and of issue links: find posted escalations by
dedupe key (one JQL search per chunk of keys), post one (the dossier cut to Jira's text limit), link two
issues once. ``JiraOps`` is every operation the connector uses: the case operations plus these."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from casebridge.connectors import Escalation, PostedEscalation
from casebridge.connectors.jira.cases import CaseOps, parse_time
from casebridge.errors import ConfigError

# dedupe keys per JQL search in find_escalations: the query stays a few KiB, well under Jira's limits
ESCALATION_CHUNK = 50


class JiraOps(CaseOps):
    # -- escalations ---------------------------------------------------------------------------------
    def liaison_project(self) -> str:
        if not self.cfg.liaison_project:
            raise ConfigError("[jira] liaison_project <- not set; name the Jira project of the NCB liaison queue")
        return self.cfg.liaison_project

    def find_escalation(self, dedupe_key: str) -> PostedEscalation | None:
        found = self.by_reference(self.liaison_project(), "escalation_key", dedupe_key, ["created"])
        return self.posted(dedupe_key, found[0]) if found else None

    def find_escalations(self, dedupe_keys: Iterable[str]) -> dict[str, PostedEscalation]:
        """One search per ``ESCALATION_CHUNK`` keys instead of one per key."""
        project = self.liaison_project()
        keys, found = list(dict.fromkeys(dedupe_keys)), {}
        for start in range(0, len(keys), ESCALATION_CHUNK):
            chunk = keys[start : start + ESCALATION_CHUNK]
            hits = self.by_references(project, "escalation_key", chunk, ["created"])
            found.update({key: self.posted(key, issue) for key, issue in hits.items()})
        return found

    def posted(self, dedupe_key: str, issue: dict[str, Any]) -> PostedEscalation:
        return PostedEscalation(
            dedupe_key,
            issue["key"],
            f"{self.cfg.url.rstrip('/')}/browse/{issue['key']}",
            parse_time(issue["fields"].get("created")) or datetime.now(UTC),
        )

    def post_escalation(self, esc: Escalation) -> PostedEscalation:
        fields = {
            "project": {"key": self.liaison_project()},
            "issuetype": {"name": self.cfg.liaison_issue_type},
            "summary": esc.title[:255],
            "description": self.limits.dossier_description(esc),  # cut to fit; complete() attaches it whole
            self.c.field_id("escalation_key"): esc.dedupe_key,
            self.c.field_id("reference"): esc.case_reference,
        }

        def landed() -> dict[str, Any] | None:
            found = self.find_escalation(esc.dedupe_key)
            return {"key": found.key} if found else None

        created = self.c.http().call("POST", "issue", json={"fields": fields}, landed=landed, case=esc.case_reference)
        key = created["key"]
        return PostedEscalation(esc.dedupe_key, key, f"{self.cfg.url.rstrip('/')}/browse/{key}", self.c.now())

    def link(self, key: str, other: str) -> None:
        http = self.c.http()

        def linked() -> bool | None:
            issue = http.call("GET", f"issue/{key}", params={"fields": "issuelinks"})
            for link in issue["fields"].get("issuelinks") or []:
                peer = link.get("outwardIssue") or link.get("inwardIssue") or {}
                if peer.get("key") == other and link["type"]["name"].casefold() == self.cfg.link_type.casefold():
                    return True
            return None

        if linked():
            return
        body = {
            "type": {"name": self.cfg.link_type},
            "inwardIssue": {"key": key},
            "outwardIssue": {"key": other},
        }
        http.call("POST", "issueLink", json=body, landed=linked)

"""Redmine connector (python-redmine): cases as issues, workflow states as statuses, SLA values as custom
fields, escalations as issues in a liaison project.

Redmine fails silently in several ways (see shared/redmine/NOTES.md); each is caught here:

* a status change the workflow forbids returns 204 and does nothing: ``transition`` checks
  ``include=allowed_statuses`` first and re-reads afterwards (``TransitionNotAllowed``);
* unknown custom field ids are ignored: ids are resolved by name from the server, and writes are
  verified against Redmine's answer or a re-read (``SchemaMissing``);
* a filter on a non-filterable field returns every issue: lookups by reference check every hit;
* bool fields accept anything: only '1'/'0' are written, anything else read is reported;
* pages hold at most 100 issues and python-redmine's ``limit`` caps the total: it is never passed;
* ``updated_on`` filters take only ``...Z`` without fractions and overlap by up to a second: the
  watermark is floored to the second and items before it are dropped, duplicates removed;
* journals come only with a single-issue GET: ``read_history`` reads one issue;
* with ``login_required=0`` a bad key reads as anonymous: the key is checked on ``/users/current.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from casebridge.connectors import CASES, LIAISON, Missing
from casebridge.connectors.redmine.base import _cf, _first
from casebridge.connectors.redmine.config import RedmineConfig
from casebridge.connectors.redmine.liaison import RedmineLiaison
from casebridge.connectors.redmine.lookup import search_values
from casebridge.connectors.redmine.mapping import (
    case_field_values,
    description_markdown,
    fmt_time,
    parse_time,
    required_time,
    sla_field_values,
)
from casebridge.connectors.redmine.schema import inspect_schema, missing_transitions, probe_filterable
from casebridge.connectors.redmine.setup import setup_script
from casebridge.connectors.redmine.text import render
from casebridge.errors import TrackerError, TransitionNotAllowed
from casebridge.workflows.cases import Case, SlaFields, StatusChange, TrackedCase

log = logging.getLogger(__name__)


class RedmineConnector(RedmineLiaison):
    name = "redmine"
    config_model = RedmineConfig
    capabilities = frozenset({CASES, LIAISON})
    owns_retries = True  # tenacity policy inside (redmine.http); see connectors.Connector
    creates_with_sla = True  # the creating POST carries the SLA custom fields
    config: RedmineConfig

    # -- schema -------------------------------------------------------------------------------
    def identity(self) -> str:
        return f"redmine:{self.config.url} project {self.config.project}"

    def check_schema(self) -> list[Missing]:
        """Everything the workflow needs that Redmine lacks. Settings (cross-project relations) have
        no REST API and are not checked; transitions are judged from existing issues only.
        Raises: TrackerUnreachable, AuthenticationFailed."""
        schema, missing = inspect_schema(self._get, self.config, self.workflow)
        if schema.project_id and "reference" in schema.fields and not schema.admin_fields:
            probe = probe_filterable(self._get, schema, "reference")
            missing += [probe] if probe else []
        if schema.project_id and schema.tracker_id:
            missing += missing_transitions(self._get, schema, self.config, self.workflow)
        return missing

    def setup(self, *, apply: bool = False) -> str:
        """The ``rails runner`` script creating everything; nothing can be created over REST that the
        script does not create too, so ``apply`` changes nothing."""
        return setup_script(self.config, self.workflow)

    # -- cases --------------------------------------------------------------------------------
    def find_case(self, reference: str) -> TrackedCase | None:
        hits = self._search(self.schema.project_id, "reference", reference)
        hits = [h for h in hits if h["tracker"]["id"] == self.schema.tracker_id]
        if len(hits) > 1:
            log.warning(
                "redmine: %d issues carry case reference %r (#%s); using the oldest",
                len(hits),
                reference,
                ", #".join(str(h["id"]) for h in hits),
            )
        return self._tracked(hits[0]) if hits else None

    def create_case(
        self,
        case: Case,
        *,
        state: str | None = None,
        at: datetime | None = None,
        sla: SlaFields | None = None,
    ) -> TrackedCase:
        """As the contract: ``sla`` is written in the creating request; ``at`` is ignored (Redmine cannot
        back-date). Returns the existing item when the reference exists."""
        existing = self.find_case(case.reference)
        if existing is not None:
            log.info("redmine: case %s already exists as #%s; not created again", case.reference, existing.key)
            return existing
        return self._post_case(case, state or self.workflow.initial, sla)

    def create_cases(
        self,
        cases: Iterable[Case],
        *,
        states: Mapping[str, str] | None = None,
        at: Mapping[str, datetime | None] | None = None,
        sla: Mapping[str, SlaFields] | None = None,
    ) -> Iterator[TrackedCase]:
        """As the contract, with one filtered lookup per 100 references instead of one per case, then one
        POST per new case. A created case carries its history (see ``_post_case``); ``at`` is ignored."""
        cases = list(cases)
        existing = self.find_cases(c.reference for c in cases)
        for case in cases:
            found = existing.get(case.reference)
            if found is None:
                state = (states or {}).get(case.reference) or self.workflow.initial
                found = self._post_case(case, state, (sla or {}).get(case.reference))
                existing[case.reference] = found
            yield found

    def find_cases(self, references: Iterable[str] | None = None) -> dict[str, TrackedCase]:
        """As the contract: the cases with ``references`` (every case when None) by reference.
        With references: one filtered request per 100 of them, whatever the project's size; without:
        one paged listing (1 request per 100 cases). The oldest wins on duplicates, as in find_case."""
        found: dict[str, TrackedCase] = {}
        if references is None:
            for tracked in self.list_cases():
                found.setdefault(tracked.case.reference, tracked)
            return found
        schema = self.schema
        hits = search_values(
            self._get, schema.project_id, schema.fields["reference"], schema.specs["reference"].name, references
        )
        for issue in sorted(hits, key=lambda i: i["id"]):
            if issue["tracker"]["id"] != schema.tracker_id:
                continue
            hit = self._tracked(issue)
            if hit is not None:
                found.setdefault(hit.case.reference, hit)
        return found

    def _post_case(self, case: Case, state: str, sla: SlaFields | None) -> TrackedCase:
        schema = self.schema
        fields = case_field_values(case, schema.fields, self.provider_name(case))
        if sla is not None:
            fields += sla_field_values(sla, schema.fields, set(self.workflow.clocks))
        payload = {
            "project_id": schema.project_id,
            "tracker_id": schema.tracker_id,
            "status_id": self._status_id(state),
            "subject": case.title,
            "description": render(description_markdown(case), self.config.text_formatting),
            "custom_fields": fields,
        }
        issue = self._write(
            lambda: self._send("post", "/issues.json", {"issue": payload})["issue"],
            applied=lambda: _first(self._search(schema.project_id, "reference", case.reference)),
        )
        self._verify_fields(issue, fields)
        if issue["status"]["id"] != payload["status_id"]:
            raise TransitionNotAllowed(
                f"Redmine created #{issue['id']} in status {issue['status']['name']!r}, not "
                f"{self._status_of_state[state]!r}: allow (new issue) -> that status for the role in "
                "Administration > Workflow",
                case=case.reference,
            )
        tracked = self._tracked_or_fail(issue, case.reference)
        # Created just now, so its history is known without the journals read_history would fetch:
        # creation in this status at created_on (a creation makes no journal). Callers may cache it.
        created = parse_time(issue["created_on"]) or tracked.updated_at
        tracked.history = [StatusChange(created, tracked.state)]
        return tracked

    def update_case(self, key: str, case: Case) -> TrackedCase:
        fields = case_field_values(case, self.schema.fields, self.provider_name(case))
        data = {
            "issue": {
                "subject": case.title,
                "custom_fields": fields,
                "description": render(description_markdown(case), self.config.text_formatting),
            }
        }
        self._write(lambda: self._send("put", f"/issues/{int(key)}.json", data), idempotent=True)
        issue = self._issue(key)
        self._verify_fields(issue, fields)
        return self._tracked_or_fail(issue, case.reference)

    def list_cases(self, updated_since: datetime | None = None) -> Iterator[TrackedCase]:
        """Pages of 100 (python-redmine pages when ``limit`` is left out), sorted by id. Redmine's
        ``>=T`` also returns items up to ~1 s before T; those are dropped, duplicates too."""
        params: dict[str, Any] = {
            "project_id": self.schema.project_id,
            "tracker_id": self.schema.tracker_id,
            "status_id": "*",
            "sort": "id",
        }
        floor = None
        if updated_since is not None:
            floor = updated_since.astimezone(UTC).replace(microsecond=0)
            params["updated_on"] = ">=" + fmt_time(floor)
        seen: set[int] = set()
        for resource in self.client.issue.filter(**params):
            issue = resource.raw()
            if issue["id"] in seen:
                continue
            seen.add(issue["id"])
            updated = parse_time(issue["updated_on"])
            if floor is not None and updated is not None and updated < floor:
                continue
            tracked = self._tracked(issue)
            if tracked is not None:
                yield tracked

    def read_history(self, key: str) -> list[StatusChange]:
        issue = self._issue(key, "journals")  # journals come only with a single-issue GET
        names = self.schema.status_names
        changes: list[tuple[datetime, int]] = []
        first: int | None = None
        for journal in sorted(issue.get("journals", []), key=lambda j: (j["created_on"], j["id"])):
            for detail in journal.get("details", []):
                if detail.get("property") == "attr" and detail.get("name") == "status_id":
                    first = int(detail["old_value"]) if first is None else first
                    at = required_time(journal.get("created_on"), f"issue #{key} journal {journal.get('id')}")
                    changes.append((at, int(detail["new_value"])))
        start = first if first is not None else issue["status"]["id"]
        created = required_time(issue.get("created_on"), f"issue #{key}")
        history = [StatusChange(created, self._state_of(names.get(start, str(start))))]
        history += [StatusChange(at, self._state_of(names.get(sid, str(sid)))) for at, sid in changes]
        return history

    def transition(self, key: str, state: str, *, note: str | None = None, at: datetime | None = None) -> None:
        target = self._status_id(state)
        issue = self._issue(key, "allowed_statuses")
        ref = _cf(issue, self.schema.fields["reference"])
        if issue["status"]["id"] == target:
            return
        allowed = {s["id"] for s in issue.get("allowed_statuses", [])}
        if target not in allowed:
            raise TransitionNotAllowed(
                f"Redmine does not allow #{key} {issue['status']['name']!r} -> "
                f"{self._status_of_state[state]!r} "
                f"for {self.schema.login}: Administration > Workflow, tracker {self.config.tracker!r}",
                case=ref,
            )
        data: dict[str, Any] = {"status_id": target}
        if note:
            data["notes"] = render(note, self.config.text_formatting)

        def applied() -> bool | None:
            return True if self._issue(key)["status"]["id"] == target else None

        self._write(lambda: self._send("put", f"/issues/{int(key)}.json", {"issue": data}), applied=applied)
        after = self._issue(key)
        if after["status"]["id"] != target:  # 204 and nothing changed: the silent refusal
            raise TransitionNotAllowed(
                f"Redmine accepted but ignored #{key} -> {self._status_of_state[state]!r} (status is still "
                f"{after['status']['name']!r}): check Administration > Workflow",
                case=ref,
            )

    def set_sla_fields(self, key: str, sla: SlaFields) -> None:
        fields = sla_field_values(sla, self.schema.fields, set(self.workflow.clocks))
        data = {"issue": {"custom_fields": fields}}
        self._write(lambda: self._send("put", f"/issues/{int(key)}.json", data), idempotent=True)
        if self.config.verify_writes and not {f["id"] for f in fields} <= self._accepted:
            self._verify_fields(self._issue(key), fields)

    def set_provider(self, key: str, name: str) -> None:
        fields = [{"id": self.schema.fields["provider"], "value": name}]
        data = {"issue": {"custom_fields": fields}}
        self._write(lambda: self._send("put", f"/issues/{int(key)}.json", data), idempotent=True)
        if not {f["id"] for f in fields} <= self._accepted:
            self._verify_fields(self._issue(key), fields)

    def comment(self, key: str, markdown: str) -> None:
        text = render(markdown, self.config.text_formatting)

        def applied() -> bool | None:
            journals = self._issue(key, "journals").get("journals", [])
            mine = [j for j in journals if j.get("user", {}).get("id") == self.schema.user_id]
            return True if mine and mine[-1].get("notes") == text else None

        self._write(lambda: self._send("put", f"/issues/{int(key)}.json", {"issue": {"notes": text}}), applied=applied)

    def comments(self, key: str) -> list[str]:
        """The journal notes (a reminder's note notifies the assignee and watchers by Redmine's own rules)."""
        journals = self._issue(key, "journals").get("journals", [])
        return [j["notes"] for j in journals if isinstance(j.get("notes"), str) and j["notes"]]


__all__ = ["RedmineConnector", "TrackerError"]

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
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from redminelib import Redmine

from casebridge.connectors import CASES, LIAISON, Connector, Missing
from casebridge.connectors.field_names import with_refusal_reason
from casebridge.connectors.redmine.config import RedmineConfig, status_names
from casebridge.connectors.redmine.http import CasebridgeEngine, OutcomeUnknown, default_policy
from casebridge.connectors.redmine.liaison import RedmineLiaison
from casebridge.connectors.redmine.lookup import ignored_filter, search_values
from casebridge.connectors.redmine.mapping import (
    case_field_values,
    case_from,
    description_markdown,
    fmt_time,
    parse_time,
    required_time,
    sla_field_values,
    sla_from,
)
from casebridge.connectors.redmine.schema import Schema, inspect_schema, missing_transitions, probe_filterable
from casebridge.connectors.redmine.setup import setup_script
from casebridge.connectors.redmine.text import render
from casebridge.errors import RejectedError, SchemaMissing, TrackerError, TransitionNotAllowed
from casebridge.workflows.cases import Case, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.model import Workflow

log = logging.getLogger(__name__)
T = TypeVar("T")


class RedmineConnector(RedmineLiaison, Connector):
    name = "redmine"
    config_model = RedmineConfig
    capabilities = frozenset({CASES, LIAISON})
    owns_retries = True  # tenacity policy inside (redmine.http); see connectors.Connector
    creates_with_sla = True  # the creating POST carries the SLA custom fields
    config: RedmineConfig

    def __init__(
        self,
        config: RedmineConfig,
        workflow: Workflow,
        *,
        client: Redmine | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``client`` is an already configured python-redmine client (it should use CasebridgeEngine);
        ``sleep`` is what retries wait with. Neither touches the network."""
        super().__init__(config, workflow)
        self._client = client
        self._policy = default_policy(attempts=config.retry_attempts, ceiling=config.retry_ceiling, sleep=sleep)
        self._schema: Schema | None = None
        # custom field ids Redmine has been seen to store on this tracker: later writes skip the re-read
        self._accepted: set[int] = set()
        self._status_of_state = status_names(config, workflow)

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def client(self) -> Redmine:
        if self._client is None:
            key = self.config.api_key.resolve(field="tracker.api_key")
            self._client = Redmine(
                self.config.url,
                key=key,
                engine=CasebridgeEngine,
                timeout=self.config.timeout,
                retry=self._policy,
                key_hint=f"the API key from {self.config.api_key.describe()}",
            )
        return self._client

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.engine.request("get", self.client.url + path, params=params)
        return answer

    def _send(self, method: str, path: str, data: dict[str, Any]) -> Any:
        return self.client.engine.request(method, self.client.url + path, data=data)

    @property
    def schema(self) -> Schema:
        """Ids resolved by name, once. Raises SchemaMissing listing everything that is missing."""
        if self._schema is None:
            schema, missing = inspect_schema(self._get, self.config, self.workflow)
            if missing:
                raise SchemaMissing(
                    f"Redmine at {self.config.url} lacks {len(missing)} things: " + "; ".join(map(str, missing))
                )
            self._schema = schema
        return self._schema

    def _write(
        self,
        attempt: Callable[[], T],
        *,
        applied: Callable[[], T | None] | None = None,
        idempotent: bool = False,
    ) -> T:
        """Run a write. When its outcome is unknown (timeout, 5xx), repeat it only if it is idempotent
        or ``applied()`` shows it did not take effect; ``applied()`` returns the result when it did."""
        for number in range(1, self._policy.attempts + 1):
            try:
                return attempt()
            except OutcomeUnknown:
                if (not idempotent and applied is None) or number == self._policy.attempts:
                    raise
                done = applied() if applied is not None and not idempotent else None
                if done is not None:
                    log.info("redmine: the write had been applied before its answer was lost")
                    return done
                self._policy.sleep(min(self._policy.ceiling, self._policy.base * 2**number))
        raise AssertionError("unreachable")

    def _issue(self, key: str, *includes: str) -> dict[str, Any]:
        params = {"include": ",".join(includes)} if includes else {}
        issue: dict[str, Any] = self._get(f"/issues/{int(key)}.json", **params)["issue"]
        return issue

    def _tracked(self, issue: dict[str, Any]) -> TrackedCase | None:
        values = {f["id"]: f.get("value") for f in issue.get("custom_fields", [])}
        ids = self.schema.fields
        case = case_from(issue, values, ids)
        if case is None:
            return None
        reason = values.get(ids.get("refusal_reason", -1))
        case = with_refusal_reason(case, reason, self.workflow.refusal_reasons, f"redmine: issue #{issue['id']}")
        return TrackedCase(
            key=str(issue["id"]),
            case=case,
            state=self._state_of(issue["status"]["name"]),
            updated_at=parse_time(issue["updated_on"]) or datetime.now(UTC),
            sla=sla_from(values, ids, list(self.workflow.clocks)),
            url=f"{self.client.url}/issues/{issue['id']}",
            provider=str(values.get(ids.get("provider", -1)) or ""),
        )

    def _tracked_or_fail(self, issue: dict[str, Any], reference: str) -> TrackedCase:
        """The case just written, read back; a write Redmine answered without the case's fields fails it."""
        tracked = self._tracked(issue)
        if tracked is None:
            raise TrackerError(
                f"Redmine issue #{issue.get('id')} came back without the casebridge fields just written "
                "(reference, request type): check the custom fields are enabled for the tracker and project",
                case=reference,
            )
        return tracked

    def _state_of(self, status_name: str) -> str:
        state = self.workflow.state_for_status("redmine", status_name)
        if state is None:
            for name, status in self._status_of_state.items():
                if status.casefold() == status_name.casefold():
                    return name
            log.warning("redmine: status %r maps to no workflow state; kept as is", status_name)
            return status_name
        return state

    def _status_id(self, state: str) -> int:
        if state not in self._status_of_state:
            raise RejectedError(f"unknown workflow state {state!r} (known: {', '.join(self._status_of_state)})")
        return self.schema.status_ids[self._status_of_state[state]]

    def _search(self, project_id: int, field_key: str, value: str) -> list[dict[str, Any]]:
        """Issues whose custom field equals ``value``: one request. The filter is spelled out
        (f[]/op/v) so values starting with an operator ('!', '~', '>=') or holding '|' stay literal."""
        field_id = self.schema.fields[field_key]
        cf = f"cf_{field_id}"
        found = self._get(
            "/issues.json",
            project_id=project_id,
            sort="id",
            limit=100,
            **{"f[]": ["status_id", cf], "op[status_id]": "*", f"op[{cf}]": "=", f"v[{cf}][]": [value]},
        )
        issues = found["issues"]
        hits = [i for i in issues if _cf(i, field_id) == value]
        if len(hits) < len(issues) and any(str(_cf(i, field_id)).casefold() != value.casefold() for i in issues):
            raise ignored_filter(self.schema.specs[field_key].name)
        return hits

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

    def _verify_fields(self, issue: dict[str, Any], sent: list[dict[str, Any]]) -> None:
        held = {f["id"]: f.get("value") for f in issue.get("custom_fields", [])}
        ignored = [f["id"] for f in sent if f["id"] not in held or (held[f["id"]] or "") != f["value"]]
        if not ignored:
            self._accepted.update(f["id"] for f in sent)
            return
        names = {v: self.schema.specs[k].name for k, v in self.schema.fields.items()}
        listed = ", ".join(repr(names.get(i, f"#{i}")) for i in ignored)
        raise SchemaMissing(
            f"Redmine ignored custom field(s) {listed} on issue #{issue['id']}: enable them "
            f"for tracker {self.config.tracker!r} and the project (or rerun the setup script)"
        )

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

    def close(self) -> None:
        if self._client is not None:
            self._client.engine.session.close()


def _first(items: list[T]) -> T | None:
    return items[0] if items else None


def _cf(issue: dict[str, Any], field_id: int) -> Any:
    for f in issue.get("custom_fields", []):
        if f["id"] == field_id:
            return f.get("value")
    return None


__all__ = ["RedmineConnector", "TrackerError"]

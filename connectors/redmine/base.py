"""The plumbing both halves of the Redmine connector share: the client, requests, the schema resolved by
name, writes whose outcome may be unknown, and the mapping of an issue to a tracked case.

``RedmineConnector`` (cases) and ``RedmineLiaison`` (the liaison queue) build on it; the silent failures
it guards against are listed in ``casebridge.connectors.redmine``'s docstring.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from redminelib import Redmine

from casebridge.connectors import Connector
from casebridge.connectors.field_names import with_refusal_reason
from casebridge.connectors.redmine.config import RedmineConfig, status_names
from casebridge.connectors.redmine.http import CasebridgeEngine, OutcomeUnknown, default_policy
from casebridge.connectors.redmine.lookup import ignored_filter
from casebridge.connectors.redmine.mapping import case_from, parse_time, sla_from
from casebridge.connectors.redmine.schema import Schema, inspect_schema
from casebridge.errors import RejectedError, SchemaMissing, TrackerError
from casebridge.workflows.cases import TrackedCase
from casebridge.workflows.model import Workflow

log = logging.getLogger(__name__)
T = TypeVar("T")


class RedmineBase(Connector):
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

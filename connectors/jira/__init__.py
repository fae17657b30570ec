"""Jira connector (Cloud and Data Center) on the ``jira`` package.

Layout in Jira: one issue per case in ``project``. The case reference is kept in a text custom field
(searchable with JQL), the whole case record as JSON in a multi-line custom field (so ``list_cases``
needs no request per issue), the SLA fields in custom fields per clock (due, warn, state) plus the
escalation level. Custom fields are found by name through ``/field``.

Cloud speaks REST API v3 (rich text is ADF; search is ``/search/jql`` with ``nextPageToken``); Data
Center speaks v2 (wiki markup; ``/search`` with ``startAt``). All HTTP goes through ``JiraHttp``: one
retry policy, one error mapping, no retries stacked on the client's own.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from casebridge.connectors import CASES, LIAISON, Connector, ConnectorConfig, Escalation, Missing, PostedEscalation
from casebridge.connectors.field_names import TrackerFieldNames
from casebridge.connectors.jira import bulk
from casebridge.connectors.jira.http import JiraHttp
from casebridge.connectors.jira.liaison import JiraOps
from casebridge.connectors.jira.schema import (
    TYPE_LABELS,
    FieldSpec,
    SchemaChecks,
    field_body,
    match_fields,
    missing_field,
    needed_fields,
)
from casebridge.connectors.retry import RetryPolicy
from casebridge.connectors.secrets import SecretRef, TrackerUrl
from casebridge.errors import ConfigError, NotFoundError, SchemaMissing, TrackerError, remember
from casebridge.workflows.cases import Case, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.model import Workflow

log = logging.getLogger(__name__)


class JiraFieldNames(TrackerFieldNames):
    """Names of the Jira custom fields (``{clock}`` is the clock's label)."""


class JiraConfig(ConnectorConfig):
    url: TrackerUrl
    deployment: Literal["cloud", "datacenter"] = "cloud"
    email: str | None = None
    api_token: SecretRef | None = None  # Cloud
    personal_access_token: SecretRef | None = None  # Data Center
    project: str = Field(min_length=1)
    issue_type: str = "Task"
    fields: JiraFieldNames = JiraFieldNames()
    # workflow state -> Jira status name, overriding the workflow file
    status_names: dict[str, str] = Field(default_factory=dict)
    # workflow state -> fields its transition screen needs, e.g. {closed = {resolution = {name = "Done"}}}
    transition_fields: dict[str, dict[str, Any]] = Field(default_factory=dict)
    liaison_project: str | None = None
    liaison_issue_type: str = "Task"
    link_type: str = "Relates"
    page_size: int = Field(default=100, ge=1, le=1000)
    timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=6, ge=1, le=20)
    retry_floor: float = Field(default=1.0, ge=0)
    retry_ceiling: float = Field(default=120.0, gt=0)
    backoff_base: float = Field(default=1.0, gt=0)
    near_rate_limit: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _credentials(self) -> JiraConfig:
        if self.deployment == "cloud" and (self.email is None or self.api_token is None):
            raise ValueError('Jira Cloud needs email = "..." and api_token = {env = "..."}')
        if self.deployment == "datacenter" and self.personal_access_token is None:
            raise ValueError('Jira Data Center needs personal_access_token = {env = "..."}')
        if self.retry_floor > self.retry_ceiling:
            raise ValueError("retry_floor must not exceed retry_ceiling")
        return self


class JiraConnector(Connector):
    """Cases and liaison queue in Jira. ``sleep`` (default time.sleep) is what retry waits call."""

    name: ClassVar[str] = "jira"
    config_model: ClassVar[type[ConnectorConfig]] = JiraConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({CASES, LIAISON})
    owns_retries: ClassVar[bool] = True  # tenacity policy inside; see connectors.Connector
    config: JiraConfig

    def __init__(
        self,
        config: ConnectorConfig,
        workflow: Workflow,
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(config, workflow)
        self.sleep = sleep
        self._clock = now
        self._http: JiraHttp | None = None
        self._field_ids: dict[str, str] | None = None
        self._missing_fields: list[FieldSpec] = []
        self._ops: JiraOps | None = None

    def now(self) -> datetime:
        """The injected clock (tests, replays): Jira stamps its own writes, this paces the rate limit."""
        return self._clock()

    # -- plumbing ------------------------------------------------------------------------------------
    @property
    def cloud(self) -> bool:
        return self.config.deployment == "cloud"

    def http(self) -> JiraHttp:
        """The HTTP boundary, built on first use: resolves the secret and checks the deployment type."""
        if self._http is None:
            self._http = self._connect()
        return self._http

    def _connect(self) -> JiraHttp:
        from jira import JIRA  # imported late: construction of the connector stays cheap

        cfg = self.config
        api_version = "3" if self.cloud else "2"
        options: dict[str, Any] = {"check_update": False, "rest_api_version": api_version}
        if self.cloud:
            if cfg.api_token is None or cfg.email is None:  # JiraConfig refuses it; a hand-built one may not
                raise ConfigError(
                    '[jira] email, api_token <- Jira Cloud needs email = "..." and api_token = {env = "..."}'
                )
            token = cfg.api_token.resolve(field="tracker.api_token")
            remember(base64.b64encode(f"{cfg.email}:{token}".encode()).decode())  # the Basic header's form
            client = JIRA(
                cfg.url,
                options=options,
                basic_auth=(cfg.email, token),
                max_retries=0,
                get_server_info=False,
                timeout=cfg.timeout,
            )
        else:
            if cfg.personal_access_token is None:
                raise ConfigError(
                    '[jira] personal_access_token <- Jira Data Center needs personal_access_token = {env = "..."}'
                )
            token = cfg.personal_access_token.resolve(field="tracker.personal_access_token")
            client = JIRA(
                cfg.url,
                options=options,
                token_auth=token,
                max_retries=0,
                get_server_info=False,
                timeout=cfg.timeout,
            )
        # the client's own retry loop is off (one attempt, no sleeping); ours wraps every call
        client._session.max_retries = 0
        policy = RetryPolicy(
            attempts=cfg.max_attempts,
            floor=cfg.retry_floor,
            ceiling=cfg.retry_ceiling,
            base=cfg.backoff_base,
            label="jira",
        )
        http = JiraHttp(
            client._session,
            cfg.url,
            api_version,
            policy=policy,
            sleep=self._sleep,
            timeout=cfg.timeout,
            near_limit=cfg.near_rate_limit,
            now=self._clock,
        )
        try:
            info = http.call("GET", "serverInfo") or {}
        except NotFoundError:
            raise ConfigError(
                f"[jira] url <- no Jira REST API v{options['rest_api_version']} at {cfg.url}; check the url "
                "and deployment (Data Center has no API v3)"
            ) from None
        reported = str(info.get("deploymentType", ""))
        if (reported == "Cloud") != self.cloud:
            want = "cloud" if reported == "Cloud" else "datacenter"
            raise ConfigError(f'[jira] deployment <- the server reports {reported!r}; set deployment = "{want}"')
        return http

    def _sleep(self, seconds: float) -> None:
        self.sleep(seconds)  # looked up at call time: tests may replace connector.sleep after construction

    def fields(self) -> dict[str, str]:
        """role -> custom field id, read from /field once per connector."""
        if self._field_ids is None:
            specs = needed_fields(self.config.fields, self.workflow, liaison=self.config.liaison_project is not None)
            listed = self.http().call("GET", "field") or []
            self._field_ids, self._missing_fields = match_fields(listed, specs)
        return self._field_ids

    def field_id(self, role: str) -> str:
        ids = self.fields()
        if role not in ids:
            names = ", ".join(repr(s.name) for s in self._missing_fields)
            raise SchemaMissing(f"jira: custom fields missing: {names}; run `casebridge setup jira`")
        return ids[role]

    def ops(self) -> JiraOps:
        if self._ops is None:
            self._ops = JiraOps(self)
        return self._ops

    def checks(self) -> SchemaChecks:
        return SchemaChecks(self, self.ops())

    def status_name(self, state: str) -> str:
        if state in self.config.status_names:
            return self.config.status_names[state]
        return self.workflow.states[state].status_for("jira")

    def state_of(self, status: str) -> str:
        wanted = status.casefold()
        for state, name in self.config.status_names.items():
            if name.casefold() == wanted:
                return state
        found = self.workflow.state_for_status("jira", status)
        if found is None:
            log.warning("jira: status %r maps to no workflow state; add it to [jira] status_names", status)
            return status
        return found

    def identity(self) -> str:
        return f"jira:{self.config.url} project {self.config.project}"

    # -- schema --------------------------------------------------------------------------------------
    def check_schema(self) -> list[Missing]:
        self._field_ids = None
        self.fields()
        missing = [missing_field(spec) for spec in self._missing_fields]
        missing += self.checks().check_project(self.config.project, self.config.issue_type, statuses=True)
        if self.config.liaison_project:
            missing += self.checks().check_project(
                self.config.liaison_project, self.config.liaison_issue_type, statuses=False
            )
            missing += self.checks().check_link_type(self.config.link_type)
        missing += self.checks().check_transitions()
        return missing

    def setup(self, *, apply: bool = False) -> str:
        """Without ``apply``: what the workflow needs in Jira, from the configuration alone (no network,
        no token). With ``apply``: compare with the server and create the missing custom fields."""
        if not apply:
            return self._needs()
        missing = self.check_schema()
        done: list[str] = []
        if apply:
            for spec in list(self._missing_fields):
                try:
                    created = self.http().call("POST", "field", json=field_body(spec))
                except TrackerError as exc:
                    done.append(f"could not create custom field {spec.name!r}: {exc}")
                    break
                done.append(f"created custom field {spec.name!r} ({created.get('id')})")
            if done:
                missing = self.check_schema()
        lines = [*done]
        if missing:
            lines.append("An administrator must add in Jira:")
            lines += [f"  - {m}" for m in missing]
        else:
            lines.append(f"Jira project {self.config.project} is ready for workflow {self.workflow.name!r}.")
        return "\n".join(lines)

    def _needs(self) -> str:
        cfg = self.config
        specs = needed_fields(cfg.fields, self.workflow, liaison=cfg.liaison_project is not None)
        lines = [f"casebridge needs in Jira ({cfg.url}, project {cfg.project}, issue type {cfg.issue_type}):"]
        lines += [f"  - custom field {s.name!r} ({TYPE_LABELS[s.type]})" for s in specs]
        statuses = sorted({self.status_name(state) for state in self.workflow.states})
        lines.append(f"  - statuses in the project's workflow: {', '.join(statuses)}")
        for move in self.workflow.transitions:
            sources = ", ".join(sorted(self.status_name(s) if s in self.workflow.states else s for s in move.sources))
            lines.append(f"  - transition to {self.status_name(move.target)} from {sources}")
        if cfg.liaison_project:
            lines.append(f"  - liaison project {cfg.liaison_project} (issue type {cfg.liaison_issue_type})")
            lines.append(f"  - issue link type {cfg.link_type!r}")
        lines.append("`casebridge check` compares this with the server; `setup jira --apply` creates the fields.")
        return "\n".join(lines)

    # -- cases ---------------------------------------------------------------------------------------
    def find_case(self, reference: str) -> TrackedCase | None:
        return self.ops().find_case(reference)

    def find_cases(self, references: Iterable[str]) -> dict[str, TrackedCase]:
        """One search per 50 references (``bulk.find_cases``)."""
        return bulk.find_cases(self.ops(), references)

    def create_cases(
        self,
        cases: Iterable[Case],
        *,
        states: Mapping[str, str] | None = None,
        at: Mapping[str, datetime | None] | None = None,
        sla: Mapping[str, SlaFields] | None = None,
    ) -> Iterator[TrackedCase]:
        """The batch looked up in one search per 50, the missing created with ``POST issue/bulk`` (50 a
        request), each then walked to its state (``bulk.create_cases``). Jira stamps its own time
        (``at`` is ignored) and takes no SLA fields at creation."""
        if sla is not None:
            raise ConfigError("jira: create_cases takes no SLA fields (creates_with_sla is False)")
        return bulk.create_cases(self.ops(), cases, states)

    def get_case(self, key: str, reference: str) -> TrackedCase | None:
        """The case of issue ``key``: one GET, no search. None when the issue is gone."""
        try:
            return self.ops().get(key)
        except NotFoundError:
            return None

    def create_case(
        self,
        case: Case,
        *,
        state: str | None = None,
        at: datetime | None = None,
        sla: SlaFields | None = None,
    ) -> TrackedCase:
        if sla is not None:
            raise ConfigError("jira: create_case takes no SLA fields (creates_with_sla is False)")
        return self.ops().create_case(case, state=state)

    def update_case(self, key: str, case: Case) -> TrackedCase:
        return self.ops().update_case(key, case)

    def list_cases(self, updated_since: datetime | None = None) -> Iterator[TrackedCase]:
        return self.ops().list_cases(updated_since)

    def read_history(self, key: str) -> list[StatusChange]:
        return self.ops().read_history(key)

    def transition(self, key: str, state: str, *, note: str | None = None, at: datetime | None = None) -> None:
        self.ops().transition(key, state)
        if note:
            self.comment(key, note)

    def set_sla_fields(self, key: str, sla: SlaFields) -> None:
        self.ops().set_sla_fields(key, sla)

    def set_provider(self, key: str, name: str) -> None:
        self.http().call("PUT", f"issue/{key}", json={"fields": {self.field_id("provider"): name}})

    def comment(self, key: str, markdown: str) -> None:
        self.ops().comment(key, markdown)

    def comments(self, key: str) -> list[str]:
        return self.ops().comments(key)

    def post_reminder(self, key: str, markdown: str, *, notify: frozenset[str] = frozenset()) -> None:
        """A comment that mentions the assignee (by account id on Cloud, user name on Data Center), so
        Jira notifies them; watchers are notified of every comment by Jira itself."""
        who = self.ops().assignee(key) if "assignee" in notify else None
        self.ops().comment(key, markdown, mention=who)

    # -- liaison queue ---------------------------------------------------------------------------------
    def find_escalation(self, dedupe_key: str) -> PostedEscalation | None:
        return self.ops().find_escalation(dedupe_key)

    def find_escalations(self, dedupe_keys: Iterable[str]) -> dict[str, PostedEscalation]:
        return self.ops().find_escalations(dedupe_keys)

    def post_escalation(self, escalation: Escalation) -> PostedEscalation:
        return self.ops().post_escalation(escalation)

    def complete_escalation(self, escalation: Escalation, posted: PostedEscalation) -> None:
        """Attach the whole dossier when the description had to be cut to Jira's limit (once)."""
        self.ops().limits.complete(escalation, posted)

    def link_escalation(self, key: str, posted: PostedEscalation) -> None:
        self.ops().link(key, posted.key)

    def link_cases(self, key_a: str, key_b: str, *, note: str) -> None:
        """An issue link of the configured link type between two case issues (idempotent)."""
        self.ops().link(key_a, key_b)

    def close(self) -> None:
        if self._http is not None:
            self._http.session.close()
            self._http = None

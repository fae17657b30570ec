"""The Jira connector's operations on issues: search, create, history, transitions, SLA fields, comments
(escalations to the liaison queue and issue links: ``jira/liaison.py``). Split from the connector
(config, connection, schema) to keep modules small."""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from casebridge.connectors.field_names import with_refusal_reason
from casebridge.connectors.jira.limits import TextLimits
from casebridge.connectors.jira.render import adf_plain_text, md_escape, to_adf, to_wiki
from casebridge.errors import NotFoundError, RejectedError, TrackerError, TransitionNotAllowed
from casebridge.workflows.cases import Case, ClockFields, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.render import md_paragraphs

if TYPE_CHECKING:
    from casebridge.connectors.jira import JiraConnector

log = logging.getLogger(__name__)
# JQL dates are read in the account's time zone (GET /myself says which). When it cannot be learnt, widen
# the window by the largest UTC offset instead; either way answers are filtered exactly on their timestamps
TZ_MARGIN = timedelta(hours=14)
_UNKNOWN = object()
_TOKENS = re.compile(r"[^\W_]+")
MENTION_RESERVE = 300  # characters a mention adds to a comment (ADF node or [~name]), kept free of the limit


_ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._@-]{0,127}")


def jql_string(value: str) -> str:
    """``value`` as a JQL string literal: double-quoted, with backslash, quote and control escapes."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{out}"'


def phrase_query(value: str) -> str | None:
    """The ``~`` operand that finds ``value`` as a phrase: Jira's text index splits on punctuation and
    treats it as Lucene syntax, so only the letter/digit runs are sent (exact equality is checked on the
    answers). None when ``value`` has no letters or digits."""
    tokens = _TOKENS.findall(value)
    return jql_string('"' + " ".join(tokens) + '"') if tokens else None


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def required_time(value: Any, what: str) -> datetime:
    """A timestamp Jira always sends (``created`` of an issue or a changelog entry); missing: TrackerError."""
    moment = parse_time(value)
    if moment is None:
        raise TrackerError(f"jira: {what} has no time stamp; the answer is not one Jira sends")
    return moment


def jira_time(value: datetime) -> str:
    """Jira's datetime write format (milliseconds, UTC)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


class CaseOps:
    def __init__(self, connector: JiraConnector) -> None:
        self.c = connector
        self.cfg = connector.config
        self._zone: Any = _UNKNOWN
        self.limits = TextLimits(self)

    # -- text ----------------------------------------------------------------------------------------
    def rich(self, markdown: str) -> Any:
        return to_adf(markdown) if self.c.cloud else to_wiki(markdown)

    def plain(self, text: str) -> Any:
        """A multi-line field holding machine data (the case JSON): a code block, read back verbatim."""
        if self.c.cloud:
            return {
                "type": "doc",
                "version": 1,
                "content": [{"type": "codeBlock", "content": [{"type": "text", "text": text}]}],
            }
        return text

    def describe(self, case: Case) -> str:
        """The human-readable description of a case (Markdown, every value escaped)."""
        lines = [f"**Reference:** {md_escape(case.reference)}", ""]
        for label, value in (
            ("Provider", case.provider),
            ("Request type", case.request_type.value),
            ("Legal basis", case.legal_basis.value),
            ("Court order", case.court_order_ref),
            ("Requesting agency", case.requesting_agency),
            ("Officer", case.officer),
            ("Submitted", case.submitted_at.isoformat() if case.submitted_at else None),
        ):
            if value:
                lines.append(f"- {label}: {md_escape(str(value))}")
        if case.facts:  # one paragraph per line, as in the dossier
            lines += [f"\n{paragraph}" for paragraph in md_paragraphs(case.facts)]
        return "\n".join(lines)

    def case_fields(self, case: Case) -> dict[str, Any]:
        data = json.dumps(case.to_record(), sort_keys=True)
        self.limits.check_plain(self.cfg.fields.case_data, data, case.reference)
        return {
            "summary": case.title[:255],
            "description": self.limits.rich(self.describe(case))[0],
            self.c.field_id("reference"): case.reference,
            self.c.field_id("case_data"): self.plain(data),
            self.c.field_id("refusal_reason"): case.refusal_reason,
            self.c.field_id("provider"): self.c.provider_name(case),
        }

    # -- search ----------------------------------------------------------------------------------------
    def search(
        self, jql: str, fields: list[str], *, page_size: int | None = None, expand: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every issue matching ``jql``, paged (Cloud: nextPageToken; DC: startAt)."""
        size = page_size or self.cfg.page_size
        http = self.c.http()
        body: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": size}
        if self.c.cloud:
            if expand:
                body["expand"] = expand  # a comma-separated string in /search/jql
            while True:
                page = http.call("POST", "search/jql", json=body) or {}
                yield from page.get("issues", [])
                body["nextPageToken"] = page.get("nextPageToken")
                if page.get("isLast", True) or not body["nextPageToken"]:
                    return
        if expand:
            body["expand"] = [expand]  # a list in DC's /search
        body["startAt"] = 0
        while True:
            page = http.call("POST", "search", json=body) or {}
            issues = page.get("issues", [])
            yield from issues
            body["startAt"] += len(issues)
            if not issues or body["startAt"] >= int(page.get("total", 0)):
                return

    def case_field_list(self) -> list[str]:
        ids = self.c.fields()
        sla = [fid for role, fid in ids.items() if role.startswith("sla:") or role == "escalation_level"]
        reference, data = (
            self.c.field_id("reference"),
            self.c.field_id("case_data"),
        )  # SchemaMissing if absent
        reason, provider = self.c.field_id("refusal_reason"), self.c.field_id("provider")
        return ["summary", "status", "updated", "created", reference, data, reason, provider, *sla]

    def by_reference(self, project: str, role: str, value: str, fields: list[str]) -> list[dict[str, Any]]:
        """Issues of ``project`` whose ``role`` field equals ``value`` exactly, oldest first."""
        fid = self.c.field_id(role)
        number = fid.rsplit("_", 1)[-1]
        phrase = phrase_query(value)
        test = f"cf[{number}] ~ {phrase}" if phrase else f"cf[{number}] is not EMPTY"
        jql = f"project = {jql_string(project)} AND {test} ORDER BY key ASC"
        found = [i for i in self.search(jql, [*fields, fid]) if i["fields"].get(fid) == value]
        return sorted(found, key=lambda i: int(i["id"]))

    def by_references(self, project: str, role: str, values: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """The oldest issue of ``project`` whose ``role`` field equals each of ``values`` exactly, by
        value: one search (``cf ~ a OR cf ~ b ...``) for all of them, answers checked for equality."""
        fid = self.c.field_id(role)
        number = fid.rsplit("_", 1)[-1]
        tests = [f"cf[{number}] ~ {p}" if (p := phrase_query(v)) else f"cf[{number}] is not EMPTY" for v in values]
        jql = f"project = {jql_string(project)} AND ({' OR '.join(dict.fromkeys(tests))}) ORDER BY key ASC"
        wanted, found = set(values), {}
        for issue in sorted(self.search(jql, [*fields, fid]), key=lambda i: int(i["id"])):
            value = issue["fields"].get(fid)
            if value in wanted and value not in found:
                found[value] = issue
        return found

    def tracked(self, issue: dict[str, Any]) -> TrackedCase | None:
        fields = issue["fields"]
        ids = self.c.fields()
        raw = fields.get(ids["case_data"])
        text = adf_plain_text(raw) if isinstance(raw, dict) else raw
        try:
            case = Case.model_validate(json.loads(text or ""))
        except (ValueError, ValidationError):
            log.warning("jira: %s has no valid case data in %r; skipped", issue.get("key"), self.cfg.fields.case_data)
            return None
        reason = fields.get(ids.get("refusal_reason", ""))
        case = with_refusal_reason(case, reason, self.c.workflow.refusal_reasons, f"jira: {issue.get('key')}")
        return TrackedCase(
            key=issue["key"],
            case=case,
            state=self.c.state_of(fields["status"]["name"]),
            updated_at=parse_time(fields.get("updated")) or datetime.now(UTC),
            sla=self.read_sla(fields),
            url=f"{self.cfg.url.rstrip('/')}/browse/{issue['key']}",
            provider=str(fields.get(ids.get("provider", "")) or ""),
        )

    def read_sla(self, fields: dict[str, Any]) -> SlaFields:
        ids = self.c.fields()
        clocks: dict[str, ClockFields] = {}
        for name in self.c.workflow.clocks:
            due, warn, state = (fields.get(ids.get(f"sla:{name}:{part}", "")) for part in ("due", "warn", "state"))
            if due or warn or state:
                clocks[name] = ClockFields(parse_time(due), parse_time(warn), str(state or ""))
        level = fields.get(ids.get("escalation_level", ""))
        return SlaFields(clocks=clocks, escalation_level=int(level or 0))

    # -- cases ------------------------------------------------------------------------------------------
    def find_case(self, reference: str) -> TrackedCase | None:
        found = self.by_reference(self.cfg.project, "reference", reference, self.case_field_list())
        if len(found) > 1:
            log.warning(
                "jira: %d issues carry reference %r (%s); using the oldest",
                len(found),
                reference,
                ", ".join(i["key"] for i in found),
            )
        return self.tracked(found[0]) if found else None

    def get(self, key: str) -> TrackedCase:
        issue = self.c.http().call("GET", f"issue/{key}", params={"fields": ",".join(self.case_field_list())})
        tracked = self.tracked(issue)
        if tracked is None:
            raise NotFoundError(f"jira: {key} is not a casebridge case (no case data)")
        return tracked

    def create_case(self, case: Case, *, state: str | None) -> TrackedCase:
        existing = self.find_case(case.reference)
        if existing is not None:
            log.info("jira: case %s exists as %s; not created again", case.reference, existing.key)
            return existing
        body = {
            "fields": {
                "project": {"key": self.cfg.project},
                "issuetype": {"name": self.cfg.issue_type},
                **self.case_fields(case),
            }
        }

        def landed() -> dict[str, Any] | None:
            found = self.find_case(case.reference)
            return {"key": found.key} if found else None

        created = self.c.http().call("POST", "issue", json=body, landed=landed, case=case.reference)
        key = created["key"]
        initial = self.c.workflow.initial
        if state and state != initial:
            for step in self.path(initial, state):
                self.transition(key, step)
        return self.get(key)

    def path(self, source: str, target: str) -> list[str]:
        """Shortest sequence of workflow states from ``source`` to ``target`` (BFS over the workflow)."""
        queue: deque[tuple[str, list[str]]] = deque([(source, [])])
        seen = {source}
        while queue:
            state, steps = queue.popleft()
            for t in self.c.workflow.transitions:
                if t.target not in seen and (state in t.sources or "*" in t.sources):
                    if t.target == target:
                        return [*steps, target]
                    seen.add(t.target)
                    queue.append((t.target, [*steps, t.target]))
        raise TransitionNotAllowed(f"workflow {self.c.workflow.name!r} has no path from {source!r} to {target!r}")

    def update_case(self, key: str, case: Case) -> TrackedCase:
        self.c.http().call("PUT", f"issue/{key}", json={"fields": self.case_fields(case)}, case=case.reference)
        return self.get(key)

    def account_zone(self) -> ZoneInfo | None:
        """The time zone JQL reads dates in (the account's, from /myself), once per connector; None when
        Jira does not say or names a zone this host does not know."""
        if self._zone is _UNKNOWN:
            self._zone = None
            try:
                name = (self.c.http().call("GET", "myself") or {}).get("timeZone")
                self._zone = ZoneInfo(str(name)) if name else None
            except (TrackerError, ZoneInfoNotFoundError, ValueError) as exc:
                log.info("jira: account time zone unknown (%s); searching with a %s margin", exc, TZ_MARGIN)
        zone: ZoneInfo | None = self._zone
        return zone

    def jql_moment(self, moment: datetime) -> str:
        """A JQL date literal (minute precision, floored) at or before ``moment`` in the account's zone.
        Without the zone: ``moment`` minus the largest UTC offset, in UTC (a wider window, never a gap)."""
        zone = self.account_zone()
        if zone is None:
            return (moment - TZ_MARGIN).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        local = moment.astimezone(zone)
        if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
            # a wall time that occurs twice (clocks set back): Jira may read the later one; step back
            # past the repeated hour so the window never starts after ``moment``
            local = (moment - timedelta(hours=1)).astimezone(zone)
        return local.strftime("%Y-%m-%d %H:%M")

    def list_cases(self, updated_since: datetime | None) -> Iterator[TrackedCase]:
        ref_number = self.c.field_id("reference").rsplit("_", 1)[-1]
        clauses = [f"project = {jql_string(self.cfg.project)}", f"cf[{ref_number}] is not EMPTY"]
        if updated_since is not None:
            clauses.append(f"updated >= {jql_string(self.jql_moment(updated_since))}")
        jql = " AND ".join(clauses) + " ORDER BY key ASC"
        # the changelog comes with the search, so a pass needs no request per case for history
        for issue in self.search(jql, self.case_field_list(), expand="changelog"):
            tracked = self.tracked(issue)
            if tracked is None or (updated_since is not None and tracked.updated_at < updated_since):
                continue
            log_part = issue.get("changelog") or {}
            histories = log_part.get("histories", [])
            if int(log_part.get("total", len(histories))) <= len(histories):  # else truncated: read_history
                tracked.history = self.history_from(issue["fields"], histories)
            yield tracked

    def read_history(self, key: str) -> list[StatusChange]:
        http = self.c.http()
        issue = http.call("GET", f"issue/{key}", params={"fields": "status,created", "expand": "changelog"})
        log_part = issue.get("changelog") or {}
        histories = list(log_part.get("histories", []))
        if self.c.cloud and int(log_part.get("total", 0)) > len(histories):
            histories, start = [], 0  # Cloud embeds at most 100 entries: page the full changelog
            while True:
                page = http.call("GET", f"issue/{key}/changelog", params={"startAt": start, "maxResults": 100})
                histories += page.get("values", [])
                start += len(page.get("values", []))
                if page.get("isLast", True) or not page.get("values"):
                    break
        return self.history_from(issue["fields"], histories)

    def history_from(self, fields: dict[str, Any], histories: list[dict[str, Any]]) -> list[StatusChange]:
        """Status changes from changelog entries; the first is the status at creation."""
        moves = [
            (required_time(h.get("created"), f"changelog entry {h.get('id', '?')}"), item)
            for h in histories
            for item in h.get("items", [])
            if item.get("field") == "status" or item.get("fieldId") == "status"
        ]
        moves.sort(key=lambda m: m[0])
        first = moves[0][1].get("fromString") if moves else fields["status"]["name"]
        changes = [StatusChange(required_time(fields.get("created"), "the issue"), self.c.state_of(first))]
        changes += [StatusChange(at, self.c.state_of(item.get("toString") or "")) for at, item in moves]
        return changes

    # -- transitions -------------------------------------------------------------------------------------
    def current_status(self, key: str) -> str:
        issue = self.c.http().call("GET", f"issue/{key}", params={"fields": "status"})
        name: str = issue["fields"]["status"]["name"]
        return name

    def transition(self, key: str, state: str) -> None:
        if state not in self.c.workflow.states:
            raise TransitionNotAllowed(f"jira: {state!r} is not a state of workflow {self.c.workflow.name!r}")
        target = self.c.status_name(state)
        http = self.c.http()
        listed = http.call("GET", f"issue/{key}/transitions", params={"expand": "transitions.fields"}) or {}
        options = listed.get("transitions", [])
        chosen = next((t for t in options if t["to"]["name"].casefold() == target.casefold()), None)
        if chosen is None:
            current = self.current_status(key)
            if current.casefold() == target.casefold():
                return
            available = ", ".join(f"{t['name']!r} -> {t['to']['name']!r}" for t in options) or "none"
            raise TransitionNotAllowed(
                f"jira: {key}: the Jira workflow has no transition from {current!r} to {target!r} "
                f"(state {state!r}); available: {available}; "
                f"add it in the workflow of project {self.cfg.project}"
            )
        given = self.cfg.transition_fields.get(state, {})
        required = [
            f.get("name", fid)
            for fid, f in (chosen.get("fields") or {}).items()
            if f.get("required") and not f.get("hasDefaultValue") and fid not in given
        ]
        if required:
            raise TransitionNotAllowed(
                f"jira: {key}: transition {chosen['name']!r} to {target!r} "
                f"requires fields {', '.join(required)}; "
                f"set them in [jira.transition_fields.{state}]"
            )
        body: dict[str, Any] = {"transition": {"id": chosen["id"]}}
        if given:
            body["fields"] = given

        def landed() -> bool | None:
            return True if self.current_status(key).casefold() == target.casefold() else None

        http.call("POST", f"issue/{key}/transitions", json=body, landed=landed)

    # -- SLA fields and comments ----------------------------------------------------------------------------
    def set_sla_fields(self, key: str, sla: SlaFields) -> None:
        """Writes the escalation level and the clocks in ``sla`` (sync sends only the changed ones); clocks
        not named are left as they are. A clock with no due, warn and state is cleared."""
        fields: dict[str, Any] = {self.c.field_id("escalation_level"): sla.escalation_level}
        for name, clock in sla.clocks.items():
            if name not in self.c.workflow.clocks:
                raise RejectedError(f"jira: {key}: {name!r} is not a clock of workflow {self.c.workflow.name!r}")
            fields[self.c.field_id(f"sla:{name}:due")] = jira_time(clock.due_at) if clock.due_at else None
            fields[self.c.field_id(f"sla:{name}:warn")] = jira_time(clock.warn_at) if clock.warn_at else None
            fields[self.c.field_id(f"sla:{name}:state")] = clock.state or None
        self.c.http().call("PUT", f"issue/{key}", json={"fields": fields})

    def comments(self, key: str) -> list[str]:
        """Every comment's body as text (ADF: its JSON, so markers and mentions are found verbatim)."""
        out: list[str] = []
        start = 0
        while True:
            page = self.c.http().call("GET", f"issue/{key}/comment", params={"startAt": start, "maxResults": 100})
            batch = page.get("comments", []) if isinstance(page, dict) else []
            out += [b if isinstance(b := c.get("body"), str) else json.dumps(b) for c in batch]
            start += len(batch)
            if not batch or start >= int(page.get("total", 0)):
                return out

    def assignee(self, key: str) -> str | None:
        """The assignee's account id (Cloud) or user name (Data Center), when it is a plain token."""
        fields = self.c.http().call("GET", f"issue/{key}", params={"fields": "assignee"}).get("fields") or {}
        user = fields.get("assignee") or {}
        ident = user.get("accountId") if self.c.cloud else user.get("name")
        return ident if isinstance(ident, str) and _ACCOUNT_ID.fullmatch(ident) else None

    def mention(self, body: Any, who: str) -> Any:
        """``body`` (ADF or wiki) opened with a mention of ``who``, which notifies them."""
        if self.c.cloud:
            mention = [{"type": "mention", "attrs": {"id": who}}, {"type": "text", "text": " "}]
            lead = {"type": "paragraph", "content": mention}
            return {**body, "content": [lead, *body.get("content", [])]}
        return f"[~{who}]\n{body}"

    def comment(self, key: str, markdown: str, *, mention: str | None = None) -> None:
        rich = self.limits.rich(markdown, reserve=MENTION_RESERVE if mention else 0)[0]
        body = {"body": self.mention(rich, mention) if mention else rich}

        def landed() -> bool | None:
            page = self.c.http().call("GET", f"issue/{key}/comment", params={"orderBy": "-created", "maxResults": 20})
            return True if any(c.get("body") == body["body"] for c in page.get("comments", [])) else None

        self.c.http().call("POST", f"issue/{key}/comment", json=body, landed=landed)

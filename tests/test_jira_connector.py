"""The Jira connector against the fake Jira, in Cloud and Data Center mode (every test runs in both).

Nothing is mocked: the real ``jira`` client talks HTTP to the fake, which checks every request and
response against Atlassian's OpenAPI documents (a mismatch fails the test at teardown). Retry waits go to
a recording ``sleep`` so no test waits in real time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from casebridge.connectors import Escalation
from casebridge.connectors.jira import JiraConnector, JiraFieldNames
from casebridge.connectors.jira.cases import jql_string, phrase_query
from casebridge.errors import (
    AuthenticationFailed,
    ConfigError,
    SchemaMissing,
    TrackerUnreachable,
    TransientError,
    TransitionNotAllowed,
)
from casebridge.workflows.cases import Case, ClockFields, SlaFields
from tests.jira_server import JiraServer
from tests.jira_server.state import adf_problem

pytest_plugins = ["tests.jira_fixtures"]

HOSTILE_REFERENCES = [
    "FIA-CCW-2026-0142",
    'FIA "CCW" 2026',
    "FIA\\CCW\\2026",
    'FIA" OR project = NCB OR reference ~ "',
    "AND OR NOT EMPTY",
    "FIA-CCW-2026-014",  # a prefix of the first one: must not match it
    "fia-ccw-2026-0142 ",  # differs by case (and a space stripped by the model): a different reference
    "'single' & {curly} [square] *star* ~tilde",
]


def make_case(reference: str = "FIA-CCW-2026-0142", **extra: object) -> Case:
    fields: dict[str, object] = {
        "reference": reference,
        "title": f"Subscriber data for {reference}",
        "provider": "Meta Platforms",
        "request_type": "subscriber",
        "legal_basis": "voluntary",
        "submitted_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    }
    fields.update(extra)
    return Case.model_validate(fields)


def _text_nodes(node: object) -> list[dict]:
    if isinstance(node, dict):
        own = [node] if node.get("type") == "text" else []
        return own + [t for child in node.get("content", []) for t in _text_nodes(child)]
    return []


def issues_in(server: JiraServer, project: str = "CASE") -> list:
    return [i for i in server.state.issues.values() if i.project == project]


# -- cases ----------------------------------------------------------------------
def test_create_then_find_and_list(jira: JiraConnector, jira_server: JiraServer) -> None:
    created = jira.create_case(make_case())
    assert created.key == "CASE-1" and created.state == "draft"
    assert created.url and created.url.endswith("/browse/CASE-1")
    found = jira.find_case("FIA-CCW-2026-0142")
    assert found is not None and found.case == make_case()
    assert [c.key for c in jira.list_cases()] == ["CASE-1"]
    assert jira.find_case("FIA-CCW-2026-0143") is None


def test_create_is_idempotent_by_reference(jira: JiraConnector, jira_server: JiraServer) -> None:
    first = jira.create_case(make_case())
    again = jira.create_case(make_case(title="changed"))
    assert again.key == first.key
    assert len(issues_in(jira_server)) == 1


def test_hostile_references_each_find_exactly_their_case(jira: JiraConnector) -> None:
    keys = {ref: jira.create_case(make_case(ref)).key for ref in HOSTILE_REFERENCES}
    assert len(set(keys.values())) == len(HOSTILE_REFERENCES)
    for ref, key in keys.items():
        found = jira.find_case(ref.strip())
        assert found is not None and found.key == key, ref
        assert found.case.reference == ref.strip()


def test_jql_values_are_quoted_and_escaped() -> None:
    assert jql_string('a"b\\c') == '"a\\"b\\\\c"'
    assert jql_string("x\ny") == '"x\\ny"'
    assert phrase_query('FIA" OR x') == '"\\"FIA OR x\\""'
    assert phrase_query('"""') is None


def test_create_in_a_later_state_walks_the_workflow(jira: JiraConnector, jira_server: JiraServer) -> None:
    created = jira.create_case(make_case(), state="submitted")
    assert created.state == "submitted"
    states = [c.state for c in jira.read_history(created.key)]
    assert states == ["draft", "legal_review", "approved", "submitted"]


def test_update_case_overwrites_fields(jira: JiraConnector) -> None:
    key = jira.create_case(make_case()).key
    updated = jira.update_case(key, make_case(title="New title", provider="Google LLC"))
    assert updated.case.title == "New title" and updated.case.provider == "Google LLC"


def test_markup_in_case_data_shows_as_text(jira: JiraConnector, jira_server: JiraServer) -> None:
    case = make_case(title="*bold* {code} [x|http://evil]", facts="<b>hi</b> _u_ {noformat} h1. x \\\\ break")
    key = jira.create_case(case).key
    assert jira_server.state.find_issue(key).values["summary"] == "*bold* {code} [x|http://evil]"
    stored = jira_server.state.find_issue(key).values["description"]
    if jira_server.mode == "cloud":
        assert adf_problem(stored) is None
        texts = _text_nodes(stored)
        data = [t for t in texts if "<b>hi</b> _u_ {noformat}" in t["text"]]
        assert len(data) == 1 and not any("marks" in t for t in data)  # no formatting came from case data
    else:
        assert "\\{noformat\\}" in stored and "<b>hi</b>" in stored and "\\_u\\_" in stored
        assert "&#92;&#92;" in stored  # a literal backslash pair, not a wiki line break


# -- history, transitions ----------------------------------------------------------------------
def test_history_follows_transitions_made_in_jira(jira: JiraConnector, jira_server: JiraServer) -> None:
    clock = jira_server.clock  # type: ignore[attr-defined]
    key = jira.create_case(make_case()).key
    issue = jira_server.state.find_issue(key)
    start = clock()
    for minutes, status in ((10, "Legal review"), (30, "Approved"), (60, "Submitted to provider")):
        clock.advance(minutes=minutes)
        with jira_server.state.lock:
            jira_server.state.move(issue, status, clock())
    history = jira.read_history(key)
    assert [(h.state, h.at - start) for h in history] == [
        ("draft", timedelta(0)),
        ("legal_review", timedelta(minutes=10)),
        ("approved", timedelta(minutes=40)),
        ("submitted", timedelta(minutes=100)),
    ]
    assert jira.find_case(make_case().reference).state == "submitted"


def test_missing_transition_names_it(jira: JiraConnector, jira_server: JiraServer) -> None:
    key = jira.create_case(make_case()).key
    with pytest.raises(TransitionNotAllowed) as caught:
        jira.transition(key, "fulfilled")
    message = str(caught.value)
    assert "'Draft'" in message and "'Fulfilled'" in message and "\n" not in message


def test_transition_removed_from_jira_workflow_is_reported(jira: JiraConnector, jira_server: JiraServer) -> None:
    key = jira.create_case(make_case(), state="submitted").key
    project = jira_server.state.projects["CASE"]
    project.transitions = [t for t in project.transitions if t.to != "Escalated"]
    with pytest.raises(TransitionNotAllowed, match="'Submitted to provider' to 'Escalated'"):
        jira.transition(key, "escalated")
    assert any(m.kind == "transition" and m.name == "Submitted to provider -> Escalated" for m in jira.check_schema())


def test_transition_with_required_fields(make_connector, jira_server: JiraServer) -> None:
    project = jira_server.state.projects["CASE"]
    for t in project.transitions:
        if t.to == "Legal review":
            t.required_fields = ("resolution",)
    jira = make_connector()
    key = jira.create_case(make_case()).key
    with pytest.raises(TransitionNotAllowed, match="requires fields Resolution"):
        jira.transition(key, "legal_review")
    configured = make_connector(setup=False, transition_fields={"legal_review": {"resolution": {"name": "Done"}}})
    configured.transition(key, "legal_review", note="Sent for **review**")
    assert jira_server.state.find_issue(key).status == "Legal review"
    assert len(jira_server.state.find_issue(key).comments) == 1


# -- SLA fields ---------------------------------------------------------------------------------------------
def test_sla_fields_round_trip(jira: JiraConnector) -> None:
    key = jira.create_case(make_case(), state="submitted").key
    sla = SlaFields(
        clocks={
            "legal_deadline": ClockFields(
                datetime(2026, 3, 12, 9, 0, tzinfo=UTC), datetime(2026, 3, 9, 9, tzinfo=UTC), "running"
            ),
            "followup": ClockFields(datetime(2026, 4, 1, 9, 0, 0, 123000, tzinfo=UTC), None, "at_risk"),
        },
        escalation_level=2,
    )
    jira.set_sla_fields(key, sla)
    assert jira.find_case(make_case().reference).sla == sla
    # only the clocks named are written (sync sends the changed ones); an empty clock is cleared
    jira.set_sla_fields(key, SlaFields(clocks={"followup": ClockFields(None, None, "")}, escalation_level=0))
    held = jira.find_case(make_case().reference).sla
    assert held == SlaFields(clocks={"legal_deadline": sla.clocks["legal_deadline"]}, escalation_level=0)


def test_list_cases_since(jira: JiraConnector, jira_server: JiraServer) -> None:
    clock = jira_server.clock  # type: ignore[attr-defined]
    jira.create_case(make_case("OLD-1"))
    clock.advance(days=2)
    jira.create_case(make_case("NEW-1"))
    since = clock() - timedelta(hours=1)
    assert [c.case.reference for c in jira.list_cases(updated_since=since)] == ["NEW-1"]
    assert len(list(jira.list_cases())) == 2


def test_list_cases_pages_through_everything(make_connector, jira_server: JiraServer) -> None:
    jira = make_connector(page_size=7)
    for n in range(30):
        jira.create_case(make_case(f"REF-{n:02d}"))
    before = dict(jira_server.counter.by_route)
    assert sorted(c.case.reference for c in jira.list_cases()) == [f"REF-{n:02d}" for n in range(30)]
    searches = sum(n - before.get(k, 0) for k, n in jira_server.counter.by_route.items() if "search" in k[1])
    assert searches == 5  # ceil(30 / 7)


def _searches(server: JiraServer, before: dict) -> int:
    return sum(n - before.get(k, 0) for k, n in server.counter.by_route.items() if "search" in k[1])


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12", "Asia/Karachi"])
def test_list_cases_since_reads_jql_dates_in_the_account_zone(make_connector, jira_server: JiraServer, zone) -> None:
    """JQL reads dates in the account's zone (/myself): the search asks for what changed since the
    watermark, not for 14 more hours of it (a no-change resync after a mass write would re-list them all)."""
    jira_server.user_tz = zone
    jira = make_connector(page_size=1)
    clock = jira_server.clock  # type: ignore[attr-defined]
    jira.create_case(make_case("OLD-1"))
    clock.advance(hours=3)
    jira.create_case(make_case("NEW-1"))
    before = dict(jira_server.counter.by_route)
    assert [c.case.reference for c in jira.list_cases(updated_since=clock() - timedelta(minutes=1))] == ["NEW-1"]
    assert _searches(jira_server, before) == 1  # one page: the server returned NEW-1 only


def test_list_cases_since_without_the_account_zone_widens_the_window(make_connector, jira_server) -> None:
    jira = make_connector(page_size=1)
    clock = jira_server.clock  # type: ignore[attr-defined]
    jira.create_case(make_case("OLD-1"))
    clock.advance(hours=3)
    jira.create_case(make_case("NEW-1"))
    jira_server.faults.add("503", method="GET", path="/myself$", times=20)
    before = dict(jira_server.counter.by_route)
    assert [c.case.reference for c in jira.list_cases(updated_since=clock() - timedelta(minutes=1))] == ["NEW-1"]
    assert _searches(jira_server, before) == 2  # the 14 h margin: OLD-1 listed too, then filtered out


def test_jql_moment_steps_back_over_a_repeated_wall_hour(make_connector, jira_server: JiraServer) -> None:
    jira_server.user_tz = "America/New_York"
    ops = make_connector().ops()
    # 05:30 UTC on 1 Nov 2026 is 01:30 EDT, a wall time New York sees twice; Jira may read the later one
    assert ops.jql_moment(datetime(2026, 11, 1, 5, 30, 59, tzinfo=UTC)) == "2026-11-01 00:30"
    assert ops.jql_moment(datetime(2026, 11, 2, 5, 30, 59, tzinfo=UTC)) == "2026-11-02 00:30"  # EST, unambiguous
    assert ops.jql_moment(datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == "2026-07-01 08:00"


# -- comments ----------------------------------------------------------------------
def test_comment_is_wiki_on_datacenter_and_adf_on_cloud(jira: JiraConnector, jira_server: JiraServer) -> None:
    key = jira.create_case(make_case()).key
    jira.comment(key, "## Chased\n\nAsked **Meta** again, see [ticket](https://example.org/t/1).\n\n- one\n- two")
    body = jira_server.state.find_issue(key).comments[0]["body"]
    if jira_server.mode == "cloud":
        assert adf_problem(body) is None
        assert body["content"][0] == {
            "type": "heading",
            "attrs": {"level": 2},
            "content": [{"type": "text", "text": "Chased"}],
        }
        assert {"type": "text", "text": "Meta", "marks": [{"type": "strong"}]} in body["content"][1]["content"]
    else:
        assert body.startswith("h2. Chased\n\nAsked *Meta* again, see [ticket|https://example.org/t/1].")
        assert "* one\n* two" in body


def test_comment_keeps_nested_lists_and_code_and_facts_keep_lines(jira: JiraConnector, jira_server: JiraServer) -> None:
    key = jira.create_case(make_case(facts="line one\nline *two*")).key
    jira.comment(key, "- a\n    - b\n\n```\nx *y*\n```")
    issue = jira_server.state.find_issue(key)
    body, description = issue.comments[0]["body"], issue.values["description"]
    if jira_server.mode == "cloud":
        assert adf_problem(body) is None and adf_problem(description) is None
        assert body["content"][0]["content"][0]["content"][1]["type"] == "bulletList"
        assert body["content"][1] == {"type": "codeBlock", "content": [{"type": "text", "text": "x *y*"}]}
        assert {"type": "paragraph", "content": [{"type": "text", "text": "line *two*"}]} in description["content"]
    else:
        assert body == "* a\n** b\n\n{noformat}\nx *y*\n{noformat}\n"
        assert description.endswith("\n\nline one\n\nline \\*two\\*\n")


# -- escalations ----------------------------------------------------------------------
def test_escalation_post_find_and_link(jira: JiraConnector, jira_server: JiraServer) -> None:
    case_key = jira.create_case(make_case()).key
    dedupe = 'FIA-CCW-2026-0142/legal_deadline/L1 "x"'
    assert jira.find_escalation(dedupe) is None
    escalation = Escalation(
        dedupe,
        "FIA-CCW-2026-0142",
        case_key,
        None,
        "Escalation: no answer",
        "# Dossier\n\nNo answer from **Meta**.",
        1,
        "legal_deadline",
    )
    posted = jira.post_escalation(escalation)
    assert posted.key.startswith("NCB-")
    assert jira.find_escalation(dedupe) == posted.__class__(
        dedupe, posted.key, posted.url, jira.find_escalation(dedupe).posted_at
    )
    assert jira.find_escalation(dedupe + "/L2") is None
    jira.link_escalation(case_key, posted)
    jira.link_escalation(case_key, posted)  # again: no second link
    links = jira_server.state.find_issue(case_key).links
    assert len(links) == 1 and jira_server.state.issues[links[0]["outwardIssue"]].key == posted.key


# -- faults: no duplicates ----------------------------------------------------------------------
def test_dropped_connection_after_create_never_duplicates(jira: JiraConnector, jira_server: JiraServer) -> None:
    jira_server.faults.add("drop_after_write", method="POST", path=r"/issue$")
    created = jira.create_case(make_case())
    assert len(issues_in(jira_server)) == 1 and created.key == "CASE-1"
    assert jira_server.faults.faults[0].fired == 1


def test_dropped_connection_after_escalation_never_duplicates(jira: JiraConnector, jira_server: JiraServer) -> None:
    jira_server.faults.add("drop_after_write", method="POST", path=r"/issue$")
    escalation = Escalation("R/legal_deadline/L1", "R", None, None, "t", "body", 1, "legal_deadline")
    posted = jira.post_escalation(escalation)
    assert [i.key for i in issues_in(jira_server, "NCB")] == [posted.key]


def test_dropped_transition_and_comment_are_not_repeated(jira: JiraConnector, jira_server: JiraServer) -> None:
    key = jira.create_case(make_case()).key
    jira_server.faults.add("drop_after_write", method="POST", path=r"/transitions$")
    jira_server.faults.add("drop_after_write", method="POST", path=r"/comment$")
    jira.transition(key, "legal_review", note="sent")
    issue = jira_server.state.find_issue(key)
    assert issue.status == "Legal review" and len(issue.comments) == 1


def test_429_storm_on_create_honours_retry_after_within_bounds(jira: JiraConnector, jira_server: JiraServer) -> None:
    jira_server.faults.add("429", method="POST", path=r"/issue$", times=2, retry_after=500)
    jira_server.faults.add("429", method="POST", path=r"/issue$", times=2, retry_after=0)
    jira.sleep.calls.clear()  # type: ignore[attr-defined]
    jira.create_case(make_case())
    assert len(issues_in(jira_server)) == 1
    assert jira.sleep.calls == [120.0, 120.0, 0.5, 0.5]  # type: ignore[attr-defined]  # ceiling, floor


def test_5xx_is_retried_with_jittered_backoff(jira: JiraConnector, jira_server: JiraServer) -> None:
    jira_server.faults.add("503", path="search", times=3, retry_after=None)
    jira.sleep.calls.clear()  # type: ignore[attr-defined]
    assert jira.find_case("nothing") is None
    waits = jira.sleep.calls  # type: ignore[attr-defined]
    assert len(waits) == 3 and all(0 <= w <= 2**n for n, w in enumerate(waits))


def test_retries_give_up_with_a_transient_error(make_connector, jira_server: JiraServer) -> None:
    jira = make_connector(max_attempts=3)
    jira_server.faults.add("500", path="search", times=10)
    with pytest.raises(TransientError, match="500"):
        jira.find_case("x")
    assert jira_server.faults.faults[0].fired == 3


def test_near_rate_limit_slows_down(jira: JiraConnector, jira_server: JiraServer) -> None:
    jira.sleep.calls.clear()  # type: ignore[attr-defined]
    reset = (datetime.now(UTC) + timedelta(seconds=20)).isoformat()
    jira_server.rate_headers = {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": reset,
    }
    jira.find_case("x")
    assert jira.sleep.calls and all(1 <= s <= 5.5 for s in jira.sleep.calls)  # type: ignore[attr-defined]


def test_unreachable_server(make_connector, jira_server: JiraServer) -> None:
    jira = make_connector(setup=False, max_attempts=2)
    jira_server.stop()
    with pytest.raises(TrackerUnreachable):
        jira.find_case("x")


# -- credentials, schema ----------------------------------------------------------------------
def test_bad_token_is_refused_without_leaking_it(
    make_connector, jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "wrong-secret-token-5521"
    monkeypatch.setenv("CB_TEST_JIRA_TOKEN", secret)
    caplog.set_level(logging.DEBUG)
    jira = make_connector(setup=False)
    with pytest.raises(AuthenticationFailed) as caught:
        jira.find_case("x")
    assert secret not in str(caught.value)
    assert secret not in caplog.text


def test_sla_field_names_must_name_the_clock() -> None:
    # one name for every clock would make all clocks write to the same Jira field
    with pytest.raises(ValidationError, match=r"must contain \{clock\}"):
        JiraFieldNames(sla_due="SLA due")
    assert JiraFieldNames(sla_due="Due ({clock})").sla_due == "Due ({clock})"


def test_wrong_deployment_is_a_config_error(make_connector, jira_server: JiraServer) -> None:
    other = "datacenter" if jira_server.mode == "cloud" else "cloud"
    extra = {
        "deployment": other,
        "email": "bot@agency.example",
        "api_token": {"env": "CB_TEST_JIRA_TOKEN"},
        "personal_access_token": {"env": "CB_TEST_JIRA_TOKEN"},
    }
    jira = make_connector(setup=False, **extra)
    with pytest.raises((ConfigError, AuthenticationFailed)):
        jira.find_case("x")


def test_check_schema_then_setup(make_connector) -> None:
    jira = make_connector(setup=False)
    missing = jira.check_schema()
    names = {m.name for m in missing if m.kind == "custom field"}
    assert {"Case reference", "Case data", "SLA Legal deadline due", "Escalation key"} <= names
    assert {"Provider", "Refusal reason"} <= names  # issues 13 and 15: set by people / by casebridge
    with pytest.raises(SchemaMissing):
        jira.find_case("x")
    report = jira.setup(apply=True)
    assert "created custom field 'Case reference'" in report
    assert "created custom field 'Provider'" in report
    assert jira.check_schema() == []


def test_setup_without_admin_rights_prints_instructions(make_connector, jira_server: JiraServer) -> None:
    jira_server.state.admin = False  # type: ignore[attr-defined]
    jira_server.state.projects["CASE"].statuses.pop()  # "Closed" is gone from the workflow
    report = make_connector(setup=False).setup(apply=True)
    assert "could not create custom field 'Case reference'" in report and "permission" in report
    assert "missing custom field 'Case reference'" in report
    assert "missing status 'Closed'" in report


def test_list_cases_carries_history_so_sync_needs_no_request_per_case(
    jira: JiraConnector, jira_server: JiraServer
) -> None:
    key = jira.create_case(make_case(), state="approved").key
    listed = list(jira.list_cases())
    assert listed[0].history == jira.read_history(key)
    assert [h.state for h in listed[0].history] == ["draft", "legal_review", "approved"]


def test_sla_fields_for_an_unknown_clock_are_rejected(jira: JiraConnector) -> None:
    from casebridge.errors import RejectedError

    key = jira.create_case(make_case()).key
    with pytest.raises(RejectedError, match="'nope' is not a clock"):
        jira.set_sla_fields(key, SlaFields(clocks={"nope": ClockFields(None, None, "running")}))


def test_changelog_of_field_edits_matches_the_documents(jira: JiraConnector, jira_server: JiraServer) -> None:
    # SLA writes put field edits (with empty sides) into the changelog that list_cases then reads
    key = jira.create_case(make_case()).key
    jira.set_sla_fields(key, SlaFields(clocks={"followup": ClockFields(None, None, "running")}))
    jira.set_sla_fields(key, SlaFields(clocks={"followup": ClockFields(None, None, "")}))
    assert [h.state for h in next(iter(jira.list_cases())).history] == ["draft"]
    assert jira.read_history(key) == next(iter(jira.list_cases())).history

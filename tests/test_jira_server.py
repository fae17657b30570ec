"""The fake Jira itself: OpenAPI checks catch bad traffic, JQL quoting, paging, faults, auth."""

from __future__ import annotations

import base64
import threading

import pytest
import requests

from tests.jira_server import JiraServer, jql
from tests.jira_server import routes as server_routes
from tests.jira_server.state import CF

pytest_plugins = ["tests.jira_fixtures"]


def _session(server: JiraServer) -> requests.Session:
    session = requests.Session()
    if server.mode == "cloud":
        raw = base64.b64encode(b"bot@agency.example:cloud-api-token-7f3a").decode()
        session.headers["Authorization"] = f"Basic {raw}"
    else:
        session.headers["Authorization"] = "Bearer dc-personal-access-token-91b2"
    return session


def _search_path(server: JiraServer) -> str:
    return "search/jql" if server.mode == "cloud" else "search"


def _seed(server: JiraServer, count: int, ref_field: str) -> None:
    project = server.state.projects["CASE"]
    with server.state.lock:
        for n in range(count):
            server.state.new_issue(project, "Task", {"summary": f"case {n}", ref_field: f"REF-{n}"}, server.state.now())


# -- OpenAPI checks ----------------------------------------------------------------------------------
def test_a_request_the_document_rejects_is_answered_400_and_recorded(jira_server: JiraServer) -> None:
    url = f"{jira_server.url}/rest/api/2/{_search_path(jira_server)}"
    answer = _session(jira_server).post(url, json={"jql": 5, "maxResults": "many"})
    assert answer.status_code == 400
    assert answer.json()["errors"] == {}
    assert len(jira_server.mismatches) == 1 and "request POST" in jira_server.mismatches[0]
    jira_server.mismatches.clear()  # recorded as it should be; the fixture would fail the test otherwise


def test_a_response_the_document_rejects_is_recorded(jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # a project whose id is a number and whose key is a list: both documents type them as strings
    def bad_project(ctx: server_routes.Ctx) -> tuple[int, object]:
        return 200, {"id": 10000, "key": ["CASE"], "name": "Data requests"}

    monkeypatch.setattr(server_routes.get_project, "__code__", bad_project.__code__)
    answer = _session(jira_server).get(f"{jira_server.url}/rest/api/2/project/CASE")
    assert answer.status_code == 200
    assert any("response GET /rest/api/2/project/{projectIdOrKey}" in m for m in jira_server.mismatches)
    jira_server.mismatches.clear()


def test_undocumented_error_status_needs_jira_envelope(jira_server: JiraServer) -> None:
    answer = _session(jira_server).get(f"{jira_server.url}/rest/api/2/issue/NOPE-1")
    assert answer.status_code == 404
    assert answer.json() == {"errorMessages": [answer.json()["errorMessages"][0]], "errors": {}}
    assert jira_server.mismatches == []


# -- JQL ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r'summary ~ "a \"quoted\" word"', 'a "quoted" word'),
        (r'summary ~ "back\\slash"', "back\\slash"),
        (r"summary ~ 'single \' quote'", "single ' quote"),
        ('summary ~ "AND OR NOT"', "AND OR NOT"),
        (r'summary ~ "\u0041BC"', "ABC"),
    ],
)
def test_jql_strings_unescape_like_jira(text: str, value: str) -> None:
    query = jql.parse(text)
    assert isinstance(query.where, jql.Clause) and query.where.value == value


@pytest.mark.parametrize(
    "text",
    [
        'project = "CASE',  # unterminated
        "project = AND",  # reserved word unquoted
        r'summary ~ "bad \q escape"',
        'project = CASE AND (status = "Draft"',
        'project = CASE summary ~ "x"',  # missing AND
        "project = CASE; DROP",
    ],
)
def test_unparseable_jql_is_refused(text: str) -> None:
    with pytest.raises(jql.JqlError):
        jql.parse(text)


def test_bad_jql_gets_400_with_error_envelope(jira_server: JiraServer) -> None:
    url = f"{jira_server.url}/rest/api/2/{_search_path(jira_server)}"
    answer = _session(jira_server).post(url, json={"jql": 'project = "CASE', "maxResults": 10})
    assert answer.status_code == 400
    body = answer.json()
    assert body["errors"] == {} and "quoted string" in body["errorMessages"][0]


def test_text_field_refuses_equals_like_jira(jira_server: JiraServer) -> None:
    ref = jira_server.state.add_custom_field("Case reference", CF + "textfield")
    url = f"{jira_server.url}/rest/api/2/{_search_path(jira_server)}"
    answer = _session(jira_server).post(url, json={"jql": f'cf[{ref.id[12:]}] = "X"', "maxResults": 10})
    assert answer.status_code == 400
    assert "operator '='" in answer.json()["errorMessages"][0]


def test_phrase_search_with_quotes_finds_only_that_issue(jira_server: JiraServer) -> None:
    ref = jira_server.state.add_custom_field("Case reference", CF + "textfield")
    project = jira_server.state.projects["CASE"]
    for value in ['A "B" C', "A B", "A B C D", "X"]:
        jira_server.state.new_issue(project, "Task", {"summary": value, ref.id: value}, jira_server.state.now())
    url = f"{jira_server.url}/rest/api/2/{_search_path(jira_server)}"
    query = f'cf[{ref.id[12:]}] ~ "\\"a b c\\"" ORDER BY key ASC'
    answer = _session(jira_server).post(url, json={"jql": query, "fields": [ref.id], "maxResults": 10})
    assert [i["fields"][ref.id] for i in answer.json()["issues"]] == ['A "B" C', "A B C D"]


# -- paging ----------------------------------------------------------------------
@pytest.mark.usefixtures("jira_documents")
def test_cloud_pages_with_next_page_token_and_old_search_is_gone() -> None:
    with JiraServer("cloud") as server:
        server.state.add_project("CASE", statuses=["Draft"])
        ref = server.state.add_custom_field("Case reference", CF + "textfield")
        _seed(server, 250, ref.id)
        session, seen, token, pages = _session(server), [], None, 0
        while True:
            body = {"jql": "project = CASE ORDER BY key ASC", "fields": [ref.id], "maxResults": 500}
            if token:
                body["nextPageToken"] = token
            page = session.post(f"{server.url}/rest/api/3/search/jql", json=body).json()
            pages += 1
            seen += [i["fields"][ref.id] for i in page["issues"]]
            token = page.get("nextPageToken")
            if page["isLast"]:
                break
        assert pages == 3  # maxResults is capped at 100 when fields are asked for, as in Cloud
        assert seen == [f"REF-{n}" for n in range(250)]
        gone = session.get(f"{server.url}/rest/api/2/search", params={"jql": "project = CASE"})
        assert gone.status_code == 410
        assert server.mismatches == []


@pytest.mark.usefixtures("jira_documents")
def test_datacenter_pages_with_start_at() -> None:
    with JiraServer("datacenter") as server:
        server.state.add_project("CASE", statuses=["Draft"])
        ref = server.state.add_custom_field("Case reference", CF + "textfield")
        _seed(server, 120, ref.id)
        session = _session(server)
        first = session.post(f"{server.url}/rest/api/2/search", json={"jql": "project = CASE", "maxResults": 50}).json()
        third = session.post(
            f"{server.url}/rest/api/2/search",
            json={"jql": "project = CASE", "startAt": 100, "maxResults": 50},
        ).json()
        assert first["total"] == 120 and len(first["issues"]) == 50
        assert [i["key"] for i in third["issues"]] == [f"CASE-{n}" for n in range(101, 121)]
        assert session.get(f"{server.url}/rest/api/2/search/jql").status_code == 404  # Cloud only
        assert server.mismatches == []


# -- faults, auth, counting ----------------------------------------------------------------------
def test_429_carries_retry_after_and_rate_limit_headers(jira_server: JiraServer) -> None:
    jira_server.faults.add("429", path="serverInfo", retry_after=7)
    answer = _session(jira_server).get(f"{jira_server.url}/rest/api/2/serverInfo")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    assert _session(jira_server).get(f"{jira_server.url}/rest/api/2/serverInfo").status_code == 200


def test_drop_after_write_applies_the_write_then_closes(jira_server: JiraServer) -> None:
    jira_server.faults.add("drop_after_write", method="POST", path=r"/issue$")
    body = {"fields": {"project": {"key": "CASE"}, "issuetype": {"name": "Task"}, "summary": "x"}}
    with pytest.raises(requests.exceptions.ConnectionError):
        _session(jira_server).post(f"{jira_server.url}/rest/api/2/issue", json=body)
    assert len(jira_server.state.issues) == 1


def test_hold_after_write_applies_the_write_then_waits_for_release(jira_server: JiraServer) -> None:
    fault = jira_server.faults.add("hold_after_write", method="POST", path=r"/issue$")
    body = {"fields": {"project": {"key": "CASE"}, "issuetype": {"name": "Task"}, "summary": "x"}}
    answers: list[int] = []
    poster = threading.Thread(
        target=lambda: answers.append(
            _session(jira_server).post(f"{jira_server.url}/rest/api/2/issue", json=body).status_code
        )
    )
    poster.start()
    assert fault.applied.wait(timeout=60)
    assert len(jira_server.state.issues) == 1 and answers == []  # applied, not yet answered
    fault.release.set()
    poster.join(timeout=60)
    assert answers == [201]


def test_wrong_credentials_get_401(jira_server: JiraServer) -> None:
    answer = requests.get(f"{jira_server.url}/rest/api/2/serverInfo", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401


def test_requests_are_counted_by_route(jira_server: JiraServer) -> None:
    session = _session(jira_server)
    for _ in range(3):
        session.get(f"{jira_server.url}/rest/api/2/issue/CASE-99")
    assert jira_server.counter.snapshot()["GET /rest/api/2/issue/{issueIdOrKey}"] == 3
    assert jira_server.counter.writes == 0

"""The Redmine connector against the real Redmine 5.0 server (tests/redmine_fixtures.py).

Each of Redmine's silent failures (shared/redmine/NOTES.md) is first shown with a raw REST call (so the
test fails if Redmine stops behaving that way and the guard becomes dead code), then the connector is
shown to catch and report it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redminelib import Redmine

from casebridge.connectors import Escalation
from casebridge.connectors.redmine.mapping import fmt_time, parse_time
from casebridge.errors import (
    AuthenticationFailed,
    NotFoundError,
    RejectedError,
    SchemaMissing,
    TrackerUnreachable,
    TransitionNotAllowed,
)
from casebridge.workflows.cases import Case, ClockFields, SlaFields
from tests.contract import ConnectorContract

pytest_plugins = ["tests.redmine_fixtures"]
pytestmark = pytest.mark.redmine

# A case-data moment only (submitted_at, SLA field values written and read back): never compared with
# the server's clock, which stamps creations and journals (tests that compare use redmine.clock()).
NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def make_case(i: int, **extra) -> Case:
    values = {
        "reference": f"FIA-CCW-2026-{i:04d}",
        "title": f"Subscriber data for account {i}",
        "provider": "Google LLC",
        "request_type": "subscriber",
        "legal_basis": "voluntary",
        "submitted_at": NOW - timedelta(days=i % 40),
        "timezone": "Asia/Karachi",
    }
    return Case.model_validate(values | extra)


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def issue_count(redmine, project: str = "data-requests") -> int:
    return redmine.api("GET", "/issues.json", params={"project_id": project, "status_id": "*", "limit": 1}).json()[
        "total_count"
    ]


# -- setup and schema -------------------------------------------------------------------------------
def test_setup_script_on_fresh_redmine_leaves_nothing_missing_and_is_idempotent(redmine):
    assert "changes" in redmine.setup_output and "custom field Case reference" in redmine.setup_output
    assert "custom field Provider" in redmine.setup_output  # the canonical provider name (issue 15)
    assert redmine.connector().check_schema() == []
    assert redmine.connector(key=redmine.officer_key).check_schema() == []  # non-admin: project + probe
    again = redmine.rails_runner(redmine.connector().setup())
    assert again.strip() == "casebridge setup: nothing to change"


def test_check_schema_names_each_missing_thing_and_how_to_add_it(redmine):
    conn = redmine.connector(
        tracker="No such tracker",
        statuses={"draft": "Nonexistent status"},
        fields={"provider": "Provider (renamed)"},
        liaison_project="no-such-project",
    )
    missing = {(m.kind, m.name): m.how for m in conn.check_schema()}
    assert ("tracker", "No such tracker") in missing
    assert ("status", "Nonexistent status") in missing
    assert ("custom field", "Provider (renamed)") in missing
    assert ("project", "no-such-project") in missing
    assert "rails runner" in missing[("tracker", "No such tracker")]
    with pytest.raises(SchemaMissing, match="No such tracker"):
        conn.find_case("X-1")


def test_missing_transitions_are_detected_from_existing_issues(redmine):
    conn = redmine.connector()
    key = conn.create_case(make_case(1)).key
    redmine.rails_runner("""
      t = Tracker.find_by_name('Data request'); from = IssueStatus.find_by_name('Draft')
      WorkflowTransition.where(tracker_id: t.id, old_status_id: from.id).delete_all
    """)
    missing = conn.check_schema()
    assert [m.name for m in missing if m.kind == "transition"] == [
        "Draft -> Legal review",
        "Draft -> Withdrawn",
    ]
    with pytest.raises(TransitionNotAllowed, match="does not allow"):
        conn.transition(key, "legal_review")


# -- silent failure: a forbidden status change returns 204 and does nothing --------------------------
def test_forbidden_transition_is_reported_not_lost(redmine):
    conn = redmine.connector()
    key = conn.create_case(make_case(1)).key
    closed = conn.schema.status_ids["Closed"]
    raw = redmine.api("PUT", f"/issues/{key}.json", json={"issue": {"status_id": closed}})
    assert raw.status_code == 204  # Redmine says yes ...
    assert redmine.api("GET", f"/issues/{key}.json").json()["issue"]["status"]["name"] == "Draft"  # ... and did not
    with pytest.raises(TransitionNotAllowed, match="'Draft' -> 'Closed'") as err:
        conn.transition(key, "closed")
    assert err.value.case == "FIA-CCW-2026-0001"


def test_transition_ignored_after_the_precheck_is_caught_by_the_reread(redmine):
    """The pre-check is bypassed (Redmine's allowed_statuses replaced by every status) so the real
    server's silent 204 reaches the connector: the re-read must catch it."""
    conn = redmine.connector()
    key = conn.create_case(make_case(1)).key
    real_issue = conn._issue

    def claims_everything_allowed(k, *includes):
        issue = real_issue(k, *includes)
        if "allowed_statuses" in includes:
            issue["allowed_statuses"] = [{"id": i} for i in conn.schema.status_ids.values()]
        return issue

    conn._issue = claims_everything_allowed
    with pytest.raises(TransitionNotAllowed, match="accepted but ignored"):
        conn.transition(key, "closed")


# -- silent failure: unknown custom field ids are ignored ---------------------------------------------
def test_unknown_custom_field_id_is_reported(redmine):
    conn = redmine.connector()
    key = conn.create_case(make_case(1)).key
    raw = redmine.api("PUT", f"/issues/{key}.json", json={"issue": {"custom_fields": [{"id": 999, "value": "x"}]}})
    assert raw.status_code == 204  # accepted, ignored
    conn.schema.fields["sla_due:followup"] = 999  # a stale id, e.g. the field was deleted and recreated
    sla = SlaFields(clocks={"followup": ClockFields(NOW + timedelta(days=30), NOW + timedelta(days=20), "running")})
    with pytest.raises(SchemaMissing, match="ignored custom field"):
        conn.set_sla_fields(key, sla)


# -- silent failure: a filter on a non-filterable field returns every issue ---------------------------
def test_non_filterable_reference_field_is_detected(redmine):
    conn = redmine.connector()
    for i in (1, 2):
        conn.create_case(make_case(i))
    redmine.rails_runner("IssueCustomField.find_by_name('Case reference').update!(is_filter: false)")
    raw = redmine.api(
        "GET",
        "/issues.json",
        params={
            "project_id": "data-requests",
            "status_id": "*",
            f"cf_{conn.schema.fields['reference']}": "NOPE",
        },
    )
    assert raw.json()["total_count"] == 2  # the filter was ignored
    for who in (redmine.admin_key, redmine.officer_key):  # admin reads the flag, officer probes
        names = [m.name for m in redmine.connector(key=who).check_schema()]
        assert "Case reference: used as a filter" in names
    with pytest.raises(SchemaMissing, match="Used as a filter"):
        redmine.connector().find_case("FIA-CCW-2026-0001")


# -- silent failure: bool custom fields accept anything ----------------------------------------------
def test_bool_fields_written_as_1_0_and_junk_leaves_the_case_intact(redmine):
    conn = redmine.connector()
    with_order = conn.create_case(make_case(1, court_order_ref="Sessions Court 12/2026"))
    without = conn.create_case(make_case(2))
    court = conn.schema.fields["court_order"]

    def court_value(key):
        fields = redmine.api("GET", f"/issues/{key}.json").json()["issue"]["custom_fields"]
        return next(f["value"] for f in fields if f["id"] == court)

    assert (court_value(with_order.key), court_value(without.key)) == ("1", "0")
    raw = redmine.api(
        "PUT",
        f"/issues/{without.key}.json",
        json={"issue": {"custom_fields": [{"id": court, "value": "maybe"}]}},
    )
    assert raw.status_code == 204 and court_value(without.key) == "maybe"  # stored as given
    from casebridge.connectors.redmine.mapping import encode_bool

    with pytest.raises(RejectedError):
        encode_bool("true")  # type: ignore[arg-type]
    assert conn.find_case("FIA-CCW-2026-0002").case == make_case(2)  # the case itself is intact


# -- silent failure: pages hold 100, python-redmine's limit caps the total ----------------------------
def test_list_cases_pages_past_100(redmine):
    conn = redmine.connector()
    created = list(conn.create_cases((make_case(i) for i in range(1, 106)), states={}, at={}))
    assert len({t.key for t in created}) == 105
    page = redmine.api("GET", "/issues.json", params={"project_id": "data-requests", "limit": 1000}).json()
    assert (len(page["issues"]), page["limit"]) == (100, 100)  # Redmine caps a page at 100...
    capped_total = Redmine(redmine.url, key=redmine.admin_key).issue.filter(project_id="data-requests", limit=100)
    assert len(list(capped_total)) == 100  # ...and python-redmine's limit is the total, not the page size
    listed = [t.case.reference for t in conn.list_cases()]
    assert sorted(listed) == sorted(c.case.reference for c in created)


# -- silent failure: updated_on takes only Z without fractions, and overlaps by ~1 s ------------------
def test_updated_since_format_and_overlap(redmine):
    conn = redmine.connector()
    tracked = conn.create_case(make_case(1))
    updated = tracked.updated_at  # Redmine shows whole seconds; it stores microseconds
    # malformed filter values (a fraction, an offset): Redmine's parser refuses the form, whatever the date
    for bad in (updated.isoformat(), "2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00+01:00"):
        raw = redmine.api("GET", "/issues.json", params={"updated_on": ">=" + bad, "status_id": "*"})
        assert raw.status_code == 422 and "Updated is invalid" in raw.text
    after = updated + timedelta(seconds=1)
    raw = redmine.api("GET", "/issues.json", params={"updated_on": ">=" + fmt_time(after), "status_id": "*"})
    assert [i["id"] for i in raw.json()["issues"]] == [int(tracked.key)]  # the ~1 s overlap
    assert list(conn.list_cases(after)) == []  # dropped: it was updated before the watermark
    karachi = after.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Karachi")) - timedelta(seconds=1.25)
    assert [t.key for t in conn.list_cases(karachi)] == [tracked.key]  # any offset, fractions: fine
    with pytest.raises(RejectedError, match="Updated is invalid"):
        conn.client.engine.request(
            "get", redmine.url + "/issues.json", params={"updated_on": ">=2026-01-01T00:00:00.5Z"}
        )


# -- silent failure: journals only with a single-issue GET -------------------------------------------
def test_history_from_journals_of_a_single_issue(redmine):
    conn = redmine.connector()
    key = conn.create_case(make_case(1)).key
    for state in ("legal_review", "approved", "submitted"):
        conn.transition(key, state)
    listed = redmine.api("GET", "/issues.json", params={"include": "journals", "status_id": "*"}).json()
    assert "journals" not in listed["issues"][0]  # the list ignores include=journals
    history = conn.read_history(key)
    assert [h.state for h in history] == ["draft", "legal_review", "approved", "submitted"]
    assert all(h.at.tzinfo is not None for h in history)


# -- silent failure: with login_required=0 a bad key reads as anonymous -------------------------------
def test_bad_key_with_login_not_required_raises(redmine):
    bad = "f" * 40
    assert redmine.api("GET", "/issues.json", key=bad).status_code == 401  # login_required=1: clean 401
    redmine.rails_runner("Setting.login_required = '0'")
    try:
        silent = redmine.api("GET", "/issues.json", key=bad)
        assert silent.status_code == 200 and silent.json()["issues"] == []  # looks like success
        with pytest.raises(AuthenticationFailed, match="refused the API key from environment variable"):
            redmine.connector(key=bad).find_case("FIA-CCW-2026-0001")
        with pytest.raises(AuthenticationFailed):
            redmine.connector(key=bad).check_schema()
    finally:
        redmine.reset()


# -- cases ---------------------------------------------------------------------------------------------
def test_intake_twice_creates_no_duplicate(redmine):
    conn = redmine.connector()
    cases = [make_case(i) for i in (1, 2, 3)]
    first = [conn.create_case(c).key for c in cases]
    again = [conn.create_case(c).key for c in cases]
    bulk = [t.key for t in conn.create_cases([*cases, make_case(4)], states={}, at={})]
    assert first == again == bulk[:3] and issue_count(redmine) == 4
    assert [t.case for t in conn.list_cases()] == [*cases, make_case(4)]  # round trip through Case data


def test_case_data_markup_is_inert_in_both_formats(redmine):
    from casebridge.connectors.redmine.mapping import description_markdown
    from casebridge.connectors.redmine.text import render

    evil = make_case(
        1,
        facts='*bold* <script>alert(1)</script> "x":http://evil.example [y](javascript:1) #1 @admin',
        court_order_ref="**Order** !img.png!",
    )
    source = description_markdown(evil)
    ruby = "require 'base64'\n" + "".join(
        f"puts Redmine::WikiFormatting.to_html('{fmt}', Base64.strict_decode64('{_b64(render(source, fmt))}')"
        f".force_encoding('UTF-8'))\nputs '-----'\n"
        for fmt in ("textile", "markdown", "common_mark")
    )
    outputs = redmine.rails_runner(ruby).split("-----")[:3]
    for html in outputs:
        assert "<script" not in html and "<img" not in html
        assert 'href="http://evil' not in html and 'href="javascript' not in html
        assert "<strong>Facts" in html and "<strong>Reference" in html  # our own Markdown still renders
        assert "<strong>bold</strong>" not in html and "<strong>Order</strong>" not in html
        assert 'class="issue' not in html and 'class="user' not in html  # no #1 or @admin links


def test_errors_are_typed_with_one_line_messages(redmine):
    conn = redmine.connector()
    with pytest.raises(NotFoundError, match=r"/issues/99999\.json not found"):
        conn.read_history("99999")
    with pytest.raises(RejectedError, match="Subject cannot be blank") as err:
        conn.client.engine.request(
            "post",
            redmine.url + "/issues.json",
            data={"issue": {"project_id": conn.schema.project_id, "subject": ""}},
        )
    assert "\n" not in str(err.value)
    with pytest.raises(TrackerUnreachable, match="cannot connect"):
        redmine.connector(url="http://127.0.0.1:9").check_schema()
    assert redmine.admin_key not in str(err.value)


# -- liaison -----------------------------------------------------------------------------------------
def test_escalation_posted_once_found_by_key_and_linked_across_projects(redmine):
    conn = redmine.connector()
    case = conn.create_case(make_case(1))
    key = "FIA-CCW-2026-0001/followup/L1"
    esc = Escalation(
        dedupe_key=key,
        case_reference=case.case.reference,
        case_key=case.key,
        case_url=case.url,
        title="NCB escalation: FIA-CCW-2026-0001",
        markdown="# Dossier\n\n* **Level:** 1",
        level=1,
        clock="followup",
    )
    assert conn.find_escalation(key) is None
    posted = conn.post_escalation(esc)
    assert conn.find_escalation(key) == posted and conn.find_escalation(key + "x") is None
    conn.link_escalation(case.key, posted)
    conn.link_escalation(case.key, posted)  # idempotent
    relations = redmine.api("GET", f"/issues/{case.key}/relations.json").json()["relations"]
    assert [(r["issue_to_id"], r["relation_type"]) for r in relations] == [(int(posted.key), "relates")]
    assert issue_count(redmine, "interpol-liaison") == 1


# -- end to end as a non-admin officer ----------------------------------------------------------------
def test_end_to_end_as_officer(redmine):
    conn = redmine.connector(key=redmine.officer_key)
    assert not conn.schema.admin
    tracked = {t.case.reference: t for t in conn.create_cases([make_case(i) for i in (1, 2, 3)], states={}, at={})}
    watermark = max(t.updated_at for t in tracked.values())
    key = tracked["FIA-CCW-2026-0002"].key
    for state in ("legal_review", "approved", "submitted"):
        conn.transition(key, state, note=f"moved to *{state}* by casebridge")
    due, warn = NOW + timedelta(days=30), NOW + timedelta(days=20)
    sla = SlaFields(clocks={"followup": ClockFields(due, warn, "running")}, escalation_level=0)
    conn.set_sla_fields(key, sla)
    # a person moves the issue in Redmine (the officer's own REST client): provider asked to clarify
    awaiting = conn.schema.status_ids["Awaiting requester"]
    moved = redmine.api(
        "PUT",
        f"/issues/{key}.json",
        key=redmine.officer_key,
        json={"issue": {"status_id": awaiting, "notes": "Google asked us to narrow the range"}},
    )
    assert moved.status_code == 204
    # at whole-second resolution the cases created in the watermark's second come back too
    changed = {t.key: t for t in conn.list_cases(watermark)}
    assert key in changed and changed[key].state == "awaiting_requester"
    assert all(t.state == "draft" for k, t in changed.items() if k != key)
    assert changed[key].sla == sla
    history = conn.read_history(key)
    assert [h.state for h in history][-2:] == ["submitted", "awaiting_requester"]
    paused_at = history[-1].at
    journal = redmine.api("GET", f"/issues/{key}.json", params={"include": "journals"}).json()["issue"]["journals"]
    assert parse_time(journal[-1]["created_on"]) == paused_at  # the pause starts at the journal's time
    conn.comment(key, "SLA **paused** while we clarify")
    assert conn.check_schema() == []


# -- the shared connector contract -------------------------------------------------------------------
class TestRedmineContract(ConnectorContract):
    @pytest.fixture
    def connector(self, redmine):
        conn = redmine.connector()
        yield conn
        conn.close()


def test_sync_writes_the_clock_engines_fields_and_a_second_pass_writes_nothing(redmine, tmp_path):
    """End to end through the sync job as ``casebridge sync`` runs it (state store, audit log): intake as
    the officer, a person moves one issue to 'Awaiting requester' in Redmine, sync, and every SLA field in
    Redmine equals the engine's."""
    from casebridge.app.sync_plan import evaluate
    from casebridge.state.audit import AuditLog
    from casebridge.state.store import StateStore
    from casebridge.sync import SyncJob
    from casebridge.workflows import load_workflow
    from casebridge.workflows.sla import computed_sla

    workflow = load_workflow("lawful-access")
    conn = redmine.connector(key=redmine.officer_key)
    cases = list(conn.create_cases([make_case(i) for i in (1, 2, 3)], states={}, at={}))
    for tracked in cases[:2]:
        for state in ("legal_review", "approved", "submitted"):
            conn.transition(tracked.key, state)
    awaiting = conn.schema.status_ids["Awaiting requester"]
    moved = redmine.api(
        "PUT", f"/issues/{cases[1].key}.json", key=redmine.officer_key, json={"issue": {"status_id": awaiting}}
    )
    assert moved.status_code == 204
    now = redmine.clock()  # Redmine stamps journals with its own clock: evaluate at its time, after the moves
    store, audit = StateStore(tmp_path / "state.db"), AuditLog(tmp_path / "state.audit.db")
    first = SyncJob(conn, workflow, store, audit).run(now)
    assert first.result.ok and len(first.result.applied) == 3
    for tracked in conn.list_cases():
        expected = computed_sla(evaluate(tracked, conn.read_history(tracked.key), workflow, now).clocks)
        assert {n: f for n, f in tracked.sla.clocks.items()} == expected.clocks
        assert tracked.sla.escalation_level == expected.escalation_level
    paused = conn.find_case(cases[1].case.reference)
    assert paused is not None and paused.sla.clocks["followup"].state == "paused"
    running = conn.find_case(cases[0].case.reference)
    assert running is not None and running.sla.clocks["followup"].state == "running"
    again = SyncJob(conn, workflow, store, audit).run(now)
    assert again.result.ok and again.plan.actions == []  # a no-change pass writes nothing
    assert audit.pending() == [] and audit.verify().ok  # every write announced and completed
    store.close()
    audit.close()

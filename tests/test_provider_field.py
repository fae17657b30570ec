"""The tracker's Provider field (issue 15) through the sync job, on the spec-checked fake Jira: a case whose
field holds another name than the directory's gets the canonical one, once (a second pass writes nothing,
a dry run only says what it would write), audited; a failed write is that case's failure and is retried by
the next pass. Redmine: tests/test_redmine_identifiers_e2e.py; the contract: tests/contract.py."""

from __future__ import annotations

from pathlib import Path

from casebridge.state.audit import AuditLog
from casebridge.state.lock import RunLock, lock_path_for
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions, SyncReport
from casebridge.workflows.directory import load_directory
from tests.factories import make_case

pytest_plugins = ["tests.jira_fixtures"]
DIRECTORY = load_directory()


def sync_once(jira, server, tmp_path: Path, *, directory=DIRECTORY, **options) -> SyncReport:
    """One pass at the fake Jira's time, as `casebridge sync` runs it."""
    state = tmp_path / "state.db"
    with RunLock(lock_path_for(state)):
        store, audit = StateStore(state), AuditLog(tmp_path / "state.audit.db")
        try:
            job = SyncJob(jira, jira.workflow, store, audit, SyncOptions(remind=False, **options), directory=directory)
            return job.run(server.clock())
        finally:
            store.close()
            audit.close()


def provider_records(tmp_path: Path) -> list[dict]:
    audit = AuditLog(tmp_path / "state.audit.db")
    try:
        return [r["data"] for r in audit.records() if r["kind"] == "sync.provider"]
    finally:
        audit.close()


def test_sync_writes_the_canonical_provider_once(make_connector, jira_server, tmp_path: Path) -> None:
    jira = make_connector()  # no provider names: the field gets each case's own text, as before issue 15
    made = jira.create_case(make_case("FIA-PF-1", provider="Facebook", provider_legal_entity=None))
    jira.create_case(make_case("FIA-PF-2", provider="Meta", provider_legal_entity=None))
    jira.create_case(make_case("FIA-PF-3", provider="Acme Hosting", provider_legal_entity=None))
    assert made.provider == "Facebook"

    dry = sync_once(jira, jira_server, tmp_path, dry_run=True)
    assert [(w.reference, w.before, w.name) for w in dry.providers] == [("FIA-PF-1", "Facebook", "Meta")]
    assert jira.find_case("FIA-PF-1").provider == "Facebook"  # a dry run writes nothing

    first = sync_once(jira, jira_server, tmp_path)
    assert [w.describe() for w in first.providers] == ["set FIA-PF-1: provider 'Facebook' -> 'Meta'"]
    assert first.to_json()["providers"] == [
        {"reference": "FIA-PF-1", "key": made.key, "before": "Facebook", "provider": "Meta"}
    ]
    assert {t.case.reference: t.provider for t in jira.list_cases()} == {
        "FIA-PF-1": "Meta",
        "FIA-PF-2": "Meta",
        "FIA-PF-3": "Acme Hosting",  # unknown to the directory: its own text
    }
    jira_server.clock.advance(minutes=5)
    again = sync_once(jira, jira_server, tmp_path, full=True)
    assert again.providers == [] and again.result.ok
    assert [r["reference"] for r in provider_records(tmp_path)] == ["FIA-PF-1"]


def test_a_failed_provider_write_fails_that_case_and_the_next_pass_retries(
    make_connector, jira_server, tmp_path: Path
) -> None:
    jira = make_connector(max_attempts=1)
    made = jira.create_case(make_case("FIA-PF-4", provider="Gmail", provider_legal_entity=None))
    assert sync_once(jira, jira_server, tmp_path, directory=None).result.ok  # the SLA fields: the next pass writes none
    jira_server.clock.advance(minutes=5)
    jira_server.faults.add("500", method="PUT", path=rf"/issue/{made.key}$", times=50)
    failed = sync_once(jira, jira_server, tmp_path)
    assert failed.plan.actions == [] and failed.providers == []
    assert "FIA-PF-4" in failed.result.failures and "500" in failed.result.failures["FIA-PF-4"]
    assert jira.find_case("FIA-PF-4").provider == "Gmail"
    jira_server.faults.clear()
    jira_server.clock.advance(minutes=5)
    retried = sync_once(jira, jira_server, tmp_path)
    assert [(w.reference, w.name) for w in retried.providers] == [("FIA-PF-4", "Google")]
    assert retried.result.ok and jira.find_case("FIA-PF-4").provider == "Google"

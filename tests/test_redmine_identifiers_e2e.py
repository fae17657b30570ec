"""Issue 15 end to end against the real Redmine 5 (tests/redmine_fixtures.py), through the real CLI and a
real casebridge.toml, as the non-admin case officer: two cases about the same account (one e-mail address
and one phone number, each in two spellings) and a provider named three ways are imported, the Provider
field holds the directory's canonical name, ``sync`` relates the two issues exactly once and corrects a
Provider field a person edited, and a rerun (also with the state store lost) adds nothing.

Redmine stamps its own time: every moment here is taken from the server's clock (``redmine.clock()``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import Cli
from tests.escalate_e2e import write_config

pytest_plugins = ["tests.redmine_fixtures"]
pytestmark = [pytest.mark.redmine, pytest.mark.usefixtures("cli_dir")]  # cli_dir: tests/conftest.py
CASES = "data-requests"
KEY_ENV = "CB_E2E_REDMINE_KEY"


def issues(redmine: Any) -> dict[str, dict[str, Any]]:
    """The project's issues by case reference (one each, or the test fails)."""
    answer = redmine.api("GET", "/issues.json", params={"project_id": CASES, "status_id": "*", "limit": 100})
    answer.raise_for_status()
    found: dict[str, dict[str, Any]] = {}
    for issue in answer.json()["issues"]:
        ref = cf(issue, "Case reference")
        assert ref not in found, f"two issues carry {ref}"
        found[ref] = issue
    return found


def cf(issue: dict[str, Any], name: str) -> Any:
    return next((f.get("value") for f in issue.get("custom_fields", []) if f["name"] == name), None)


def relations(redmine: Any, issue_id: int) -> list[tuple[int, int, str]]:
    answer = redmine.api("GET", f"/issues/{issue_id}/relations.json")
    answer.raise_for_status()
    return [(r["issue_id"], r["issue_to_id"], r["relation_type"]) for r in answer.json()["relations"]]


def case_rows(submitted: str) -> list[dict[str, Any]]:
    base = {
        "request_type": "subscriber",
        "legal_basis": "voluntary",
        "timezone": "Asia/Karachi",
        "submitted_at": submitted,
        "requesting_agency": "FIA Cyber Crime Wing",
    }
    return [
        {**base, "reference": "FIA-ID-1", "title": "Extortion account", "provider": "Facebook",
         "identifiers": [{"type": "email", "value": "Threat.Account@Example.COM"},
                         {"type": "phone", "value": "+92 300 1234567"}]},
        {**base, "reference": "FIA-ID-2", "title": "Same account, second victim", "provider": "Meta Platforms",
         "identifiers": [{"type": "email", "value": " threat.account@example.com"},
                         {"type": "phone", "value": "0092-300-123 4567"}]},
        {**base, "reference": "FIA-ID-3", "title": "Unrelated account", "provider": "Meta Platforms Ireland Limited",
         "identifiers": [{"type": "email", "value": "someone.else@example.com"}]},
    ]  # fmt: skip


def test_same_account_in_two_cases_is_linked_once_and_providers_are_canonical(
    redmine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, redmine.officer_key)
    section = {"connector": "redmine", "url": redmine.url, "api_key": {"env": KEY_ENV}, "project": CASES}
    write_config(tmp_path, section | {"retry_ceiling": 1})
    cli = Cli(capsys)
    start = redmine.clock()
    rows = tmp_path / "cases.json"
    rows.write_text(json.dumps(case_rows((start - timedelta(hours=2)).isoformat())), encoding="utf-8")

    code, out, err = cli("intake", str(rows), "--now", start.isoformat())
    assert code == 0, out + err
    assert "FIA-ID-2 names email:threat.account@example.com, already named by open case FIA-ID-1" in out + err
    held = issues(redmine)
    assert set(held) == {"FIA-ID-1", "FIA-ID-2", "FIA-ID-3"}
    # three spellings, one directory entry: the field holds its canonical name from the creating request
    assert {ref: cf(i, "Provider") for ref, i in held.items()} == dict.fromkeys(held, "Meta")
    one, two, three = (held[r]["id"] for r in ("FIA-ID-1", "FIA-ID-2", "FIA-ID-3"))

    # a person retypes the Provider field of one case: the next sync puts the canonical name back
    edited = redmine.api(
        "PUT",
        f"/issues/{three}.json",
        key=redmine.officer_key,
        json={"issue": {"custom_fields": [{"id": _field_id(held["FIA-ID-3"], "Provider"), "value": "facebook"}]}},
    )
    assert edited.status_code == 204, edited.text

    code, first = cli.json("sync", "--now", redmine.clock().isoformat())
    assert code == 0, first
    # one link for the pair, though it shares two identifiers (the e-mail and the phone number)
    assert [link[:2] for link in first["links"]] == [["FIA-ID-1", "FIA-ID-2"]], first["links"]
    assert first["links"][0][2] in ("email:threat.account@example.com", "phone:+923001234567")
    for spelling in ("+92 300 1234567", "0092-300-123 4567"):  # the phone number written two ways
        code, found = cli.json("find", spelling)
        assert code == 0 and [c["reference"] for c in found] == ["FIA-ID-1", "FIA-ID-2"], found
    assert [(w["reference"], w["before"], w["provider"]) for w in first["providers"]] == [
        ("FIA-ID-3", "facebook", "Meta")
    ]
    assert relations(redmine, one) == [(min(one, two), max(one, two), "relates")]
    assert relations(redmine, three) == []
    assert cf(issues(redmine)["FIA-ID-3"], "Provider") == "Meta"

    code, again = cli.json("sync", "--now", redmine.clock().isoformat())
    assert code == 0 and again["links"] == [] and again["providers"] == [] and again["actions"] == [], again
    (tmp_path / "casebridge-state.db").unlink()  # the store is a cache: losing it must not link twice
    code, rebuilt = cli.json("sync", "--now", redmine.clock().isoformat())
    assert code == 0 and rebuilt["providers"] == [], rebuilt
    assert relations(redmine, one) == relations(redmine, two) == [(min(one, two), max(one, two), "relates")]


def _field_id(issue: dict[str, Any], name: str) -> int:
    return next(f["id"] for f in issue["custom_fields"] if f["name"] == name)

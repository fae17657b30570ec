"""Library code fails with casebridge's typed errors, never with ``assert`` (``python -O`` strips asserts,
and an AssertionError is a traceback, not a one-line message naming what to fix)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from casebridge.connectors.jira import JiraConnector
from casebridge.errors import ConfigError, UserError
from casebridge.state.audit import AuditLog
from casebridge.workflows import load_workflow

ROOT = Path(__file__).resolve().parent.parent


def library_modules() -> list[Path]:
    skip = {"tests", "bench", ".venv", "build", "docs", "examples", "mutants", ".mutation", ".mypy_cache"}
    return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]


def test_library_code_validates_with_typed_errors_not_assert() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in library_modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert len(library_modules()) > 30
    assert found == [], "raise an error from casebridge.errors instead of assert: " + ", ".join(found)


def test_finding_an_escalation_on_jira_without_a_liaison_project_names_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CB_TEST_JIRA_TOKEN", "not-used-no-request-is-made")
    config = JiraConnector.config_model.model_validate(
        {"url": "http://127.0.0.1:9", "project": "CASE", "deployment": "datacenter",
         "personal_access_token": {"env": "CB_TEST_JIRA_TOKEN"}}
    )  # fmt: skip
    jira = JiraConnector(config, load_workflow("lawful-access"))
    with pytest.raises(ConfigError, match=r"\[jira\] liaison_project <- not set"):
        jira.find_escalation("FIA-1/legal/1")
    with pytest.raises(ConfigError, match=r"\[jira\] liaison_project <- not set"):
        jira.ops().post_escalation(None)  # type: ignore[arg-type]  # refused before the escalation is read


def test_resetting_the_anchor_of_a_log_opened_without_one_is_a_user_error(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    try:
        with pytest.raises(UserError, match="has no anchor to reset"):
            log.reset_anchor("cut")
    finally:
        log.close()

"""`casebridge sync` end to end: --dry-run --json, --full, the lock message, --every and SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from casebridge.state.audit import AuditLog
from casebridge.state.lock import RunLock
from tests.test_cli import run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases.json"
NOW = "2026-12-01T09:00:00Z"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    assert run(capsys, "intake", str(EXAMPLES), "--now", "2026-11-20T00:00:00Z")[0] == 0
    return tmp_path


def state_dir() -> Path:
    """Without a config the state files live in the user's state folder (tests/conftest.py points
    XDG_STATE_HOME at a folder of the test's own)."""
    return Path(os.environ["XDG_STATE_HOME"]) / "casebridge"


def audit_records(tmp_path: Path, kind: str) -> list[dict]:
    log = AuditLog(state_dir() / "casebridge-state.audit.db")
    try:
        return [r for r in log.records() if r["kind"] == kind]
    finally:
        log.close()


def test_dry_run_json_prints_the_plan_and_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # intake wrote each case's fields as of its --now; 11 days later 8 cases' clocks have moved on
    assert len(audit_records(tmp_path, "intake.set_fields")) == 14
    code, out, _ = run(capsys, "sync", "--dry-run", "--json", "--now", NOW)
    plan = json.loads(out)
    assert code == 0 and plan["dry_run"] is True and len(plan["actions"]) == 8 and plan["applied"] == 0
    assert audit_records(tmp_path, "sync.set_fields") == []
    code, out, _ = run(capsys, "sync", "--now", NOW)
    assert code == 0 and "14 cases evaluated, 8 updated, 0 failed" in out
    assert "writing SLA fields" not in out  # no progress bar when not on a terminal
    assert len(audit_records(tmp_path, "sync.set_fields")) == 8
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "chain intact" in out


def test_full_reports_the_reconcile(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "sync", "--now", NOW)
    code, out, _ = run(capsys, "sync", "--full", "--now", NOW)
    assert code == 0 and "14 cases evaluated; 0 disagreed with the engine, 0 updated, 0 failed" in out


def test_a_held_lock_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with RunLock(state_dir() / "casebridge-state.db.lock"):
        code, out, err = run(capsys, "sync", "--now", NOW)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "holds the run lock" in err and f"pid {os.getpid()}" in err
    # a dry run takes no lock: it writes nothing
    with RunLock(state_dir() / "casebridge-state.db.lock"):
        assert run(capsys, "sync", "--dry-run", "--now", NOW)[0] == 0


def test_every_rejects_now(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sync", "--every", "5m", "--now", NOW)
    assert code == 2 and "--every" in err


def test_every_loops_until_sigterm_then_exits_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "casebridge.cli", "sync", "--every", "1h"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    summary = ""
    for line in proc.stdout:  # the first pass has finished when its summary line appears
        if "cases evaluated" in line:
            summary = line
            break
    proc.send_signal(signal.SIGTERM)  # the loop is now waiting an hour for the next pass
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # the pass runs at the real time: how many clocks moved since intake's --now varies, but every
    # write it reports is audited once
    updated = int(re.search(r"(\d+) updated", summary).group(1))  # type: ignore[union-attr]
    assert "14 cases evaluated" in summary
    assert len(audit_records(tmp_path, "sync.set_fields")) == updated


def test_sync_escalate_runs_escalation_after_the_pass(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "sync", "--escalate", "--now", "2026-12-20T09:00:00Z")
    assert "cases evaluated" in out and " posted, " in out
    assert out.index("cases evaluated") < out.index(" posted, ")
    posted = audit_records(tmp_path, "escalation.posted")
    assert posted and code in (0, 1)
    # a rerun posts nothing twice
    run(capsys, "sync", "--escalate", "--now", "2026-12-20T09:00:00Z")
    assert len(audit_records(tmp_path, "escalation.posted")) == len(posted)

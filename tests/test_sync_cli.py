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
from tests.cli_runner import Cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases.json"
NOW = "2026-12-01T09:00:00Z"
INTAKE_NOW = "2026-12-01T02:00:00Z"  # the examples' latest moment: intake refuses moments after --now


@pytest.fixture(autouse=True)
def in_tmp(cli_dir: Path, cli: Cli) -> Path:
    assert cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)[0] == 0
    return cli_dir


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


def test_dry_run_json_prints_the_plan_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    # intake wrote each case's fields as of its --now; 7 hours later 3 cases' clocks have moved on
    created = [c for r in audit_records(tmp_path, "intake.batch") for c in r["data"]["created"]]
    assert len(created) == 14 and all("fields" in c for c in created)
    code, out, _ = cli("sync", "--dry-run", "--json", "--now", NOW)
    plan = json.loads(out)
    assert code == 0 and plan["dry_run"] is True and len(plan["actions"]) == 3 and plan["applied"] == 0
    assert audit_records(tmp_path, "sync.set_fields") == []
    code, out, _ = cli("sync", "--now", NOW)
    assert code == 0 and "14 cases evaluated, 3 updated, 0 failed" in out
    assert "writing SLA fields" not in out  # no progress bar when not on a terminal
    assert len(audit_records(tmp_path, "sync.set_fields")) == 3
    code, out, _ = cli("audit", "verify")
    assert code == 0 and "chain intact" in out


def test_full_reports_the_reconcile(cli: Cli) -> None:
    cli("sync", "--now", NOW)
    code, out, _ = cli("sync", "--full", "--now", NOW)
    assert code == 0 and "14 cases evaluated; 0 disagreed with the engine, 0 updated, 0 failed" in out


def test_a_held_lock_is_one_line_and_exit_2(cli: Cli, tmp_path: Path) -> None:
    with RunLock(state_dir() / "casebridge-state.db.lock"):
        code, out, err = cli("sync", "--now", NOW)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "holds the run lock" in err and f"pid {os.getpid()}" in err
    # a dry run takes no lock: it writes nothing
    with RunLock(state_dir() / "casebridge-state.db.lock"):
        assert cli("sync", "--dry-run", "--now", NOW)[0] == 0


def test_every_rejects_now(cli: Cli) -> None:
    code, _, err = cli("sync", "--every", "5m", "--now", NOW)
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


def test_sync_escalate_runs_escalation_after_the_pass(cli: Cli, tmp_path: Path) -> None:
    code, out, _ = cli("sync", "--escalate", "--now", "2026-12-20T09:00:00Z")
    assert "cases evaluated" in out and " posted, " in out
    assert out.index("cases evaluated") < out.index(" posted, ")
    posted = audit_records(tmp_path, "escalation.posted")
    assert posted and code in (0, 1)
    # a rerun posts nothing twice
    cli("sync", "--escalate", "--now", "2026-12-20T09:00:00Z")
    assert len(audit_records(tmp_path, "escalation.posted")) == len(posted)

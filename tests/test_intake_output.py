"""What `casebridge intake` tells the officer and records (issue 19): the lines printed for create, update
and unchanged rows, with and without -v and --dry-run, and the audit records each write leaves."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_runner import cli_logging_restored, run
from tests.escalate_e2e import write_config

NOW = "2026-12-01T09:00:00Z"
HEADER = "reference,title,provider,request_type,legal_basis,submitted_at,state"
ROW1 = "FIA-O-1,Subscriber info,Meta,subscriber,voluntary,2026-11-30T09:00:00Z,submitted"
ROW2 = "FIA-O-2,Traffic data,Google,traffic,voluntary,,draft"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, {"connector": "local", "path": "casebridge.db"})
    with cli_logging_restored():
        yield tmp_path


def intake_file(folder: Path, *rows: str) -> str:
    path = folder / "cases.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return str(path)


def audit_records(folder: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(folder / "casebridge-state.audit.db") as db:
        return list(db.execute("SELECT kind, data FROM records ORDER BY seq"))


def test_intake_prints_each_create_then_totals_and_dry_run_says_would(folder: Path, capsys) -> None:
    path = intake_file(folder, ROW1, ROW2)
    code, out, _ = run(capsys, "intake", path, "--dry-run", "--now", NOW)
    assert code == 0 and out.splitlines() == [
        f"would create FIA-O-1 in state submitted ({path}:2)",
        f"would create FIA-O-2 in state draft ({path}:3)",
        "would create 2, update 0, leave 0 unchanged",
    ]
    assert not (folder / "casebridge.db").exists()  # a dry run creates nothing, not even the file
    code, out, _ = run(capsys, "intake", path, "--now", NOW)
    assert code == 0 and out.splitlines() == [
        f"create FIA-O-1 in state submitted ({path}:2)",
        f"create FIA-O-2 in state draft ({path}:3)",
        "created 2, updated 0, unchanged 0",
    ]


def test_a_rerun_prints_only_updates_and_v_lists_the_unchanged(folder: Path, capsys) -> None:
    assert run(capsys, "intake", intake_file(folder, ROW1, ROW2), "--now", NOW)[0] == 0
    path = intake_file(folder, ROW1, ROW2.replace("Traffic data", "Traffic data (March)"))
    code, out, err = run(capsys, "intake", path, "--dry-run", "--now", NOW)
    assert code == 0, err
    assert out.splitlines() == [
        f"would update FIA-O-2 (tracker key 2; {path}:3)",
        "would create 0, update 1, leave 1 unchanged",
    ]
    code, out, _ = run(capsys, "-v", "intake", path, "--now", NOW)
    assert code == 0
    assert out.splitlines() == [
        "unchanged FIA-O-1",  # only with -v
        f"update FIA-O-2 (tracker key 2; {path}:3)",
        "created 0, updated 1, unchanged 1",
    ]


def test_intake_audits_each_create_and_update_with_its_reference_key_and_fields(folder: Path, capsys) -> None:
    assert run(capsys, "intake", intake_file(folder, ROW1), "--now", NOW)[0] == 0
    changed = intake_file(folder, ROW1.replace("Subscriber info", "Subscriber"))
    assert run(capsys, "intake", changed, "--now", NOW)[0] == 0
    records = audit_records(folder)
    # one record per batch (app/intake_stream.py): the cases it created with their SLA fields, the updated
    assert [k for k, _ in records] == ["intake.batch", "intake.batch"]
    created, updated = (json.loads(data) for _, data in records)
    assert created["evaluated_at"] == "2026-12-01T09:00:00+00:00" and created["updated"] == []
    assert [(c["reference"], c["key"], c["state"]) for c in created["created"]] == [("FIA-O-1", "1", "submitted")]
    assert set(created["created"][0]["fields"]) == {"clocks", "escalation_level"}
    assert updated["created"] == [] and [(u["reference"], u["key"]) for u in updated["updated"]] == [("FIA-O-1", "1")]

"""Every data file casebridge creates is 0600 and every folder it creates 0700 (issue 11, item 11):
the embedded tracker, the state store, the audit log, the run lock, the mail sent-record and an audit
export, through the CLI with a permissive umask, checked with os.stat."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from casebridge.state.sqlite_file import private_file
from tests.escalate_e2e import EXAMPLES, write_config
from tests.smtp_fixtures import cert, starttls_server  # noqa: F401  (fixtures)
from tests.test_email import PASSWORD, USER

NOW = "2026-12-01T09:00:00Z"


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default: without care every file would be 0644
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_every_file_and_folder_casebridge_creates_is_private(
    cli,
    cli_dir,
    tmp_path,
    monkeypatch,
    starttls_server,  # noqa: F811 (pytest fixtures imported by name)
    cert,  # noqa: F811
):
    _, port = starttls_server
    monkeypatch.setenv("CB_MODES_PASSWORD", PASSWORD)
    write_config(
        tmp_path,
        {"connector": "local", "path": "tracker/casebridge.db"},
        {
            "connector": "email",
            "host": "127.0.0.1",
            "port": port,
            "username": USER,
            "password": {"env": "CB_MODES_PASSWORD"},
            "from": "casebridge@fia.example.gov.pk",
            "to": ["ncb-liaison@ncb.example.org"],
            "sent_record": "mail/sent.sqlite",
            "ca_file": str(cert[0]),
        },
    )
    assert cli("intake", str(EXAMPLES), "--now", NOW)[0] == 0
    assert cli("sync", "--now", NOW)[0] == 0
    assert cli("escalate", "--yes", "--now", NOW)[0] == 1  # 1: the examples' blocked case
    assert cli("audit", "export", "-o", "exports/deep/audit.jsonl")[0] == 0
    created = [p for p in tmp_path.rglob("*") if p.name != "casebridge.toml"]
    files = [p for p in created if p.is_file()]
    folders = [p for p in created if p.is_dir()]
    names = {p.name for p in files}
    assert {"casebridge.db", "casebridge-state.db", "casebridge-state.audit.db", "sent.sqlite", "audit.jsonl"} <= names
    assert "casebridge-state.db.lock" in names
    assert {p.name for p in folders} >= {"tracker", "mail", "exports", "deep"}
    assert {str(p.relative_to(tmp_path)): oct(mode(p)) for p in files if mode(p) != 0o600} == {}
    assert {str(p.relative_to(tmp_path)): oct(mode(p)) for p in folders if mode(p) != 0o700} == {}


def test_an_existing_readable_file_is_tightened(tmp_path) -> None:
    path = tmp_path / "old.db"
    path.write_bytes(b"")
    path.chmod(0o644)
    private_file(path)
    assert mode(path) == 0o600

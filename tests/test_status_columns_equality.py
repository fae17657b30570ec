"""``status`` (text and --json) through the embedded tracker's stored text, the batch clock path and the
rows written from the clock columns (app/status_batch.py, cli/status_columns.py) prints exactly what the
ordinary path prints (``list_cases``, the scalar engine, ``StatusRows``): law-counted and elapsed clocks in
zones with odd offsets (+05:45, -03:30, +12:45) and instants either side of DST transitions, hostile
providers; rows the columns cannot hold (an unsorted history, a state the workflow does not name, a history
stamp that is not the store's, extensions granted before intake) fall back inside the batch; a row pydantic
rejects, or two rows with one reference, send the whole listing the ordinary way, which reports them as
before; a case that cannot be evaluated is reported alone."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casebridge.cli import status_columns
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from tests.cli_runner import Cli
from tests.escalate_e2e import write_config
from tests.factories import make_case
from tests.test_counting_cli import WORKFLOW, _case
from tests.test_status_collector_and_writes import damage as damage_file
from tests.test_status_collector_and_writes import status_both_ways

ZONES = [
    "UTC",
    "Asia/Karachi",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Pacific/Chatham",
    "Europe/Dublin",
    "America/New_York",
    "Australia/Lord_Howe",
]
KINDS = [("subscriber", "eu-epo"), ("emergency", "eu-epo"), ("preservation", "us-2703f"), ("content", "mlat")]
STATES = ["submitted", "acknowledged", "awaiting_requester", "acknowledged", "fulfilled"]
# instants either side of DST changes: St John's and New York on 14 Mar 2027, Dublin on 28 Mar 2027,
# Lord Howe (a 30-minute change) on 3 Oct 2027
AROUND = [
    datetime(2027, 3, 14, 5, 29, 59, 999_999, tzinfo=UTC),
    datetime(2027, 3, 14, 6, 59, 30, tzinfo=UTC),
    datetime(2027, 3, 28, 0, 59, 59, 500_000, tzinfo=UTC),
    datetime(2027, 3, 28, 1, 0, 0, 1, tzinfo=UTC),
    datetime(2027, 10, 2, 15, 30, 0, tzinfo=UTC),
]
NOWS = ["2027-03-14T06:00:00Z", "2027-05-26T09:30:00Z", "2027-11-07T06:15:00Z", "2028-01-01T00:00:00Z"]


def _cases(count: int) -> list[dict[str, Any]]:
    received = datetime(2027, 2, 23, 11, 0, 17, 250_000, tzinfo=UTC)
    out = []
    for i in range(count):
        request_type, basis = KINDS[i % len(KINDS)]
        at = received + timedelta(days=i % 20, hours=i % 7 * 3, minutes=i * 7)
        if i % 9 == 0:
            at = AROUND[i // 9 % len(AROUND)] - timedelta(days=[0, 30, 90][i % 3])
        provider = ["Meta", "Microsoft", 'x"\\ \u2028\x1b[31m', "Ünïcode"][i % 4]
        case = _case(f"SC-{i:03d}", request_type, basis, at.isoformat(), provider=provider)
        case["timezone"] = ZONES[i % len(ZONES)]
        if i == 11:
            case["extensions_used"] = 1  # granted before intake: still batched (counted as columns)
        out.append(case)
    return out


def _seed(cli_dir: Path, cli: Cli, count: int) -> None:
    (cli_dir / "cases.json").write_text(json.dumps(_cases(count)))
    (cli_dir / "wf.toml").write_text(WORKFLOW)
    (cli_dir / "casebridge.toml").write_text('workflow = "wf.toml"\n')
    code, out, err = cli("intake", "cases.json", "--now", "2027-12-31T00:00:00Z")
    assert code == 0, out + err
    db = sqlite3.connect(cli_dir / "casebridge.db")
    with db:
        for i, state in enumerate(STATES):  # ordinary histories of several lengths
            for case_id in range(1 + i, count + 1, 5 + i):
                _transition(db, case_id, state, 3 + i)
        _transition(db, 7, "acknowledged", -400)  # before the case's previous change: unsorted
        _transition(db, 9, "on_the_moon", 2)  # a state the workflow does not name
        _transition(db, 13, 'ack"], ["2030-01-01T00:00:00.000000Z", "fulfilled', 2)  # JSON in a state
        db.execute("UPDATE history SET at = '2027-05-25T12:00:00+00:00' WHERE case_id = 15 AND seq = 0")
        _transition(db, 17, "acknowledged", 0)  # two changes at one instant: seq order decides
    db.close()


def _transition(db: sqlite3.Connection, case_id: int, state: str, hours: int) -> None:
    seq, last = db.execute("SELECT MAX(seq), MAX(at) FROM history WHERE case_id = ?", (case_id,)).fetchone()
    at = datetime.fromisoformat(last) + timedelta(hours=hours, seconds=17 if hours else 0)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    db.execute("INSERT INTO history (case_id, seq, at, state) VALUES (?, ?, ?, ?)", (case_id, seq + 1, stamp, state))
    db.execute("UPDATE cases SET state = ? WHERE id = ?", (state, case_id))


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Per chunk written from the columns, its number of rows (None-returning chunks left out)."""
    written: list[int] = []
    chunk = status_columns.ColumnRows.chunk

    def spying(self: Any, cases: Any, batch: Any) -> Any:
        table = chunk(self, cases, batch)
        if table is not None:
            written.append(len(table))
        return table

    monkeypatch.setattr(status_columns.ColumnRows, "chunk", spying)
    return written


def _rows(cli_dir: Path) -> list[Any]:
    db = sqlite3.connect(cli_dir / "casebridge.db")
    rows = db.execute("SELECT data || sla FROM cases").fetchall()
    db.close()
    return rows


def _both(cli: Cli, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> tuple[Any, Any, list[int]]:
    """(the ordinary path's result, the fast path's, the chunks the fast path wrote from columns)."""
    spied: list[list[int]] = []
    ordinary, fast = status_both_ways(cli, monkeypatch, args, then=lambda: spied.append(_spy(monkeypatch)))
    return ordinary, fast, spied[0]


@pytest.mark.parametrize("now", NOWS)
@pytest.mark.parametrize("as_json", [False, True])
def test_status_from_columns_prints_what_the_ordinary_path_prints(
    cli_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, now: str, as_json: bool
) -> None:
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    _seed(cli_dir, cli, 96)
    ordinary, fast, written = _both(cli, monkeypatch, ["status", "--now", now, *(["--json"] if as_json else [])])
    assert fast == ordinary
    assert ordinary[0] == 0 and ordinary[1].count("SC-0") >= 96
    assert written == ([96] if as_json else [])  # JSON rows came from the columns


def test_the_listing_text_holds_the_history_in_seq_order(cli_dir: Path) -> None:
    """Entries written out of seq order (seq 2 before seq 1), all at one instant: the text follows seq."""
    tracker = LocalConnector(LocalConfig(path=str(cli_dir / "t.db")), load_workflow())
    made = tracker.create_case(make_case("SEQ-1"), at=datetime(2027, 1, 1, tzinfo=UTC))
    with tracker.db as db:
        for seq, state in [(2, 'approved"\\'), (1, "legal_review")]:
            db.execute(
                "INSERT INTO history VALUES (?, ?, '2027-01-01T00:00:00.000000Z', ?, NULL)", (made.key, seq, state)
            )
    texts = tracker.list_case_texts()
    tracker.close()
    history = texts.histories[0] or ""
    assert json.loads(history) == [
        ["2027-01-01T00:00:00.000000Z", "draft"],
        ["2027-01-01T00:00:00.000000Z", "legal_review"],
        ["2027-01-01T00:00:00.000000Z", 'approved"\\'],
    ]
    assert history == json.dumps(json.loads(history), ensure_ascii=False)  # json.dumps's layout
    assert list(texts.keys) == [made.key]


@pytest.mark.parametrize(
    "damage",
    [
        'UPDATE cases SET data = replace(data, \'"title":"subscriber order"\', \'"title":""\') WHERE id = 5',
        "UPDATE cases SET data = replace(data, '\"SC-004\"', '\"SC-003\"') WHERE id = 5",
        "UPDATE cases SET sla = '{\"x\": ' WHERE id = 6",
    ],
    ids=["rejected-by-pydantic", "duplicate-reference", "sla-not-json"],
)
def test_a_row_that_does_not_read_cleanly_sends_the_listing_the_ordinary_way(
    cli_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    _seed(cli_dir, cli, 40)
    before = _rows(cli_dir)
    damage_file(cli_dir, damage)
    assert _rows(cli_dir) != before
    ordinary, fast, written = _both(cli, monkeypatch, ["status", "--json", "--now", NOWS[1]])
    assert fast == ordinary
    assert written == []


def test_a_case_that_cannot_be_evaluated_is_reported_alone(
    cli_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state entered in 1800 (older versions let it in): the batch fails on the chunk, the ordinary pass
    reports that case alone and prints the others, as before."""
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    write_config(cli_dir, {"connector": "local", "path": "casebridge.db"})
    tracker = LocalConnector(LocalConfig(path=str(cli_dir / "casebridge.db")), load_workflow())
    tracker.create_case(make_case("OLD-1"), state="legal_review", at=datetime(1800, 1, 1, tzinfo=UTC))
    for i in range(40):
        at = datetime(2026, 11, 2, tzinfo=UTC) + timedelta(hours=i * 7)
        tracker.create_case(make_case(f"NEW-{i:02d}"), state=["acknowledged", "submitted"][i % 2], at=at)
    tracker.close()
    ordinary, fast, written = _both(cli, monkeypatch, ["status", "--now", "2026-12-01T09:00:00Z", "--json"])
    assert fast == ordinary
    assert ordinary[0] == 1 and "not evaluated: OLD-1: cannot evaluate its clocks" in ordinary[2]
    assert ordinary[1].count('"NEW-') == 40
    assert written == []  # the batch was tried and failed: the ordinary pass evaluated the chunk

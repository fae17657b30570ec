"""`casebridge report` counted over columns from the embedded tracker's stored text (app/report.py
``_from_texts``, workflows/report_columns.py) prints, byte for byte, what the ordinary path prints
(``load_cases`` + ``build_report``, the reference), through the real CLI on a real embedded tracker of 96
hostile cases read 17 at a time (six chunks, the last short): every format and grouping, date ranges whose
ends fall on local midnight in the report calendar's zone, aggregate reports; rows the columns cannot
read are read one by one inside the chunk; a repeated reference, a row pydantic rejects, a chunk the batch
engine fails on and a listing too short for the batch go the ordinary way, with its output or its error.

The ordinary path's output is taken in the same test, with ``LocalConnector.case_text_chunks`` giving
None (a tracker without stored text). The seeded cases: tests/report_columns_seed.py.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from casebridge.app import report as app_report
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from casebridge.workflows.report_columns import ReportColumns
from tests.cli_runner import Cli
from tests.report_columns_seed import COUNT, NOW_ISO, SPECS, received_by_local_day, seed

CHUNK = 17  # 96 cases: five chunks of 17 and one of 11
GROUPINGS = ["--by", "provider", "--by", "legal_basis", "--by", "request_type", "--by", "agency", "--by", "month"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded tracker, built once per module (tests copy it)."""
    folder = tmp_path_factory.mktemp("report-columns")
    seed(folder)
    return folder


@pytest.fixture
def tracker_dir(seeded: Path, cli_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the seeded tracker and its casebridge.toml in the test's working directory; reports read
    ``CHUNK`` rows at a time."""
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    for name in ("casebridge.toml", "casebridge.db"):
        shutil.copy(seeded / name, cli_dir / name)
    monkeypatch.setattr(app_report, "BATCH_SIZE", CHUNK)
    monkeypatch.setattr(app_report, "MIN_BATCH", CHUNK)  # the first chunk is long enough for the batch
    return cli_dir


@dataclass
class Spy:
    """What the columns path did in one run."""

    added: list[int] = field(default_factory=list)  # per ReportColumns.add, the chunk's cases
    reported: int = 0  # ReportColumns.report calls (the columns' report was printed)
    histories: list[str] = field(default_factory=list)  # keys read with LocalConnector.read_history


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    files: dict[str, bytes]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    seen = Spy()
    add, report, read = ReportColumns.add, ReportColumns.report, LocalConnector.read_history

    def adding(self: ReportColumns, cases: Any, *args: Any) -> None:
        seen.added.append(len(cases))
        add(self, cases, *args)

    def reporting(self: ReportColumns, **options: Any) -> Any:
        seen.reported += 1
        return report(self, **options)

    def reading(self: LocalConnector, key: str) -> Any:
        seen.histories.append(key)
        return read(self, key)

    monkeypatch.setattr(ReportColumns, "add", adding)
    monkeypatch.setattr(ReportColumns, "report", reporting)
    monkeypatch.setattr(LocalConnector, "read_history", reading)
    return seen


def _run(cli: Cli, folder: Path, args: list[str], outs: list[str]) -> Run:
    for name in outs:
        (folder / name).unlink(missing_ok=True)
    now = [] if "--now" in args else ["--now", NOW_ISO]
    try:
        code, out, err = cli("report", *now, *args)
    except Exception as exc:  # the same failure on both paths compares equal
        code, out, err = -1, "", repr(exc)
    files = {name: (folder / name).read_bytes() for name in outs if (folder / name).exists()}
    return Run(code, out, err, files)


def both(
    cli: Cli, folder: Path, monkeypatch: pytest.MonkeyPatch, spy: Spy, args: list[str], outs: Sequence[str] = ()
) -> tuple[Run, Run]:
    """(the ordinary path's run, the columns path's run) of ``casebridge report ARGS``; ``spy`` holds what
    the columns path did, and nothing of the ordinary run."""
    with monkeypatch.context() as m:
        m.setattr(LocalConnector, "case_text_chunks", lambda self, size: None)
        ordinary = _run(cli, folder, args, list(outs))
    assert (spy.added, spy.reported) == ([], 0)
    spy.histories.clear()  # the ordinary path reads every history in one query: none one by one
    fast = _run(cli, folder, args, list(outs))
    return ordinary, fast


# -- every format, grouping and option --------------------------------------------------------------------
# the seed's moment; the instant RC-045 is received (1 Mar 00:00 Karachi), most cases still to come
@pytest.mark.parametrize("now", [NOW_ISO, "2026-02-28T19:00:00Z"])
@pytest.mark.parametrize("fmt", ["text", "csv", "json"])
def test_every_format_and_grouping_prints_what_the_ordinary_path_prints(
    tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy, fmt: str, now: str
) -> None:
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, ["--format", fmt, "--now", now, *GROUPINGS])
    assert fast == ordinary
    assert ordinary.code == 0 and ordinary.out
    assert spy.added == [CHUNK] * 5 + [COUNT - 5 * CHUNK] and spy.reported == 1  # every chunk by columns
    assert spy.histories == []  # every history read from the listing's text


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font:UserWarning")  # CJK, ESC in the charts
def test_the_html_page_is_the_same_file(tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy) -> None:
    args = ["--format", "html", "--out", "r.html", "--by", "agency", "--by", "legal_basis"]
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, args, ["r.html"])
    assert fast == ordinary
    assert ordinary.code == 0 and len(ordinary.files["r.html"]) > 1000
    assert spy.reported == 1


def test_the_figures_are_the_seeded_ones(
    tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    """Counted from the seed, independently of both paths: received cases (one exactly at --now, drafts and
    receipts after it left out), per local month, and the directory's names as groups."""
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, ["--format", "json", *GROUPINGS])
    assert fast == ordinary
    data = json.loads(fast.out)
    received = received_by_local_day()
    assert "RC-060" in received  # received at --now
    assert data["total"]["requests"] == len(received)
    assert data["not_sent"] == COUNT - len(received)
    months = {g["group"]: g["requests"] for g in data["groupings"]["month"]}
    assert months["2026-02"] == len(received_by_local_day("2026-02-01", "2026-02-28"))
    providers = {g["group"] for g in data["groupings"]["provider"]}
    assert "Meta" in providers and not providers & {"Facebook", "Meta Platforms Ireland Ltd"}
    meta = sum(1 for s in SPECS if s.case.reference in received and s.index % 9 < 3)
    assert {g["group"]: g["requests"] for g in data["groupings"]["provider"]}["Meta"] == meta
    assert sum(g["requests"] for g in data["groupings"]["agency"]) == len(received)
    assert fast.out.count('"reference"') >= 10  # open breaches listed (CaseFacts built by the columns)


@pytest.mark.parametrize(
    "first,last",
    [("2026-02-01", "2026-02-28"), ("2026-01-31", "2026-03-01"), (None, "2026-01-31"), ("2026-04-01", None)],
)
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_date_ranges_ending_on_local_midnight(
    tracker_dir: Path,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    spy: Spy,
    first: str | None,
    last: str | None,
    fmt: str,
) -> None:
    """Receipts at 23:59:59.999999 and 00:00 Karachi time at the ends of January, February and March: each
    on its own local day, on both paths."""
    args = [*(["--from", first] if first else []), *(["--to", last] if last else [])]
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, ["--format", fmt, *args, *GROUPINGS])
    assert fast == ordinary
    assert spy.reported == 1
    if fmt == "json":
        assert json.loads(fast.out)["total"]["requests"] == len(received_by_local_day(first, last))


@pytest.mark.parametrize("min_count", ["1", "3", "9"])
@pytest.mark.parametrize("fmt", ["text", "csv", "json"])
def test_aggregate_reports_suppress_the_same_cells(
    tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy, min_count: str, fmt: str
) -> None:
    args = ["--format", fmt, "--aggregate", "--min-count", min_count, *GROUPINGS]
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, args)
    assert fast == ordinary
    assert ordinary.code == 0 and "RC-0" not in ordinary.out  # no case data
    assert spy.reported == 1


def test_a_report_to_a_file_is_the_same_file(
    tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    args = ["--format", "csv", "--out", "r.csv", "--from", "2026-01-31", *GROUPINGS]
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, args, ["r.csv"])
    assert fast == ordinary
    assert ordinary.files["r.csv"] and spy.reported == 1


# -- rows the columns cannot read, and what sends the report the ordinary way ------------------------------
def _edit(folder: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    db = sqlite3.connect(folder / "casebridge.db")
    with db:
        for sql, params in statements:
            assert db.execute(sql, params).rowcount >= 1, sql
    db.close()


def _append(case_id: int, at: str, state: str) -> tuple[str, tuple[Any, ...]]:
    return (
        "INSERT INTO history (case_id, seq, at, state) SELECT ?, MAX(seq) + 1, ?, ? FROM history WHERE case_id = ?",
        (case_id, at, state, case_id),
    )


def test_histories_the_columns_cannot_read_are_read_one_by_one_in_their_chunk(
    tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    """Case 8: an entry before its previous one (unsorted); cases 40 and 41: a state the workflow does not
    name (41's holds JSON); cases 65 and 73: a stamp not in the store's layout (an offset, no microseconds),
    the columns do not see their fulfilment. Only they are read alone."""
    _edit(
        tracker_dir,
        _append(8, "2025-12-01T00:00:00.000000Z", "fulfilled"),
        _append(40, "2026-02-20T10:00:00.000000Z", "on_the_moon"),
        _append(41, "2026-02-21T10:00:00.000000Z", 'ack"], ["2030-01-01T00:00:00.000000Z", "fulfilled'),
        _append(65, "2026-03-20T10:00:00+00:00", "fulfilled"),
        _append(73, "2026-04-01T10:00:00Z", "fulfilled"),
    )
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, ["--format", "json", *GROUPINGS])
    assert fast == ordinary
    assert spy.reported == 1 and len(spy.added) == 6
    assert sorted(spy.histories, key=int) == ["8", "40", "41", "65", "73"]


@pytest.mark.parametrize("copy_from", [4, 90], ids=["same-chunk", "another-chunk"])
def test_two_rows_with_one_reference_go_the_ordinary_way(
    tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy, copy_from: int
) -> None:
    """The tracker's reference column is UNIQUE, but a changed row's case JSON can name another's."""
    _edit(
        tracker_dir,
        (
            "UPDATE cases SET data = json_set(data, '$.reference', (SELECT reference FROM cases WHERE id = ?)) "
            "WHERE id = 6",
            (copy_from,),
        ),
    )
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, ["--format", "json", *GROUPINGS])
    assert fast == ordinary
    assert spy.reported == 0 and spy.added  # the columns saw the repeat and gave the report up


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE cases SET data = json_set(data, '$.request_type', 'telepathy') WHERE id = 50",
        "UPDATE cases SET data = json_set(data, '$.title', '') WHERE id = 3",
        "UPDATE cases SET data = '{\"reference\": ' WHERE id = 90",
    ],
    ids=["bad-enum", "empty-title", "not-json"],
)
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_row_pydantic_rejects_fails_the_report_as_the_ordinary_path_does(
    tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy, damage: str, fmt: str
) -> None:
    _edit(tracker_dir, (damage, ()))
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, ["--format", fmt])
    assert fast == ordinary
    assert ordinary.code not in (0, -1) and ordinary.out == ""
    assert "not a valid case" in ordinary.err and "Traceback" not in ordinary.err
    assert spy.reported == 0


def test_a_chunk_the_batch_engine_fails_on_goes_the_ordinary_way(
    tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    """A history entry in 1800 (older versions let it in)."""
    _edit(tracker_dir, ("UPDATE history SET at = '1800-01-01T00:00:00.000000Z' WHERE case_id = 30 AND seq = 0", ()))
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, ["--format", "json", *GROUPINGS])
    assert fast == ordinary
    assert spy.reported == 0


@pytest.mark.parametrize(
    "received,columns",
    [("0999-06-01T00:00:00Z", False), ("1000-01-01T23:59:59Z", False), ("1830-01-02T12:00:00Z", True)],
)
def test_a_receipt_outside_the_years_the_columns_take_goes_the_ordinary_way(
    tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy, received: str, columns: bool
) -> None:
    """Before 2 Jan 1000 the ordinary path reports the case's dates as it always did; 1830 is counted."""
    _edit(tracker_dir, ("UPDATE cases SET data = json_set(data, '$.submitted_at', ?) WHERE id = 4", (received,)))
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, ["--format", "json", *GROUPINGS])
    assert fast == ordinary
    assert spy.reported == (1 if columns else 0)
    assert (ordinary.code == 0) is columns


@pytest.mark.parametrize("kept,columns", [(31, False), (32, True)])
def test_fewer_cases_than_the_batch_takes_go_the_ordinary_way(
    tracker_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy, kept: int, columns: bool
) -> None:
    """With the real chunk size and threshold (2,000 and 32): 31 cases are counted the ordinary way, 32 by
    the columns."""
    monkeypatch.setattr(app_report, "BATCH_SIZE", 2_000)
    monkeypatch.setattr(app_report, "MIN_BATCH", 32)
    _edit(
        tracker_dir,
        ("DELETE FROM history WHERE case_id > ?", (kept,)),
        ("DELETE FROM cases WHERE id > ?", (kept,)),
    )
    ordinary, fast = both(cli, tracker_dir, monkeypatch, spy, ["--format", "json", *GROUPINGS])
    assert fast == ordinary
    assert (spy.added, spy.reported) == (([kept], 1) if columns else ([], 0))


# -- the listing in chunks -----------------------------------------------------------------------------------
def _rows(texts: Any) -> list[tuple[Any, ...]]:
    fields = ("keys", "data", "states", "updated_at", "sla", "escalation_levels", "histories")
    return list(zip(*(getattr(texts, name) for name in fields), strict=True))


@pytest.fixture
def tracker(tracker_dir: Path) -> Iterator[LocalConnector]:
    connector = LocalConnector(LocalConfig(path=str(tracker_dir / "casebridge.db")), load_workflow())
    yield connector
    connector.close()


@pytest.mark.parametrize("size", [1, 3, CHUNK, COUNT, 1000])
def test_the_chunks_are_the_listing_in_order(tracker: LocalConnector, size: int) -> None:
    chunks = tracker.case_text_chunks(size)
    assert chunks is not None
    lengths, rows = [], []
    for texts in chunks:
        lengths.append(len(texts))
        rows += _rows(texts)
    assert rows == _rows(tracker.list_case_texts())
    assert len(rows) == COUNT and all(rows[i][6] for i in range(COUNT))  # every case has a history
    assert lengths == [size] * (COUNT // size) + ([COUNT % size] if COUNT % size else [])


def test_an_empty_tracker_gives_no_chunk(cli_dir: Path) -> None:
    tracker = LocalConnector(LocalConfig(path=str(cli_dir / "empty.db")), load_workflow())
    try:
        chunks = tracker.case_text_chunks(5)
        assert chunks is not None and list(chunks) == []
    finally:
        tracker.close()


def test_a_tracker_with_nothing_reads_an_empty_report_both_ways(
    cli_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    seed(cli_dir, [])
    ordinary, fast = both(cli, cli_dir, monkeypatch, spy, ["--format", "json"])
    assert fast == ordinary and ordinary.code == 0
    assert json.loads(ordinary.out)["total"]["requests"] == 0

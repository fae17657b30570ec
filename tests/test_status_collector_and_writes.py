"""``status`` reads the listing with the cyclic garbage collector off and puts it back as it found it
(on, or off when the caller had turned it off), also when the command fails; ``JsonArrayWriter.write_flat``
prints its pieces a few at a time and still prints exactly their concatenation."""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from casebridge.app import status_batch
from casebridge.cli import jsonout
from casebridge.cli.jsonout import JsonArrayWriter
from tests.cli_runner import Cli
from tests.test_counting_cli import WORKFLOW, _case


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector's state put back after the test, whatever it did."""
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def _seed(cli_dir: Path, cli: Cli, count: int) -> None:
    cases = [_case(f"GC-{i:03d}", "subscriber", "eu-epo", "2027-02-23T11:00:00Z") for i in range(count)]
    (cli_dir / "cases.json").write_text(json.dumps(cases))
    (cli_dir / "wf.toml").write_text(WORKFLOW)
    (cli_dir / "casebridge.toml").write_text('workflow = "wf.toml"\n')
    code, out, err = cli("intake", "cases.json", "--now", "2027-03-01T00:00:00Z")
    assert code == 0, out + err


def damage(cli_dir: Path, statement: str, params: tuple[object, ...] = ()) -> None:
    """One SQL statement on the embedded tracker's file, as a person or an older casebridge might leave it."""
    db = sqlite3.connect(cli_dir / "casebridge.db")
    with db:
        db.execute(statement, params)
    db.close()


def status_both_ways(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, args: list[str], *, then: Callable[[], object] = lambda: None
) -> tuple[Any, Any]:
    """The command ``args`` the ordinary way (no listing by text: ``list_cases`` and the scalar engine),
    then, after ``then()`` (a spy), the batch way: each the CLI's (code, out, err), or the exception raised."""
    outputs: list[Any] = []
    for min_batch in (10**9, 32):
        monkeypatch.setattr(status_batch, "MIN_BATCH", min_batch)
        if min_batch == 32:
            then()
        try:
            outputs.append(cli(*args))
        except Exception as exc:
            outputs.append(repr(exc))
    return outputs[0], outputs[1]


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the collector was on, each time the listing was read."""
    seen: list[bool] = []
    read = status_batch.read_listing

    def spying(texts: Any) -> Any:
        seen.append(gc.isenabled())
        return read(texts)

    monkeypatch.setattr(status_batch, "read_listing", spying)
    return seen


@pytest.mark.usefixtures("collector")
@pytest.mark.parametrize("enabled", [True, False])
def test_the_listing_is_read_with_the_collector_off_and_it_is_put_back(
    cli_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    _seed(cli_dir, cli, 40)
    seen = _spy(monkeypatch)
    gc.enable() if enabled else gc.disable()
    code, out, err = cli("status", "--json", "--now", "2027-03-02T00:00:00Z")
    assert code == 0, err
    assert len(json.loads(out)) == 40
    assert seen == [False]
    assert gc.isenabled() is enabled


@pytest.mark.usefixtures("collector")
def test_the_collector_is_back_on_when_the_listing_fails(
    cli_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    _seed(cli_dir, cli, 40)

    def failing(texts: Any) -> Any:
        raise MemoryError("no room")

    monkeypatch.setattr(status_batch, "read_listing", failing)
    gc.enable()
    code, _out, _err = cli("status", "--json", "--now", "2027-03-02T00:00:00Z")
    assert code != 0
    assert gc.isenabled()


@pytest.mark.parametrize("items", [1, 3, 200])
def test_write_flat_prints_exactly_the_pieces_however_many(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, items: int
) -> None:
    monkeypatch.setattr(jsonout, "_PIECES", 7)  # many writes per call, one piece group cut mid-item
    rows = [
        [
            jsonout.ITEM_SEP,
            '{\n    "n": ',
            str(i),
            ',\n    "text": ',
            json.dumps(f"é{i}\u2028", ensure_ascii=False),
            "\n  }",
        ]
        for i in range(items)
    ]
    writer = JsonArrayWriter()
    half = items // 2
    writer.write_flat([p for row in rows[:half] for p in row], half)
    writer.write_flat([p for row in rows[half:] for p in row], items - half)
    writer.close()
    printed = capsys.readouterr().out
    assert json.loads(printed) == [{"n": i, "text": f"é{i}\u2028"} for i in range(items)]
    assert printed == json.dumps(json.loads(printed), indent=2, ensure_ascii=False) + "\n"

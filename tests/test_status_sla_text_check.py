"""``status`` keeps only the escalation level of each stored case's SLA fields, but checks every row's SLA
text: the layout check (``app.status_batch._HELD``) accepts only texts ``sla_from_row`` reads, accepts what
casebridge writes, and a row ``list_cases`` would refuse still sends the listing the ordinary way."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casebridge.app.status_batch import _HELD
from casebridge.connectors.local_schema import sla_from_row, sla_to_json
from casebridge.workflows.cases import ClockFields, SlaFields
from tests.cli_runner import Cli
from tests.test_status_collector_and_writes import _seed, damage, status_both_ways

digits = st.text(alphabet="0123456789", min_size=1, max_size=5)
years = digits | st.sampled_from(["0000", "0001", "2027", "2028", "1900", "2000", "9999", "10000"])
months = digits | st.sampled_from(["00", "01", "02", "04", "06", "09", "11", "12", "13"])
days = digits | st.sampled_from(["00", "01", "28", "29", "30", "31", "32"])
hours = digits | st.sampled_from(["00", "23", "24"])
sixty = digits | st.sampled_from(["00", "59", "60"])
names = st.text(max_size=8) | st.sampled_from(["followup", "legal_deadline", "mla", 'a"b', "a\\b", "\x01", "é"])


@st.composite
def stamps(draw: st.DrawFn) -> str:
    """A stamp in the store's shape with any numbers (impossible dates too), or null."""
    if draw(st.booleans()):
        return "null"
    y, mo, d, h, mi, s = (draw(part) for part in (years, months, days, hours, sixty, sixty))
    frac = draw(st.sampled_from(["000000", "123456", "1", "0000000"]))
    tail = draw(st.sampled_from(["Z", "Z", "+00:00", ""]))
    return f'"{y.zfill(4)}-{mo.zfill(2)}-{d.zfill(2)}T{h.zfill(2)}:{mi.zfill(2)}:{s.zfill(2)}.{frac}{tail}"'


@st.composite
def held_texts(draw: st.DrawFn) -> str:
    clocks = []
    for _ in range(draw(st.integers(0, 3))):
        name, state = draw(names), draw(names)
        clocks.append(f'"{name}": {{"due_at": {draw(stamps())}, "state": "{state}", "warn_at": {draw(stamps())}}}')
    return "{" + draw(st.sampled_from([", ", ",", ",  "])).join(clocks) + "}"


def _reads(text: str) -> bool:
    try:
        sla_from_row(text, 0)
    except Exception:
        return False
    return True


@given(held_texts())
def test_the_layout_check_accepts_only_what_sla_from_row_reads(text: str) -> None:
    if _HELD.fullmatch(text):
        assert _reads(text), text


def test_every_boundary_stamp_passes_the_check_only_if_it_reads() -> None:
    """Each year, month, day, hour and minute at and either side of its bounds (a 29 February in a leap
    year and not, a 31st in a 30-day month, year 0, hour 24, minute 60): accepted only where it reads, and
    an ordinary stamp accepted."""
    accepted = 0
    for y in ["0000", "0001", "1900", "2000", "2027", "2028", "9999"]:
        for mo in ["00", "01", "02", "04", "06", "09", "11", "12", "13"]:
            for d in ["00", "01", "28", "29", "30", "31", "32"]:
                for h, mi in [("00", "00"), ("23", "59"), ("24", "00"), ("12", "60")]:
                    stamp = f'"{y}-{mo}-{d}T{h}:{mi}:{mi}.000000Z"'
                    text = f'{{"c": {{"due_at": {stamp}, "state": "running", "warn_at": null}}}}'
                    if _HELD.fullmatch(text):
                        accepted += 1
                        assert _reads(text), stamp
    assert accepted > 300


moments = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC))


@given(st.dictionaries(st.sampled_from(["followup", "legal_deadline", "mla"]), st.tuples(moments, moments), max_size=3))
def test_what_casebridge_writes_passes_the_check_but_a_29_february(
    clocks: dict[str, tuple[datetime, datetime]],
) -> None:
    fields = SlaFields(clocks={name: ClockFields(due, warn, "running") for name, (due, warn) in clocks.items()})
    text = sla_to_json(fields)
    leap_day = any(m.month == 2 and m.day == 29 for pair in clocks.values() for m in pair)
    assert (_HELD.fullmatch(text) is not None) is not leap_day
    assert _reads(text)


@pytest.mark.parametrize(
    "sla",
    [
        '{"followup": {"due_at": "2027-02-31T10:00:00.000000Z", "state": "running", "warn_at": null}}',
        '{"followup": {"due_at": "2027-02-29T10:00:00.000000Z", "state": "running", "warn_at": null}}',
        '{"followup": {"due_at": 5, "state": "running", "warn_at": null}}',
        '{"followup": {"state": "running", "warn_at": null}}',
    ],
    ids=["31-february", "29-february-2027", "number", "no-due"],
)
def test_a_row_list_cases_refuses_still_goes_the_ordinary_way(
    cli_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, sla: str
) -> None:
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    _seed(cli_dir, cli, 40)
    damage(cli_dir, "UPDATE cases SET sla = ? WHERE id = 7", (sla,))
    from casebridge.app import status_batch

    read: list[object] = []
    real = status_batch.read_listing

    def spy() -> None:
        monkeypatch.setattr(status_batch, "read_listing", lambda texts: read.append(real(texts)) or read[-1])

    ordinary, fast = status_both_ways(cli, monkeypatch, ["status", "--json", "--now", "2027-03-02T00:00:00Z"], then=spy)
    assert fast == ordinary
    assert read == [None]  # the listing was refused: the ordinary way printed (or refused) it


def test_stored_sla_fields_do_not_change_what_status_prints(
    cli_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held fields (as a sync writes them, a 29 February among them) and a level: the same output as the
    ordinary path, which reads them all."""
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    _seed(cli_dir, cli, 40)
    due = datetime(2028, 2, 27, 9, tzinfo=UTC)
    db = sqlite3.connect(cli_dir / "casebridge.db")
    with db:
        for i in range(1, 41):
            fields = SlaFields(clocks={"legal_deadline": ClockFields(due + timedelta(days=i % 3), None, "running")})
            db.execute("UPDATE cases SET sla = ?, escalation_level = ? WHERE id = ?", (sla_to_json(fields), i % 3, i))
    db.close()
    from casebridge.app import status_batch

    monkeypatch.setattr(status_batch, "MIN_BATCH", 10**9)
    ordinary = cli("status", "--json", "--now", "2027-03-02T00:00:00Z")
    monkeypatch.setattr(status_batch, "MIN_BATCH", 32)
    fast = cli("status", "--json", "--now", "2027-03-02T00:00:00Z")
    assert fast == ordinary
    assert ordinary[0] == 0 and '"escalation_level": 2' in ordinary[1]

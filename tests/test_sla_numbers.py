"""The state store's SLA fields as numbers (workflows/sla_numbers.py, workflows/held_numbers.py): read as
columns they equal what the JSON text gives, the comparison through them equals the scalar one, every
store write keeps them in step with the text, and a store of schema 1 gains them from its text."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from casebridge.state.store import StateStore, StoredCase
from casebridge.workflows.cases import ClockFields, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.clock_batch import evaluate_batch, workflow_states
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clock_compare import changed_cases, held_columns
from casebridge.workflows.held_numbers import held_from_numbers
from casebridge.workflows.model import ClockState
from casebridge.workflows.sla import changed_sla, computed_sla, sla_from_json, sla_to_json
from casebridge.workflows.sla_numbers import STATE_ORDER, name_key, sla_numbers
from tests.factories import make_case
from tests.test_clock_batch_equality import KINDS, LAWFUL, NOW, case_specs, lawful_cases, read

CLOCKS = ["legal_deadline", "followup", "preservation", "x"]  # "x": a short name, "zz": one no workflow has
moments = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.replace(microsecond=0)
    ),
)
fields = st.builds(ClockFields, moments, moments, st.sampled_from([str(s) for s in ClockState]))
slas = st.builds(SlaFields, st.dictionaries(st.sampled_from([*CLOCKS, "zz"]), fields, max_size=5), st.integers(0, 99))


def text(sla: SlaFields) -> str:
    return json.dumps(sla_to_json(sla), sort_keys=True)  # as the store writes it


def same_columns(a, b) -> bool:  # type: ignore[no-untyped-def]
    """Equal where the comparison reads them (an instant only where it is not null)."""
    for c in CLOCKS:
        for p in ("present", "due_null", "warn_null", "state"):
            if not np.array_equal(getattr(a, p)[c], getattr(b, p)[c]):
                return False
        for p in ("due", "warn"):
            known = ~getattr(a, f"{p}_null")[c]
            if not np.array_equal(getattr(a, p)[c][known], getattr(b, p)[c][known]):
                return False
    return np.array_equal(a.level, b.level)


@given(st.lists(slas, max_size=12))
def test_numbers_read_as_the_same_columns_as_the_text(held: list[SlaFields]) -> None:
    from_text = held_columns([text(s) for s in held], CLOCKS)
    from_numbers = held_from_numbers([sla_numbers(s) for s in held], CLOCKS)
    assert from_text.readable.all() and from_numbers.readable.all()
    assert same_columns(from_numbers, from_text)


@given(case_specs, st.data(), st.floats(min_value=0, max_value=20 * 86400, allow_nan=False))
def test_the_comparison_through_the_numbers_equals_the_scalar_one(specs, data, held_before) -> None:  # type: ignore[no-untyped-def]
    kinds = data.draw(st.lists(st.integers(0, len(KINDS) - 1), min_size=len(specs), max_size=len(specs)))
    cases, texts = lawful_cases(specs, kinds)
    held = [
        computed_sla(evaluate_case_at(c, read(t), NOW - timedelta(seconds=held_before)))
        for c, t in zip(cases, texts, strict=True)
    ]
    batch = evaluate_batch(cases, HistoryColumns.from_texts(texts, workflow_states(LAWFUL)), LAWFUL, NOW,
                           lambda i: read(texts[i]))  # fmt: skip
    numbers = held_from_numbers([sla_numbers(s) for s in held], list(LAWFUL.clocks))
    got = changed_cases(batch, numbers, [text(s) for s in held]).tolist()
    want = [changed_sla(batch.results(i), s) is not None for i, s in enumerate(held)]
    assert got == want


def evaluate_case_at(case, history, at):  # type: ignore[no-untyped-def]
    from casebridge.workflows.clocks import evaluate_case

    return evaluate_case(case, history, LAWFUL, at)


def test_rows_the_numbers_cannot_hold_are_read_from_their_text() -> None:
    odd = SlaFields({"legal_deadline": ClockFields(None, None, "frozen")})  # not a clock state
    assert sla_numbers(odd) is None
    assert sla_numbers(SlaFields({}, 2**63)) is None  # a level beyond 64 bits
    good = SlaFields({"legal_deadline": ClockFields(NOW, NOW, "running")}, 1)
    blobs = [None, sla_numbers(good), b"\x00" * 24, sla_numbers(good)[:-8], b"junk"]  # type: ignore[index]
    columns = held_from_numbers(blobs, ["legal_deadline"])
    assert columns.readable.tolist() == [False, True, False, False, False]
    assert columns.due["legal_deadline"][1] == (NOW - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert columns.level.tolist() == [0, 1, 0, 0, 0]


def test_a_state_code_outside_the_clock_states_makes_the_row_unreadable() -> None:
    good = sla_numbers(SlaFields({"legal_deadline": ClockFields(NOW, None, "running")}))
    assert good is not None

    def with_state(code: int) -> bytes:
        return good[:-8] + code.to_bytes(8, "little", signed=True)

    blobs = [good, with_state(len(STATE_ORDER) - 1), with_state(len(STATE_ORDER)), with_state(-1)]
    assert held_from_numbers(blobs, ["legal_deadline"]).readable.tolist() == [True, True, False, False]


def test_a_clock_the_workflow_does_not_name_is_ignored_and_a_clock_twice_is_unreadable() -> None:
    f = ClockFields(NOW, None, "running")
    other = sla_numbers(SlaFields({"legal_deadline": f, "zz": f}))
    twice = other[:24] + other[24:56] + other[24:56]  # type: ignore[index]  # legal_deadline in both records
    columns = held_from_numbers([other, twice], ["legal_deadline"])
    assert columns.readable.tolist() == [True, False]
    assert columns.present["legal_deadline"].tolist() == [True, False]  # as the text reader counts it


def test_clock_names_with_one_key_send_every_row_to_the_text(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("casebridge.workflows.held_numbers.name_key", lambda name: 7)
    blob = sla_numbers(SlaFields({"a": ClockFields(None, None, "running")}))
    assert not held_from_numbers([blob], ["a", "b"]).readable.any()
    assert name_key("a") != name_key("b")


def tracked(key: str, sla: SlaFields, history: list[StatusChange] | None) -> TrackedCase:
    return TrackedCase(key, make_case(f"REF-{key}"), "submitted", NOW, sla, history)


def stored_numbers(store: StateStore) -> dict[str, tuple[bytes | None, str]]:
    out = {}
    for t in store.stream_stored():
        assert isinstance(t, StoredCase)
        out[t.key] = (t.sla_numbers, t.sla_text)
    return out


def test_every_store_write_keeps_the_numbers_in_step_with_the_text(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    history = [StatusChange(NOW - timedelta(days=3), "submitted")]
    first = SlaFields({"legal_deadline": ClockFields(NOW, NOW - timedelta(hours=1), "running")}, 0)
    store.save([tracked("1", first, history)])
    store.seed([tracked("2", first, history)])
    later = SlaFields({"legal_deadline": ClockFields(NOW, None, "breached")}, 2)
    store.record_write("1", later, NOW + timedelta(minutes=1))
    rows = stored_numbers(store)
    store.close()
    assert set(rows) == {"1", "2"}
    for numbers, sla_text in rows.values():
        assert numbers == sla_numbers(sla_from_json(json.loads(sla_text)))
    assert rows["1"][0] == sla_numbers(later)


def test_a_schema_1_store_gains_the_numbers_from_its_text_and_keeps_its_cases(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    held = SlaFields({"followup": ClockFields(NOW, NOW - timedelta(days=1), "at_risk")}, 1)
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE cases (key TEXT PRIMARY KEY, reference TEXT NOT NULL, updated_at TEXT NOT NULL,"
        " state TEXT NOT NULL, data TEXT NOT NULL, sla TEXT NOT NULL, history TEXT);"
        "INSERT INTO meta VALUES ('schema_version', '1'), ('watermark', '2026-11-30T00:00:00.000000Z');"
    )
    data = make_case("OLD-1").model_dump_json()
    rows = [("k1", "OLD-1", "2026-11-30T00:00:00.000000Z", "submitted", data, text(held), "[]"),
            ("k2", "OLD-2", "", "submitted", data, "not json", None)]  # fmt: skip
    db.executemany("INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    store = StateStore(path)
    assert store.count() == 2 and store.watermark() is not None  # added to, not rebuilt
    numbers = dict(store._db.execute("SELECT key, sla_numbers FROM cases").fetchall())
    version = store._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    store.close()
    assert numbers == {"k1": sla_numbers(held), "k2": None}  # text that does not read: NULL, the text way
    assert int(version) == 2

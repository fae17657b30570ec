"""The batch clock path (workflows.clock_batch, clock_columns, clock_compare) equals the scalar engine.

Every figure of every ClockResult must be the scalar engine's exactly (==, not approx): random histories
and policies through ``evaluate_clocks``; random lawful-access cases from stored-row text through
``evaluate_batch``; the golden table through the batch; the comparison step against ``changed_sla``; rows
the columns must not read (escapes, unknown states, unsorted, not ASCII, malformed) go the scalar way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casebridge.workflows import load_workflow
from casebridge.workflows.cases import StatusChange
from casebridge.workflows.clock_batch import evaluate_batch, evaluate_clocks, workflow_states
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clock_compare import changed_cases, held_columns
from casebridge.workflows.clocks import evaluate_case, evaluate_clock
from casebridge.workflows.model import ClockKind, ClockTarget
from casebridge.workflows.sla import changed_sla, computed_sla, iso, sla_from_json, sla_to_json
from tests.factories import LAWFUL_KINDS, make_case
from tests.test_clocks_golden import JAN1, ROWS
from tests.test_clocks_properties import BASE, CALENDARS, STATES, D, H, clock

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LAWFUL = load_workflow("lawful-access")
KINDS = LAWFUL_KINDS
LAWFUL_STATES = sorted(set(LAWFUL.states))

seconds = st.floats(min_value=0, max_value=6 * D, allow_nan=False)
whole = st.integers(min_value=0, max_value=6 * 86400)
steps = st.lists(st.tuples(st.one_of(seconds, whole), st.sampled_from(STATES)), min_size=0, max_size=9)


def history(origin: datetime, steps: list[tuple[float, str]]) -> list[StatusChange]:
    out, t = [], origin
    for gap, state in steps:
        t += timedelta(seconds=gap)
        out.append(StatusChange(t, state))
    return out


def stored(changes: list[StatusChange]) -> str:
    """The state store's history column (state.store._row)."""
    return json.dumps([[iso(c.at), c.state] for c in changes])


def read(text: str) -> list[StatusChange]:
    return [StatusChange(datetime.fromisoformat(at), state) for at, state in json.loads(text)]


case_specs = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=400 * D, allow_nan=False),  # history origin before NOW
        steps,
        st.one_of(st.none(), st.floats(min_value=-2 * D, max_value=300 * D, allow_nan=False)),  # submitted_at
        st.sampled_from([0, 0, 1, 2]),  # extensions used
    ),
    min_size=1,
    max_size=12,
)


@given(
    st.sampled_from(CALENDARS),
    st.sampled_from([ClockKind.OPERATIONAL, ClockKind.LEGAL]),
    st.booleans(),
    st.floats(min_value=0, max_value=30 * D, allow_nan=False),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.sampled_from([(0.0, 0), (5 * D, 1), (3 * 8 * H, 2)]),
    case_specs,
    st.floats(min_value=-5 * D, max_value=300 * D, allow_nan=False),
)
def test_random_histories_and_policies_equal_the_scalar_engine(
    cal, kind, pause, target_s, warn_share, extension, specs, after
) -> None:
    target = ClockTarget("c", target_s, target_s * warn_share, extension=extension[0], max_extensions=extension[1])
    definition = clock(kind, cal.name, pause)
    now = BASE + timedelta(days=200) + timedelta(seconds=after)
    cases, histories = [], []
    for origin, path, submitted, used in specs:
        start = BASE + timedelta(seconds=origin)
        at = None if submitted is None else start + timedelta(seconds=submitted)
        cases.append(make_case(submitted_at=at, extensions_used=used))
        histories.append(history(start, path))
    got = evaluate_clocks(definition, target, cal, cases, histories, now)
    want = [evaluate_clock(definition, target, cal, c, h, now) for c, h in zip(cases, histories, strict=True)]
    assert got == want


def lawful_cases(specs: list[tuple[float, list[tuple[float, str]], float | None, int]], kinds: list[int]):
    cases, texts = [], []
    for i, ((origin, path, submitted, used), kind) in enumerate(zip(specs, kinds, strict=True)):
        start = NOW - timedelta(seconds=origin)
        at = None if submitted is None else start + timedelta(seconds=submitted)
        request_type, basis = KINDS[kind]
        case = make_case(
            f"B-{i:04d}", request_type=request_type, legal_basis=basis, submitted_at=at, extensions_used=used
        )
        # the property strategy's states, spread over the workflow's (deterministically)
        lawful_path = [
            (gap, LAWFUL_STATES[(STATES.index(s) * 5 + k) % len(LAWFUL_STATES)]) for k, (gap, s) in enumerate(path)
        ]
        cases.append(case)
        texts.append(stored(history(start, lawful_path)))
    return cases, texts


@given(case_specs, st.data(), st.floats(min_value=0, max_value=20 * D, allow_nan=False))
def test_stored_rows_through_the_batch_equal_the_scalar_engine_and_comparison(specs, data, held_before) -> None:
    kinds = data.draw(st.lists(st.integers(0, len(KINDS) - 1), min_size=len(specs), max_size=len(specs)))
    cases, texts = lawful_cases(specs, kinds)
    held_at = NOW - timedelta(seconds=held_before)
    held = [
        json.dumps(sla_to_json(computed_sla(evaluate_case(c, read(t), LAWFUL, held_at))), sort_keys=True)
        for c, t in zip(cases, texts, strict=True)
    ]
    batch = evaluate_batch(cases, HistoryColumns.from_texts(texts, workflow_states(LAWFUL)), LAWFUL, NOW,
                           lambda i: read(texts[i]))  # fmt: skip
    expected = [evaluate_case(c, read(t), LAWFUL, NOW) for c, t in zip(cases, texts, strict=True)]
    assert [batch.results(i) for i in range(len(cases))] == expected
    changed = changed_cases(batch, held_columns(held, batch.order), held)
    want = [changed_sla(r, sla_from_json(json.loads(h))) is not None for r, h in zip(expected, held, strict=True)]
    assert changed.tolist() == want


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_golden_table_through_the_batch(row) -> None:
    case = make_case(**{"submitted_at": JAN1, **row.case})
    scalar = evaluate_clock(row.clock, row.target, row.calendar, case, row.history, row.now)
    # the row twice, beside a case that never starts: the columns must not mix rows up
    other = make_case(reference="OTHER", submitted_at=None)
    got = evaluate_clocks(row.clock, row.target, row.calendar, [case, other, case], [row.history, [], row.history],
                          row.now)  # fmt: skip
    assert got[0] == scalar == got[2]
    for name, expected in row.expect.items():
        actual = getattr(got[0], name)
        assert actual == (pytest.approx(expected, abs=1e-6) if isinstance(expected, float) else expected), name


GOOD = [["2026-11-02T09:00:00.000000Z", "legal_review"], ["2026-11-03T10:30:00.250000Z", "approved"]]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps([["2026-11-03T10:30:00.000000Z", "legal_review"], ["2026-11-02T09:00:00.000000Z", "draft"]]),
        json.dumps([["2026-11-02T09:00:00.000000Z", 'legal_review"], ["2026-11-01T00:00:00.000000Z", "x']]),
        json.dumps([["2026-11-02T09:00:00.000000Z", "légal_review"]]),
        json.dumps([["2026-11-02T09:00:00.000000Z", "no_such_state"]]),
        json.dumps([["2026-11-02T09:00:00+00:00", "legal_review"]]),
        json.dumps([["2026-02-30T09:00:00.000000Z", "legal_review"]]),
        json.dumps([["2026-11-02T09:00:00.000000Z", "legal_review["]]),
        json.dumps(GOOD, indent=1),
        json.dumps(GOOD) + " ",
        "[]",
        json.dumps(GOOD),
    ],
)
def test_rows_the_columns_must_not_read_go_the_scalar_way(text: str) -> None:
    case = make_case()
    hist = HistoryColumns.from_texts([json.dumps(GOOD), text, json.dumps(GOOD)], workflow_states(LAWFUL))
    assert hist.readable[0] and hist.readable[2]
    if hist.readable[1]:
        assert text in ("[]", json.dumps(GOOD))

    def history_of(i: int) -> list[StatusChange]:
        try:
            return read([json.dumps(GOOD), text, json.dumps(GOOD)][i])
        except ValueError:
            return []

    batch = evaluate_batch([case] * 3, hist, LAWFUL, NOW, history_of)
    assert [batch.results(i) for i in range(3)] == [evaluate_case(case, history_of(i), LAWFUL, NOW) for i in range(3)]


def test_held_fields_written_another_way_are_compared_the_scalar_way() -> None:
    case = make_case()
    texts = [json.dumps(GOOD)] * 3
    results = evaluate_case(case, read(texts[0]), LAWFUL, NOW)
    exact = json.dumps(sla_to_json(computed_sla(results)), sort_keys=True)
    held = [exact, json.dumps(sla_to_json(computed_sla(results)), sort_keys=True, indent=2), "{}"]
    batch = evaluate_batch([case] * 3, HistoryColumns.from_texts(texts, workflow_states(LAWFUL)), LAWFUL, NOW,
                           lambda i: read(texts[i]))  # fmt: skip
    columns = held_columns(held, batch.order)
    assert columns.readable.tolist() == [True, False, False]
    assert changed_cases(batch, columns, held).tolist() == [False, False, True]


@pytest.mark.parametrize("level_held", [0, 1, 2, 3])
def test_the_escalation_level_is_compared(level_held: int) -> None:
    # voluntary subscriber request submitted 100 days ago, never answered: followup breached 70 days ago
    submitted = NOW - timedelta(days=100)
    case = make_case(submitted_at=submitted)
    texts = [stored([StatusChange(submitted, "submitted")])]
    results = evaluate_case(case, read(texts[0]), LAWFUL, NOW)
    raw = sla_to_json(computed_sla(results))
    assert raw["escalation_level"] == 2
    held = [json.dumps({**raw, "escalation_level": level_held}, sort_keys=True)]
    batch = evaluate_batch([case], HistoryColumns.from_texts(texts, workflow_states(LAWFUL)), LAWFUL, NOW,
                           lambda i: read(texts[i]))  # fmt: skip
    assert changed_cases(batch, held_columns(held, batch.order), held).tolist() == [level_held != 2]

"""The byte-level reading of stored rows (workflows.clock_text) and the per-case inputs of the batch
(workflows.clock_inputs) give exactly what the ordinary readers give: timestamps as ``datetime`` reads
them, malformed ones refused; known strings told apart whatever their first bytes; escalation levels of
one and two digits; law-counted clocks counted on each provider's establishment when a directory is
attached, on the policy's country when it names one.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from casebridge.workflows import load_workflow
from casebridge.workflows.cases import StatusChange
from casebridge.workflows.clock_batch import evaluate_batch, workflow_states
from casebridge.workflows.clock_columns import HistoryColumns
from casebridge.workflows.clock_compare import held_columns
from casebridge.workflows.clock_text import Blob, iso_micros, which
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.counting import attach_establishments
from casebridge.workflows.directory import load_directory
from casebridge.workflows.sla import iso
from tests.factories import LAWFUL_KINDS, make_case

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


def test_timestamps_read_as_datetime_reads_them() -> None:
    rng = random.Random(16)
    moments = [datetime(1, 1, 1, tzinfo=UTC) + rng.randrange(315_537_897_600_000_000) * US for _ in range(5000)]
    moments += [datetime(y, m, d, 23, 59, 59, 999_999, tzinfo=UTC) for y, m, d in
                [(2000, 2, 29), (1900, 2, 28), (2024, 12, 31), (9999, 12, 31), (1, 1, 1), (1969, 12, 31)]]  # fmt: skip
    blob = Blob.of([f'"{iso(m)}", "x"' for m in moments])
    micros, ok = iso_micros(blob, blob.start + 1, b'", "')
    assert ok.all()
    assert micros.tolist() == [(m - EPOCH) // US for m in moments]


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-29T00:00:00.000000Z",  # not a leap year
        "1900-02-29T00:00:00.000000Z",
        "2026-13-01T00:00:00.000000Z",
        "2026-00-01T00:00:00.000000Z",
        "2026-01-00T00:00:00.000000Z",
        "2026-04-31T00:00:00.000000Z",
        "2026-01-01T24:00:00.000000Z",
        "2026-01-01T00:60:00.000000Z",
        "2026-01-01T00:00:60.000000Z",
        "0000-01-01T00:00:00.000000Z",
        "2026-01-01T00:00:00.00000aZ",
        "2026-01-01 00:00:00.000000Z",
        "2026-01-01T00:00:00.000000+",
        "2026-01-01T00:00:00.000000Z'",  # not followed by the expected bytes
        "2026-01-0",  # cut short at the end of the texts
    ],
)
def test_malformed_timestamps_are_refused(text: str) -> None:
    blob = Blob.of(['"2026-01-01T00:00:00.000000Z"', f'"{text}"'])
    _micros, ok = iso_micros(blob, blob.start + 1, b'"')
    assert ok.tolist() == [True, False]


def test_strings_are_told_apart_whatever_their_first_bytes() -> None:
    long = b"x" * 40
    literals = [b'ab"]', b'abc"]', b'abd"]', b'a"]', long + b'"]']
    texts = ['ab"]', 'abc"]', 'abd"]', 'a"]', long.decode() + '"]', 'abe"]', 'b"]', "", 'ab"', long.decode()]
    blob = Blob.of(texts)
    assert which(blob, blob.start, literals).tolist() == [0, 1, 2, 3, 4, -1, -1, -1, -1, -1]
    # heads that tell them apart: one gather
    distinct = [b'draft"]', b'legal_review"]', b'approved"]']
    blob = Blob.of(['legal_review"]', 'draft"]', 'approved"', 'draft"]x'])
    assert which(blob, blob.start, distinct).tolist() == [1, 0, -1, 0]


@pytest.mark.parametrize(("level", "readable"), [(0, True), (7, True), (10, True), (99, True), (100, False)])
def test_escalation_levels_of_one_and_two_digits(level: int, readable: bool) -> None:
    texts = [json.dumps({"clocks": {}, "escalation_level": level}, sort_keys=True)]
    held = held_columns(texts, ["legal_review"])
    assert held.readable.tolist() == [readable]
    if readable:
        assert held.level.tolist() == [level]


OTHER_LEVELS = [
    '{"escalation_level": 1}',
    '{"clocks": {}, "escalation_level": 1 }',
    '{"clocks": {}, "escalation_level": -1}',
    '{"clocks": {},"escalation_level": 1}',
]


@pytest.mark.parametrize("text", OTHER_LEVELS)
def test_other_level_layouts_go_the_scalar_way(text: str) -> None:
    assert held_columns([text], ["legal_review"]).readable.tolist() == [False]


@pytest.mark.parametrize("providers", [["Meta", "Google", "Unknown Provider Ltd"], ["Meta"]])
def test_law_counted_clocks_on_each_providers_establishment(providers: list[str]) -> None:
    workflow = attach_establishments(load_workflow("lawful-access"), load_directory())
    now = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    rng = random.Random(7)
    cases, texts = [], []
    for i in range(60):
        request_type, basis = LAWFUL_KINDS[i % len(LAWFUL_KINDS)]
        submitted = now - timedelta(minutes=rng.randrange(1, 40 * 24 * 60))
        cases.append(make_case(request_type=request_type, legal_basis=basis, submitted_at=submitted,
                               provider=providers[i % len(providers)], extensions_used=rng.choice((0, 1))))  # fmt: skip
        texts.append(json.dumps([[iso(submitted), "submitted"]]))

    def history_of(i: int) -> list[StatusChange]:
        return [StatusChange(datetime.fromisoformat(at), state) for at, state in json.loads(texts[i])]

    hist = HistoryColumns.from_texts(texts, workflow_states(workflow))
    batch = evaluate_batch(cases, hist, workflow, now, history_of)
    assert not batch.scalar
    for i, case in enumerate(cases):
        assert batch.results(i) == evaluate_case(case, history_of(i), workflow, now)
    assert np.unique([r.due_at for i in range(len(cases)) for r in batch.results(i) if r.due_at]).size > 1


@pytest.mark.parametrize(
    ("texts", "readable"),
    [([], []), ([""], [False]), (["[]"], [True]), ([None], [False]), (["\n"], [False]),
     ([json.dumps([["2026-01-01T00:00:00.000000Z", "draft"]]) + "\n"], [False])],
)  # fmt: skip
def test_no_rows_and_empty_rows(texts: list[str | None], readable: list[bool]) -> None:
    workflow = load_workflow("lawful-access")
    assert HistoryColumns.from_texts(texts, workflow_states(workflow)).readable.tolist() == readable
    held = [t for t in texts if t is not None]
    assert not held_columns(held, list(workflow.clocks)).readable.any()


ENTRY = '["2026-11-02T09:00:00.000000Z", "legal_review"]'


@pytest.mark.parametrize(
    "text",
    [f"[{ENTRY}ab{ENTRY}]", f"[{ENTRY},{ENTRY}] ", f"[{ENTRY}x", f"[{ENTRY}, {ENTRY}x", "[ ]", "[x"],
)
def test_rows_with_other_bytes_between_or_after_entries_are_not_read(text: str) -> None:
    hist = HistoryColumns.from_texts([f"[{ENTRY}, {ENTRY}]", text], workflow_states(load_workflow("lawful-access")))
    assert hist.readable.tolist() == [True, False]

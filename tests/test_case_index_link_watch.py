"""The sync pass notes the cases to link as it streams them (``LinkWatch``: keys and identifiers, never the
cases) and gets the very pairs ``link_pairs`` computes from the whole list: shared and scoped identifiers,
closed cases left out, a case noted twice (its last state counts), duplicate references, skipped keys."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from casebridge.workflows import load_workflow
from casebridge.workflows.case_index import LinkWatch, link_pairs
from casebridge.workflows.cases import TrackedCase
from casebridge.workflows.directory import load_directory
from tests.factories import make_case

WORKFLOW = load_workflow("lawful-access")
DIRECTORY = load_directory()
NOW = datetime(2027, 5, 1, 9, 0, tzinfo=UTC)
IDENTS = [
    {"type": "email", "value": "threat@example.com"},
    {"type": "email", "value": "Threat@Example.com "},
    {"type": "username", "value": "@same.name"},
    {"type": "phone", "value": "+92 300 1234567"},
    {"type": "ip", "value": "10.0.0.1"},
]
PROVIDERS = ["Instagram", "Facebook", "Twitter", "Meta"]
STATES = ["submitted", "closed", "acknowledged"]


def _case(seed: int) -> TrackedCase:
    pick = random.Random(seed)
    case = make_case(
        f"R-{pick.randrange(12)}",  # references repeat: a tracker may hold two cases of one reference
        provider=pick.choice(PROVIDERS),
        identifiers=pick.sample(IDENTS, pick.randrange(1, 3)),
    )
    return TrackedCase(key=str(pick.randrange(20)), case=case, state=pick.choice(STATES), updated_at=NOW)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**6), max_size=30), st.sets(st.integers(0, 19), max_size=4))
def test_streamed_pairs_are_link_pairs_of_the_last_case_per_key(seeds: list[int], skipped: set[int]) -> None:
    cases = [_case(seed) for seed in seeds]
    skip = {str(k) for k in skipped}
    watch = LinkWatch(DIRECTORY, WORKFLOW)
    for tracked in cases:
        watch.note(tracked)
    last = {t.key: t for t in cases}  # what the pass linked before: the last case noted per key
    expected = link_pairs([t for k, t in last.items() if k not in skip], DIRECTORY, WORKFLOW)
    assert watch.pairs(skip) == expected


def test_a_closed_case_is_not_linked_and_an_open_one_is() -> None:
    same = [{"type": "email", "value": "threat@example.com"}]
    a, b = make_case("R-1", identifiers=same), make_case("R-2", identifiers=same)
    watch = LinkWatch(DIRECTORY, WORKFLOW)
    watch.note(TrackedCase(key="1", case=a, state="submitted", updated_at=NOW))
    watch.note(TrackedCase(key="2", case=b, state="closed", updated_at=NOW))
    assert watch.pairs() == []
    watch.note(TrackedCase(key="2", case=b, state="submitted", updated_at=NOW))  # reopened: noted again
    assert [(p.reference_a, p.reference_b) for p in watch.pairs()] == [("R-1", "R-2")]
    assert watch.pairs({"1"}) == []

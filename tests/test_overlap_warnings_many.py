"""Overlap warnings keep their text when one identifier is named by many cases (issue 16: the watch keeps
the few smallest references per identifier instead of copying and sorting all of them for every row)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from casebridge.workflows import load_workflow
from casebridge.workflows.case_index import WARN_NAMES, build_index, case_keys, is_open, overlap_warnings
from casebridge.workflows.cases import Case, TrackedCase
from casebridge.workflows.directory import Directory, load_directory
from casebridge.workflows.model import Workflow
from tests.factories import make_case

WORKFLOW = load_workflow("lawful-access")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TERMINAL = next(s.name for s in WORKFLOW.states.values() if s.terminal)


def reference_warnings(
    new: list[tuple[str, Case]], tracked: list[TrackedCase], directory: Directory, workflow: Workflow
) -> list[str]:
    """The warnings as the watch wrote them before: every reference copied and sorted for every row."""
    index = build_index((t for t in tracked if is_open(workflow, t.state)), directory)
    out = []
    for where, case in new:
        keys = case_keys(case, directory)
        shared = [(key, refs) for key in keys if (refs := index.named(key, but=case.reference))]
        for key, found in sorted(shared, key=lambda pair: pair[0]):
            others = sorted(found)
            named = ", ".join(others[:WARN_NAMES])
            if len(others) > WARN_NAMES:
                named += f" and {len(others) - WARN_NAMES} more (`casebridge find` lists them)"
            out.append(f"{where}: {case.reference} names {key}, already named by open case {named}")
        index.add(case.reference, keys)
    return out


def _case(rng: random.Random, reference: str) -> Case:
    pool = [("ip", "10.9.9.9"), ("ip", "10.9.9.10"), ("email", "a@x.example"), ("phone", "+923001234567")]
    pool += [("username", "@vpnuser"), ("email", f"{reference.lower()}@own.example")]
    ids = [{"type": t, "value": v} for t, v in rng.sample(pool, rng.randint(1, 3))]
    return make_case(reference, provider=rng.choice(["Google", "Meta"]), identifiers=ids)


def test_the_warnings_are_those_of_sorting_every_reference() -> None:
    rng = random.Random(16)
    directory = load_directory()
    tracked = [
        TrackedCase(key=str(i), case=_case(rng, f"T-{rng.randint(0, 99):03d}"), state=state, updated_at=NOW)
        for i, state in enumerate(rng.choice(["submitted", TERMINAL]) for _ in range(40))
    ]
    # new rows in no order: some re-import a tracked reference, some repeat a reference of the same file
    refs = [f"N-{rng.randint(0, 300):03d}" for _ in range(250)] + [t.case.reference for t in tracked[:10]]
    rng.shuffle(refs)
    new = [(f"f.csv:{n + 2}", _case(rng, ref)) for n, ref in enumerate(refs)]
    expected = reference_warnings(new, tracked, directory, WORKFLOW)
    assert any(" more (" in w for w in expected) and any(" more (" not in w for w in expected)
    assert overlap_warnings(new, tracked, directory, WORKFLOW) == expected


def test_a_reference_smaller_than_those_named_is_left_out_of_its_own_warning() -> None:
    shared = [{"type": "ip", "value": "192.0.2.7"}]
    tracked = [
        TrackedCase(key=str(i), case=make_case(f"R-{i:02d}", identifiers=shared), state="submitted", updated_at=NOW)
        for i in range(1, 9)
    ]
    new = [("new.json:item 0", make_case("R-00", identifiers=shared))]
    (warning,) = overlap_warnings(new, tracked, load_directory(), WORKFLOW)
    assert warning.endswith(
        "already named by open case R-01, R-02, R-03, R-04, R-05 and 3 more (`casebridge find` lists them)"
    )

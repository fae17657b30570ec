"""The engine's fast paths (issue 16) give exactly what the engine gave before them.

``bench/_clocks_baseline.py`` is the engine as it was before the fast paths (one-span cycles, results
built through ``workflows.fastbuild``, ``BusinessTimeline.stretch``), frozen for the benchmark; here the
two are run on the same random histories, calendars, targets and start fields and must agree on every
field of every result, bit for bit.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from casebridge.workflows.calendars import timeline_for
from casebridge.workflows.clocks import ClockResult, evaluate_clock
from casebridge.workflows.model import ClockKind, ClockTarget
from tests.factories import make_case
from tests.test_clocks_properties import BASE, CALENDARS, PK, D, H, build_history, clock, histories

_spec = importlib.util.spec_from_file_location(
    "clocks_baseline", Path(__file__).resolve().parents[1] / "bench" / "_clocks_baseline.py"
)
assert _spec is not None and _spec.loader is not None
baseline = importlib.util.module_from_spec(_spec)
sys.modules["clocks_baseline"] = baseline  # dataclasses look their module up while the class is built
_spec.loader.exec_module(baseline)

NAMES = [f.name for f in fields(ClockResult)]
targets = st.builds(
    ClockTarget,
    st.just("c"),
    st.sampled_from([0.0, 8 * H, 2 * D, 10 * D]),
    st.sampled_from([0.0, 4 * H, 1 * D, 7 * D]),
)


@settings(max_examples=300)
@given(
    st.sampled_from(CALENDARS),
    st.sampled_from([ClockKind.LEGAL, ClockKind.OPERATIONAL]),
    targets,
    histories,
    st.floats(min_value=0, max_value=40 * D),
    st.one_of(st.none(), st.floats(min_value=-5 * D, max_value=10 * D)),
)
def test_same_results_as_the_engine_before_the_fast_paths(cal, kind, target, steps, after, submitted_offset) -> None:
    history = build_history(steps)
    case = make_case(submitted_at=None if submitted_offset is None else BASE + timedelta(seconds=submitted_offset))
    now = history[-1].at + timedelta(seconds=after)
    definition = clock(kind, cal.name)
    new = evaluate_clock(definition, target, cal, case, history, now)
    old = baseline.evaluate_clock(definition, target, cal, case, history, now)
    assert [getattr(new, n) for n in NAMES] == [getattr(old, n) for n in NAMES]


@given(
    st.floats(min_value=0, max_value=2 * 365 * D),
    st.floats(min_value=0, max_value=60 * D),
    st.floats(min_value=-1 * D, max_value=30 * D),
    st.floats(min_value=-1 * D, max_value=30 * D),
)
def test_stretch_is_between_and_add(start: float, length: float, target: float, warn: float) -> None:
    timeline = timeline_for(PK)
    a = BASE.timestamp() + start
    b = a + length
    elapsed, due, warn_at = timeline.stretch(a, b, target, warn)
    assert elapsed == timeline.between(a, b)
    assert due == (a if target <= 0 else timeline.add(a, target))
    assert warn_at == (a if warn <= 0 else timeline.add(a, warn))

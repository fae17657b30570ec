"""workflows.fastbuild: a faster constructor that builds the very same frozen dataclass instances."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from casebridge.workflows.calendars import DEFAULT_24X7
from casebridge.workflows.cases import StatusChange
from casebridge.workflows.clocks import ClockResult, evaluate_clock
from casebridge.workflows.fastbuild import frozen_builder
from casebridge.workflows.model import ClockDef, ClockKind, ClockTarget
from tests.factories import make_case


@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: str


def test_builds_the_same_frozen_instance() -> None:
    build = frozen_builder(Point)
    point = build(1, "a")
    assert type(point) is Point
    assert point == Point(1, "a") and hash(point) == hash(Point(1, "a")) and repr(point) == "Point(x=1, y='a')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    assert dataclasses.replace(point, y="b") == Point(1, "b")
    assert dataclasses.astuple(point) == (1, "a")


def test_refuses_a_class_without_slots() -> None:
    with pytest.raises(TypeError, match="StatusChange has no __slots__"):
        frozen_builder(StatusChange)


def test_engine_results_are_frozen_clock_results() -> None:
    clock = ClockDef("c", ClockKind.LEGAL, start_on=frozenset({"submitted"}), stop_on=frozenset({"closed"}))
    case = make_case()
    history = [StatusChange(case.submitted_at, "submitted")]
    result = evaluate_clock(clock, ClockTarget("c", 3600.0, 1800.0), DEFAULT_24X7, case, history, case.submitted_at)
    assert type(result) is ClockResult
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.state = "met"  # type: ignore[misc]
    assert dataclasses.replace(result, name="d").name == "d"

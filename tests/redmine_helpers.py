"""Test-local helpers for the Redmine tests.

``load_test_workflow`` uses the lead's ``workflows.load_workflow`` when it exists; until it lands in
main it reads the bundled TOML minimally (states, transitions, clocks: all the connector needs).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from workflows.model import ClockDef, ClockKind, State, Transition, Workflow

BUNDLED = Path(__file__).resolve().parent.parent / "workflows" / "lawful-access.toml"


def load_test_workflow() -> Workflow:
    try:
        from workflows import load_workflow  # type: ignore[attr-defined]
    except ImportError:
        return _minimal_load(BUNDLED)
    return load_workflow("lawful-access")


def _minimal_load(path: Path) -> Workflow:
    data = tomllib.loads(path.read_text())
    states = {
        name: State(
            name=name,
            label=s["label"],
            terminal=s.get("terminal", False),
            tracker_status=dict(s.get("status", {})),
        )
        for name, s in data["states"].items()
    }
    transitions = tuple(
        Transition(sources=frozenset(t["from"]), target=t["to"], name=t.get("name", ""))
        for t in data["transitions"]
    )
    clocks = {
        name: ClockDef(
            name=name,
            kind=ClockKind(c["kind"]),
            label=c.get("label", ""),
            start_on=frozenset(c.get("start_on", [])),
            stop_on=frozenset(c.get("stop_on", [])),
            met_on=frozenset(c.get("met_on", [])),
            pause_in=frozenset(c.get("pause_in", [])),
            start_field=c.get("start_field"),
        )
        for name, c in data["clocks"].items()
    }
    wf = data["workflow"]
    return Workflow(
        name=wf["name"],
        initial=wf["initial"],
        states=states,
        transitions=transitions,
        calendars={},
        clocks=clocks,
        policies=(),
        escalated_state=wf.get("escalated_state"),
    )

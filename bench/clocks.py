"""Benchmark: the SLA clock engine as a sync pass pays for it, 100,000 cases x 3 clocks, old vs new.

One run, on whatever core it gets (pin it: ``taskset -c 0``), the same stored rows for every engine:
1. rows -> histories: the store's JSON history (``[[iso, state], ...]``) and SLA fields, parsed as the
   state store parses them;
2. evaluation: every clock of every case at ``now``;
3. comparison: the computed SLA fields against the stored ones (what a no-op pass writes: nothing; the
   batch path reads the held fields from the store's numbers column, ``workflows.sla_numbers``, in stage 1,
   and prints the same run with them read from the JSON text too);
for OLD (``bench/_clocks_baseline.py``, the engine and comparison as main had them before issue 16's
engine work, frozen here), NEW (``workflows.clocks`` + ``workflows.sla`` of this tree), BATCH (the
columnar path: ``workflows.clock_columns`` reads the rows' JSON text straight into numpy columns,
``clock_batch.evaluate_batch`` evaluates every clock at once, ``clock_compare.changed_cases`` compares
with the held fields as epoch microseconds; ClockResults are built only when asked) and a fair plain
24x7 baseline (``bench/_clocks_reference.py``: floats, one loop per clock, no business calendars).
GC thresholds are the CLI's. Times are CPU seconds of this process (time.process_time: a shared machine
waits do not count), best of ``--repeat`` runs per figure, engines interleaved.

Correctness, counted in the same run: NEW vs OLD on every field of every clock; BATCH vs NEW on every
field of every clock (all 300,000 results materialised, untimed) and on which cases change; NEW and
BATCH vs the independent
day-by-day implementation on a sample (state, elapsed, due); NEW vs the plain 24x7 baseline on every
24x7 clock; the golden table of tests/test_clocks_golden.py through NEW, OLD and BATCH. Prints figures;
never asserts on time.

    taskset -c 0 .venv/bin/python bench/clocks.py [--cases 100000] [--sample 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _clocks_baseline as old_engine  # noqa: E402
from _clocks_reference import Plain24x7, day_by_day_case  # noqa: E402

from casebridge.state.store import _history  # noqa: E402
from casebridge.workflows import clocks as new_engine  # noqa: E402
from casebridge.workflows import load_workflow  # noqa: E402
from casebridge.workflows import sla as new_sla  # noqa: E402
from casebridge.workflows.calendars import calendar_named  # noqa: E402
from casebridge.workflows.cases import Case, ClockFields, SlaFields, StatusChange  # noqa: E402
from casebridge.workflows.clock_batch import evaluate_batch, evaluate_clocks, workflow_states  # noqa: E402
from casebridge.workflows.clock_columns import HistoryColumns  # noqa: E402
from casebridge.workflows.clock_compare import changed_cases, held_columns  # noqa: E402
from casebridge.workflows.held_numbers import held_from_numbers  # noqa: E402
from casebridge.workflows.model import Workflow  # noqa: E402
from casebridge.workflows.sla_numbers import sla_numbers  # noqa: E402
from tests.factories import LAWFUL_KINDS  # noqa: E402

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HELD_AT = NOW - timedelta(minutes=10)  # the stored SLA fields: written by the pass ten minutes earlier
# (request type, legal basis): in lawful-access each gets exactly 3 clocks: legal_review (agency
# business calendar, Asia/Karachi + holidays.PK), one legal or followup clock, and mla.
KINDS = LAWFUL_KINDS


# --------------------------------------------------------------------------------------------- data
def make_cases(n: int, seed: int) -> list[tuple[Case, list[StatusChange]]]:
    rng = random.Random(seed)
    proto = {"title": "Bench request", "provider": "Example Provider", "timezone": "Asia/Karachi"}
    out = []
    for i in range(n):
        request_type, legal_basis = KINDS[i % len(KINDS)]
        t = NOW - timedelta(minutes=rng.randrange(1, 200 * 24 * 60))
        history = [StatusChange(t, "draft")]

        def step(state: str, max_minutes: int, history: list[StatusChange] = history) -> None:
            nonlocal t
            t += timedelta(minutes=rng.randrange(1, max_minutes))
            if t < NOW:
                history.append(StatusChange(t, state))

        step("legal_review", 3 * 24 * 60)
        step("approved", 4 * 24 * 60)
        step("submitted", 24 * 60)
        submitted_at = history[-1].at if history[-1].state == "submitted" else None
        step("acknowledged", 2 * 24 * 60)
        if rng.random() < 0.4:
            step("awaiting_requester", 5 * 24 * 60)
            step("acknowledged", 10 * 24 * 60)
        ending = rng.random()
        if ending < 0.3:
            step("fulfilled", 30 * 24 * 60)
        elif ending < 0.45:
            step("refused", 20 * 24 * 60)
            step("redirected_mla", 5 * 24 * 60)
        case = Case.model_construct(
            reference=f"BENCH-{i:06d}",
            request_type=request_type,
            legal_basis=legal_basis,
            submitted_at=submitted_at,
            extensions_used=rng.choice((0, 0, 1)),
            **proto,
        )
        out.append((case, history))
    return out


# ------------------------------------------------------------------------------------ the old path
def old_computed_sla(results: list[Any]) -> SlaFields:
    """workflows.sla.computed_sla as main had it (whole seconds via astimezone + replace)."""
    return new_sla.SlaFields(
        clocks={
            r.name: new_sla.ClockFields(
                due_at=None if r.due_at is None else r.due_at.astimezone(UTC).replace(microsecond=0),
                warn_at=None if r.warn_at is None else r.warn_at.astimezone(UTC).replace(microsecond=0),
                state=str(r.state),
            )
            for r in results
        },
        escalation_level=new_sla.escalation_level(results),
    )


def old_compare(results: list[Any], held: SlaFields) -> SlaFields | None:
    return new_sla.sla_changes(old_computed_sla(results), held)


# ------------------------------------------------------------------------------------------ stages
Row = tuple[Case, str, str]  # the case, its stored history JSON, its stored SLA JSON


def make_rows(data: list[tuple[Case, list[StatusChange]]], workflow: Workflow) -> list[Row]:
    rows = []
    for case, history in data:
        # held as this tree's engine wrote them (the old engine knows no law-counted periods: fields held
        # from it would make every eu-1182-71 clock "change" and stage 3 would not measure a no-op pass)
        held = new_sla.computed_sla(new_engine.evaluate_case(case, history, workflow, HELD_AT))
        text = json.dumps([[new_sla.iso(c.at), c.state] for c in history])
        rows.append((case, text, json.dumps(new_sla.sla_to_json(held), sort_keys=True)))
    return rows


def old_history(text: str) -> list[StatusChange]:
    """state.store._history as main had it."""
    return [StatusChange(at=new_sla.parse_iso(at), state=st) for at, st in json.loads(text)]


def old_sla_from_json(raw: dict[str, Any]) -> SlaFields:
    """workflows.sla.sla_from_json as main had it."""
    clocks = {
        name: ClockFields(
            due_at=new_sla.parse_iso(v["due_at"]) if v["due_at"] else None,
            warn_at=new_sla.parse_iso(v["warn_at"]) if v["warn_at"] else None,
            state=v["state"],
        )
        for name, v in raw.get("clocks", {}).items()
    }
    return SlaFields(clocks=clocks, escalation_level=int(raw.get("escalation_level", 0)))


def load_rows(rows: list[Row], history: Callable[..., Any], fields: Callable[..., Any]) -> tuple[list, list]:
    """Stage 1, as the state store does it: histories and stored SLA fields from the rows' JSON."""
    return [history(text) for _c, text, _s in rows], [fields(json.loads(s)) for *_r, s in rows]


def evaluate_all(evaluate: Callable[..., list[Any]], cases: list[Case], histories, workflow: Workflow) -> list:
    return [evaluate(case, history, workflow, NOW) for case, history in zip(cases, histories, strict=True)]


def compare_all(compare: Callable[[list[Any], SlaFields], SlaFields | None], results, held) -> list[bool]:
    return [compare(r, h) is not None for r, h in zip(results, held, strict=True)]


# ------------------------------------------------------------------------------------ the batch path
def batch_load(rows: list[Row], numbers: list[bytes | None] | None, workflow: Workflow) -> tuple[Any, Any, list[str]]:
    """Stage 1 of the batch path: the rows' history text as columns, the held SLA fields from the
    store's numbers column (``workflows.sla_numbers``; ``numbers=None``: from their JSON text)."""
    held_texts = [s for *_r, s in rows]
    hist = HistoryColumns.from_texts([text for _c, text, _s in rows], workflow_states(workflow))
    clocks = list(workflow.clocks)
    held = held_columns(held_texts, clocks) if numbers is None else held_from_numbers(numbers, clocks)
    return hist, held, held_texts


def batch_evaluate(cases: list[Case], hist: HistoryColumns, workflow: Workflow, rows: list[Row]) -> Any:
    return evaluate_batch(cases, hist, workflow, NOW, lambda i: _history(rows[i][1]))


def batch_compare(batch: Any, held: Any, held_texts: list[str]) -> list[bool]:
    return changed_cases(batch, held, held_texts).tolist()


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    t0 = time.process_time()
    out = fn(*args)
    return time.process_time() - t0, out


# ------------------------------------------------------------------------------------------- checks
class BatchEngine:
    """The golden table through the batch path: one clock definition over the row's case."""

    @staticmethod
    def evaluate_clock(clock, target, calendar, case, history, now):
        return evaluate_clocks(clock, target, calendar, [case], [history], now)[0]


def golden_mismatches(engine: Any) -> tuple[int, int]:
    """(rows, mismatching rows) of tests/test_clocks_golden.py evaluated with ``engine``."""
    import pytest

    from tests.factories import make_case
    from tests.test_clocks_golden import JAN1, ROWS

    bad = 0
    for row in ROWS:
        if row.target.counting != "elapsed":  # the old engine counts elapsed time only
            continue
        case = make_case(**{"submitted_at": JAN1, **row.case})
        result = engine.evaluate_clock(row.clock, row.target, row.calendar, case, row.history, row.now)
        for name, expected in row.expect.items():
            actual = getattr(result, name)
            if actual != (pytest.approx(expected, abs=1e-6) if isinstance(expected, float) else expected):
                bad += 1
                break
    return len(ROWS), bad


def day_by_day_mismatches(data, new_results, workflow: Workflow, sample: int) -> tuple[int, float]:
    bad = 0
    t0 = time.process_time()
    for (case, history), results in zip(data[:sample], new_results, strict=False):
        for r, (state, elapsed, due) in zip(results, day_by_day_case(case, history, workflow, NOW), strict=True):
            if not _elapsed(r):
                continue
            if r.state != state or abs(r.elapsed_seconds - elapsed) > 1e-6 or r.due_at != due:
                bad += 1
    return bad, time.process_time() - t0


def plain_mismatches(plain_results, new_results, workflow: Workflow) -> tuple[int, int]:
    checked = bad = 0
    for plain, results in zip(plain_results, new_results, strict=True):
        for p, r in zip(plain, results, strict=True):
            if calendar_named(workflow, workflow.clocks[r.name].calendar).kind == "business" or not _elapsed(r):
                continue
            checked += 1
            due = None if r.due_at is None else r.due_at.timestamp()
            warn = None if r.warn_at is None else r.warn_at.timestamp()
            if (str(r.state), r.elapsed_seconds, due, warn) != p:
                bad += 1
    return checked, bad


# --------------------------------------------------------------------------------------------- main
NAMES = [f.name for f in fields(new_engine.ClockResult)]


def _elapsed(result: Any) -> bool:
    """Counted as elapsed time: the old engine and both references know no other rule; clocks counted
    under Reg. 1182/71 (issue 20) are measured by bench/counting.py."""
    return result.target.counting == "elapsed"


def _flat(results: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(getattr(r, name) for name in NAMES) for r in results if _elapsed(r)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2000, help="cases for the (slow) day-by-day check")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    workflow = load_workflow("lawful-access")
    data = make_cases(args.cases, args.seed)
    rows = make_rows(data, workflow)
    numbers = [sla_numbers(new_sla.sla_from_json(json.loads(s))) for *_r, s in rows]  # as the store holds them
    cases = [case for case, _h in data]
    gc.collect()
    gc.freeze()  # the generated data is long-lived, as a loaded store's cases are
    gc.set_threshold(100_000, 50, 100)  # as the CLI runs
    plain = Plain24x7(workflow)
    now_e = NOW.timestamp()

    best: dict[str, float] = {}

    def keep(label: str, seconds: float) -> None:
        best[label] = min(best.get(label, float("inf")), seconds)

    for _ in range(args.repeat):
        for label, engine, compare, loaders in (
            ("old", old_engine, old_compare, (old_history, old_sla_from_json)),
            ("new", new_engine, new_sla.changed_sla, (_history, new_sla.sla_from_json)),
        ):
            s, (histories, held) = timed(load_rows, rows, *loaders)
            keep(f"{label} load", s)
            s, results = timed(evaluate_all, engine.evaluate_case, cases, histories, workflow)
            keep(f"{label} evaluate", s)
            s, changed = timed(compare_all, compare, results, held)
            keep(f"{label} compare", s)
            best[f"{label} changed"] = sum(changed)
            if label == "old":
                old_results = results
            else:
                new_changed = changed
            del results
        s, (_hist, held_from_text, _texts) = timed(batch_load, rows, None, workflow)
        keep("batch load, held from text", s)
        s, (hist, held_cols, held_texts) = timed(batch_load, rows, numbers, workflow)
        keep("batch load", s)
        s, batch = timed(batch_evaluate, cases, hist, workflow, rows)
        keep("batch evaluate", s)
        s, changed = timed(batch_compare, batch, held_cols, held_texts)
        keep("batch compare", s)
        best["batch changed"] = sum(changed)
        best["batch changed mismatches"] = sum(a != b for a, b in zip(changed, new_changed, strict=True))
        from_text = batch_compare(batch, held_from_text, held_texts)
        best["batch text changed mismatches"] = sum(a != b for a, b in zip(from_text, new_changed, strict=True))
        s, plain_results = timed(plain.all, cases, histories, now_e)
        keep("plain evaluate", s)
        new_results = evaluate_all(new_engine.evaluate_case, cases, histories, workflow)
        old_vs_new = sum(_flat(o) != _flat(n) for o, n in zip(old_results, new_results, strict=True))
        batch_vs_new = sum(batch.results(i) != n for i, n in enumerate(new_results))
        best["batch scalar fallback"] = len(batch.scalar)
        del old_results, batch
    report(args, best, (old_vs_new, batch_vs_new), new_results, plain_results, data, workflow)


def report(args, best, mismatches, new_results, plain_results, data, workflow) -> None:
    old_vs_new, batch_vs_new = mismatches
    n = args.cases
    clocks = sum(len(r) for r in new_results)
    print(f"{n:,} cases x {clocks / n:.0f} clocks = {clocks:,} clock evaluations; best of {args.repeat} runs")
    print(f"{'stage':<44}{'old':>9}{'new':>9}{'batch':>9}{'old/new':>9}{'new/batch':>10}{'old/batch':>10}")

    def stages(label: str) -> tuple[float, float, float, float, float]:
        load, ev, cmp = best[f"{label} load"], best[f"{label} evaluate"], best[f"{label} compare"]
        return load, ev, cmp, ev + cmp, load + ev + cmp

    names = ["1. rows -> histories + stored fields", "2. evaluation", "3. comparison",
             "2+3. engine as sync pays (evaluate+compare)", "1+2+3. total"]  # fmt: skip
    for label, old, new, bat in zip(names, stages("old"), stages("new"), stages("batch"), strict=True):
        print(f"{label:<44}{old:>8.3f}s{new:>8.3f}s{bat:>8.3f}s{old / new:>8.2f}x{new / bat:>9.2f}x{old / bat:>9.2f}x")
    text_load = best["batch load, held from text"]
    text_total = text_load + best["batch evaluate"] + best["batch compare"]
    print(
        f"batch with the held fields read from their JSON text instead of the store's numbers: stage 1 "
        f"{text_load:.3f} s, total {text_total:.3f} s"
    )
    plain_s = best["plain evaluate"]
    print(
        f"plain 24x7 baseline, evaluation only: {plain_s:.3f} s "
        f"(new/plain {best['new evaluate'] / plain_s:.2f}x, old/plain {best['old evaluate'] / plain_s:.2f}x)"
    )
    print(
        f"cases whose fields change (old, new, batch): {best['old changed']:,}, {best['new changed']:,}, "
        f"{best['batch changed']:,}"
    )
    states: dict[str, int] = {}
    for results in new_results:
        for r in results:
            states[str(r.state)] = states.get(str(r.state), 0) + 1
    print(f"states: {dict(sorted(states.items()))}")
    print(f"mismatches, new vs old (every field of every clock): {old_vs_new} cases")
    print(f"mismatches, batch vs new (every field of every clock): {batch_vs_new} cases")
    print(f"mismatches, batch vs new (which cases change): {best['batch changed mismatches']} cases")
    print(f"mismatches, batch with held fields from text vs new: {best['batch text changed mismatches']} cases")
    print(f"batch: cases left to the scalar engine: {best['batch scalar fallback']:,}")
    checked, bad = plain_mismatches(plain_results, new_results, workflow)
    print(f"mismatches, new vs plain 24x7 baseline: {bad} of {checked:,} 24x7 clocks")
    bad, secs = day_by_day_mismatches(data, new_results, workflow, args.sample)
    print(f"mismatches, new vs day-by-day reference: {bad} clocks of {args.sample:,} cases ({secs:.1f} s)")
    print("  (batch equals new on every field of every clock above, so batch vs day-by-day is the same count)")
    for label, engine in (("new", new_engine), ("old", old_engine), ("batch", BatchEngine)):
        total, bad = golden_mismatches(engine)
        print(f"mismatches, golden table through {label}: {bad} of {total} rows")


if __name__ == "__main__":
    main()

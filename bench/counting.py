"""Benchmark: what counting legal periods by the law's rule (Reg. 1182/71 Art. 3) costs the clock engine.

The same cases (bench/clocks.py's generator, 40 % EU production orders, their provider Meta: Irish days
and holidays from the provider directory) are evaluated in the same run with the bundled workflow as
shipped (EU policies ``eu-1182-71``) and with every policy switched to ``elapsed``; rounds alternate,
the best of each is kept, and the ratio is printed. Also prints how many due instants moved. Prints
figures; never asserts on time.

    taskset -c 0 .venv/bin/python bench/counting.py [--cases 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.clocks import NOW, make_cases
from casebridge.workflows import load_workflow
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.counting import attach_establishments
from casebridge.workflows.directory import load_directory
from casebridge.workflows.model import Workflow


def elapsed_copy(workflow: Workflow) -> Workflow:
    policies = tuple(
        replace(p, targets=tuple(replace(t, counting="elapsed") for t in p.targets)) for p in workflow.policies
    )
    return replace(workflow, policies=policies)


def run(data, workflow: Workflow) -> tuple[float, list]:
    t0 = time.perf_counter()
    dues = [[r.due_at for r in evaluate_case(case, history, workflow, NOW)] for case, history in data]
    return time.perf_counter() - t0, dues


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    cases = make_cases(args.cases, args.seed)
    data = [(case.model_copy(update={"provider": "Meta"}), history) for case, history in cases]
    directory = load_directory()
    law = attach_establishments(load_workflow("lawful-access"), directory)
    elapsed = attach_establishments(elapsed_copy(law), directory)
    run(data[:100], law), run(data[:100], elapsed)  # warm tables, caches and the holiday calendar
    best_law = best_elapsed = float("inf")
    for _ in range(args.rounds):
        s, law_dues = run(data, law)
        best_law = min(best_law, s)
        s, elapsed_dues = run(data, elapsed)
        best_elapsed = min(best_elapsed, s)
    moved = sum(a != b for la, ea in zip(law_dues, elapsed_dues, strict=True) for a, b in zip(la, ea, strict=True))
    n = len(data)
    print(f"{n:,} cases, best of {args.rounds} alternating rounds, one process")
    print(f"all elapsed:        {best_elapsed:.3f} s  ({best_elapsed / n * 1e6:.1f} us/case)")
    print(f"EU under 1182/71:   {best_law:.3f} s  ({best_law / n * 1e6:.1f} us/case)")
    print(f"ratio law/elapsed:  {best_law / best_elapsed:.2f}x; due instants moved by the law's rule: {moved:,}")


if __name__ == "__main__":
    main()

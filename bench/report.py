"""Benchmark: `casebridge report` over 100,000 synthetic cases spread over 12 months, all five groupings
(provider, legal basis, request type, agency, month), on one core.

Prints the time and peak RSS of ``build_report`` (each case evaluated once by the clock engine, then
counted into every grouping): first with the cases streamed in one at a time (how ``app.report`` reads a
tracker without a state store: the peak is the report's own memory), then over a list of all of them
(the input alone is ~300 MB at 100,000 cases), and, in the same run, of a naive baseline that builds
each grouping on its own (every case re-evaluated per grouping, values kept per group and summarised
with ``statistics``), plus the ratio; it also checks that both agree on every group's counts. Prints
figures; never asserts on time. Goal: under 5 s and 300 MB.

    .venv/bin/python bench/report.py [--cases 100000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from casebridge.workflows import load_workflow
from casebridge.workflows.calendars import calendar_named
from casebridge.workflows.cases import Case, StatusChange, TrackedCase
from casebridge.workflows.report import GROUPINGS, _Durations, build_report, case_facts

NOW = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
START = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = [
    ("subscriber", "voluntary"),
    ("traffic", "voluntary"),
    ("subscriber", "eu-epo"),
    ("emergency", "eu-epo"),
    ("preservation", "us-2703f"),
    ("subscriber", "budapest-2ap-7"),
    ("content", "mlat"),
    ("domain_registration", "nis2"),
]
PROVIDERS = ["Meta", "Google", "Microsoft", "X", "TikTok", "Telegram", "Snap", "Apple", "Discord", "Hetzner"]
AGENCIES = ["FIA CCW Islamabad", "FIA CCW Lahore", "FIA CCW Karachi", "Punjab Police CTD"]
PATHS = [
    (),
    ("acknowledged",),
    ("acknowledged", "fulfilled"),
    ("fulfilled",),
    ("acknowledged", "partial"),
    ("refused",),
    ("refused", "redirected_mla"),
    ("awaiting_requester", "acknowledged", "fulfilled"),
    ("escalated",),
]


def synthetic(n: int, seed: int) -> list[tuple[TrackedCase, list[StatusChange]]]:
    return list(stream_synthetic(n, seed))


def stream_synthetic(n: int, seed: int) -> Iterator[tuple[TrackedCase, list[StatusChange]]]:
    """The same cases as ``synthetic``, one at a time (as ``app.report`` reads a tracker without a store)."""
    rng = random.Random(seed)
    reasons = list(load_workflow().refusal_reasons)
    for i in range(n):
        rtype, basis = rng.choice(KINDS)
        sent = START + timedelta(minutes=rng.randrange(365 * 24 * 60))
        history = [StatusChange(sent, "submitted")]
        for state in rng.choice(PATHS):
            history.append(StatusChange(history[-1].at + timedelta(hours=rng.randrange(1, 30 * 24)), state))
        case = Case(
            reference=f"BENCH-{i:06d}",
            title="Synthetic request",
            provider=rng.choice(PROVIDERS),
            request_type=rtype,
            legal_basis=basis,
            requesting_agency=rng.choice(AGENCIES),
            submitted_at=sent,
            refusal_reason=rng.choice(reasons),
        )
        yield TrackedCase(str(i), case, history[-1].state, history[-1].at), history


def naive(cases: list[tuple[TrackedCase, list[StatusChange]]], workflow) -> dict[str, dict[str, int]]:
    """Each grouping on its own: every case evaluated again, lists per group, statistics per group."""
    calendar = calendar_named(workflow, workflow.report.calendar)
    zone = ZoneInfo(calendar.timezone)
    out: dict[str, dict[str, int]] = {}
    for grouping in GROUPINGS:
        groups: dict[str, list] = defaultdict(list)
        for tracked, history in cases:
            facts = case_facts(tracked, history, workflow, NOW, zone=zone, durations=_Durations(calendar))
            if facts is not None:
                groups[facts.keys[GROUPINGS.index(grouping)]].append(facts)
        for label, members in groups.items():
            firsts = [f.first_response[0] for f in members if f.first_response]
            if firsts:
                statistics.median(firsts)
                statistics.quantiles(firsts, n=10) if len(firsts) > 1 else None
            out[f"{grouping}:{label}"] = {"requests": len(members), "refused": sum(f.refused for f in members)}
    return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    workflow = load_workflow()
    # first (ru_maxrss is the process's peak so far): the cases streamed into build_report one at a time,
    # so the peak is the report's own memory, not the input's
    start_peak = peak_mb()
    t, c = time.perf_counter(), time.process_time()
    streamed = build_report(stream_synthetic(args.cases, args.seed), workflow, NOW, by=GROUPINGS)
    s_wall, s_cpu = time.perf_counter() - t, time.process_time() - c
    print(
        f"build_report on streamed cases (made as they are read): {s_wall:.2f} s wall, {s_cpu:.2f} s CPU "
        f"with making them; peak RSS {peak_mb():.0f} MB (interpreter and modules: {start_peak:.0f} MB)"
    )
    t = time.perf_counter()
    cases = synthetic(args.cases, args.seed)
    made = time.perf_counter() - t
    print(f"{args.cases:,} synthetic cases over 12 months made in {made:.2f} s; peak RSS {peak_mb():.0f} MB")

    t, c = time.perf_counter(), time.process_time()
    report = build_report(cases, workflow, NOW, by=GROUPINGS)
    ours, ours_cpu = time.perf_counter() - t, time.process_time() - c
    ours_peak = peak_mb()
    groups = sum(len(g) for g in report.groupings.values())
    print(
        f"build_report, 5 groupings ({groups} groups): {ours:.2f} s wall, {ours_cpu:.2f} s CPU "
        f"({ours_cpu / args.cases * 1e6:.1f} us/case); peak RSS {ours_peak:.0f} MB"
    )
    t, c = time.perf_counter(), time.process_time()
    baseline = naive(cases, workflow)
    slow, slow_cpu = time.perf_counter() - t, time.process_time() - c
    print(f"naive baseline (each grouping re-evaluates every case): {slow:.2f} s wall, {slow_cpu:.2f} s CPU; "
          f"peak RSS {peak_mb():.0f} MB")  # fmt: skip
    print(f"ratio: {slow_cpu / ours_cpu:.1f}x less CPU than the baseline")
    mismatched = [
        f"{grouping}:{g.label}"
        for grouping, gs in report.groupings.items()
        for g in gs
        if baseline[f"{grouping}:{g.label}"] != {"requests": g.counts["requests"], "refused": g.counts["refused"]}
    ]
    print(f"baseline agrees on every group's counts: {'yes' if not mismatched else mismatched[:5]}")
    same = streamed.total.counts == report.total.counts and streamed.groupings.keys() == report.groupings.keys()
    print(f"streamed and listed reports agree: {'yes' if same else 'NO'}")
    total = report.total
    print(
        f"total: {total.counts['requests']:,} requests, compliance {total.compliance:.1f} %, "
        f"{total.counts['refused']:,} refused, {total.counts['no_reply']:,} without reply"
    )


if __name__ == "__main__":
    main()

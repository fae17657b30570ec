"""Benchmark: a no-change sync pass of the embedded tracker, batch clock path vs scalar engine, same run.

Seeds N cases (stamped in the past, so the steady-state pass lists nothing and evaluates every open case
from the state store, as cron every 5 minutes does), fills the state store as the first pass and the
re-listing pass leave it, then runs the no-change pass alternately through the batch path
(``app.sync_batch``, the default) and the scalar engine (``MIN_BATCH`` raised past N), each on a fresh
copy of the same files. Prints the median time of each, the ratio, writes (goal 0) and, with
``--profile``, where the batch pass spends its time. With ``--cli``, the same no-change pass also runs
as the cron job runs it, ``casebridge sync`` in a child process (start-up, config, run lock, audit),
and prints its wall time, CPU time and peak RSS (``--baseline DIR``: the same for an older tree,
DIR/casebridge, alternating with this one).

    taskset -c 0 .venv/bin/python bench/sync_batch.py --cases 100000 --rounds 3 --profile --cli
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_scale import run as run_child  # bench/cli_scale.py: a child under /usr/bin/time

from bench.sync_noop import NOW, WORKFLOW, seed_local
from casebridge.app import sync_batch
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.connectors.retry import RetryPolicy
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions, SyncReport
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.sla import computed_sla

NO_SLEEP = RetryPolicy(sleep=lambda _s: None)


def seed(root: Path, count: int) -> None:
    seed_local(root / "tracker.db", count, stamp_moves=True)  # the steady-state pass lists nothing


def prime(root: Path, at: datetime) -> None:
    """The state store as a first pass and its re-listing pass leave it (every case with its history and
    the SLA fields written for ``at``), without the first pass's N audited writes (minutes at 100,000)."""
    tracker = LocalConnector(LocalConfig(path=str(root / "tracker.db")), WORKFLOW)
    histories = tracker.read_all_histories()
    cases = []
    for tracked in tracker.list_cases(updated_since=None):
        tracked.history = histories[tracked.key]
        tracked.sla = computed_sla(evaluate_case(tracked.case, tracked.history, WORKFLOW, at))
        cases.append(tracked)
    tracker.close()
    store = StateStore(root / "state.db")
    store.save(cases)
    store.set_watermark(at - timedelta(minutes=5))
    store.close()


def one_pass(root: Path, now: datetime, profile: cProfile.Profile | None = None) -> tuple[float, SyncReport]:
    tracker = LocalConnector(LocalConfig(path=str(root / "tracker.db")), WORKFLOW)
    store, audit = StateStore(root / "state.db"), AuditLog(root / "state.audit.db")
    job = SyncJob(tracker, WORKFLOW, store, audit, SyncOptions(retry=NO_SLEEP))
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    report = job.run(now)
    if profile is not None:
        profile.disable()
    seconds = time.perf_counter() - started
    tracker.close()
    store.close()
    audit.close()
    assert report.exit_code == 0, report.result.failures
    return seconds, report


def noop(work: Path, copy: Path, *, scalar: bool, profile: cProfile.Profile | None = None) -> tuple[float, SyncReport]:
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(work, copy)
    saved = sync_batch.MIN_BATCH
    sync_batch.MIN_BATCH = 10**12 if scalar else saved
    try:
        return one_pass(copy, NOW + timedelta(minutes=10), profile)
    finally:
        sync_batch.MIN_BATCH = saved
        shutil.rmtree(copy, ignore_errors=True)


def cli_noop(work: Path, copy: Path, extra_env: dict[str, str]) -> tuple[float, float, int]:
    """The no-change pass through ``casebridge sync`` in a child: (wall s, CPU s, peak RSS MB)."""
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(work, copy)
    config = copy / "casebridge.toml"
    tracker = copy / "tracker.db"
    config.write_text(f'state = "{copy / "state.db"}"\n\n[tracker]\nconnector = "local"\npath = "{tracker}"\n')
    config.chmod(0o600)
    now = (NOW + timedelta(minutes=10)).isoformat()
    try:
        wall, cpu, rss, _digest = run_child(["--config", str(config), "sync", "--now", now], extra_env, copy)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return wall, cpu, rss // 1024


def report_cli(work: Path, copy: Path, rounds: int, baseline: str | None) -> None:
    trees = [("this tree", {"PYTHONPATH": ""})] + ([("baseline", {"PYTHONPATH": baseline})] if baseline else [])
    got: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _ in trees}
    for _ in range(rounds):
        for name, env in trees:  # alternating: both see the same machine load
            got[name].append(cli_noop(work, copy, env))
    for name, runs in got.items():
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        peak = max(r[2] for r in runs)
        print(f"  casebridge sync ({name}): median {wall:6.2f} s wall {cpu:6.2f} s CPU, peak {peak} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="no-change passes per path (median)")
    parser.add_argument("--profile", action="store_true", help="profile one more batch pass")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one on disk)")
    parser.add_argument("--cli", action="store_true", help="also run the pass as `casebridge sync` in a child")
    parser.add_argument("--baseline", metavar="DIR", help="with --cli: DIR/casebridge is an older tree to compare")
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="casebridge-bench-"))
    work, copy = root / "work", root / "copy"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    seed(work, args.cases)
    print(f"{args.cases} cases seeded in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    prime(work, NOW + timedelta(minutes=10))
    print(f"state store primed as the earlier passes leave it in {time.perf_counter() - started:.1f} s")
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for scalar in (False, True):
            seconds, report = noop(work, copy, scalar=scalar)
            assert not report.result.applied and report.listed == 0, (len(report.result.applied), report.listed)
            times[scalar].append(seconds)
    batch, scalar = statistics.median(times[False]), statistics.median(times[True])
    print(f"no-change resync +10 min, evaluated {report.plan.evaluated}, writes 0, listed 0")
    print(f"  scalar engine  median {scalar:7.2f} s  ({', '.join(f'{t:.2f}' for t in times[True])})")
    print(f"  batch path     median {batch:7.2f} s  ({', '.join(f'{t:.2f}' for t in times[False])})")
    print(f"  batch / scalar {batch / scalar:.3f}x")
    if args.cli:
        report_cli(work, copy, args.rounds, args.baseline)
    if args.profile:
        profile = cProfile.Profile()
        noop(work, copy, scalar=False, profile=profile)
        pstats.Stats(profile).sort_stats("tottime").print_stats(14)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

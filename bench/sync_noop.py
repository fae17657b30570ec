"""Benchmark: the first sync of N cases vs a no-change resync (issue 5).

For each pass it prints connector calls (the requests a remote tracker would get), SLA writes, wall time and
peak Python memory (tracemalloc, measured in a separate identical pass so it does not slow the timed one),
and compares against a baseline measured in the same run: the same resync with the state store deleted
(what every pass cost before the store existed: every history read, every case evaluated from scratch).

    .venv/bin/python bench/sync_noop.py              # 10,000 cases, embedded tracker
    .venv/bin/python bench/sync_noop.py --cases 2000 --dir /tmp/bench

Goals: no-change resync writes 0; peak memory < 150 MB.

Hook for the Jira test server (tests/jira_server, now in main): add a "jira" entry to TRACKERS that forks
the fake server as bench/jira_resync.py's ``serve`` does (seeded with N issues, request counter over a
pipe) and have ``one_pass`` build a JiraConnector (``jira_resync.connector``) instead of LocalConnector;
report the server's request counts next to the connector-call counts. One constraint: the fake server's
clock and the bench's ``now`` must not be ahead of the real time, because the sync job never lets the
watermark pass the real time (a what-if ``--now`` in the future must not hide later real updates);
jira_resync seeds around 2026-12-01, so seed relative to ``datetime.now(UTC) - 1 day`` instead.
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.local import LocalConfig, LocalConnector
from state.audit import AuditLog
from state.fetch import RetryPolicy
from state.store import StateStore
from sync import SyncJob, SyncOptions
from workflows import load_workflow
from workflows.cases import Case

WORKFLOW = load_workflow("lawful-access")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=20)
KINDS = [
    ("subscriber", "voluntary"),
    ("emergency", "eu-epo"),
    ("preservation", "us-2703f"),
    ("content", "mlat"),
    ("domain_registration", "nis2"),
    ("traffic", "voluntary"),
]
PATH = ["legal_review", "approved", "submitted", "acknowledged", "awaiting_requester", "acknowledged", "fulfilled"]


class Counting:
    """Counts connector calls; delegates everything else (including the embedded tracker's clock)."""

    COUNTED = ("list_cases", "read_history", "read_all_histories", "find_case", "set_sla_fields")

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "calls", Counter())

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self.COUNTED:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)


def build_local(root: Path, count: int) -> Path:
    """N cases, each walked part of the way through the workflow. Seeding is not measured."""
    path = root / "tracker.db"
    tracker = LocalConnector(LocalConfig(path=str(path)), WORKFLOW)
    tracker.db.execute("PRAGMA synchronous=OFF")  # seeding only
    rng = random.Random(5)
    for i in range(count):
        request_type, basis = KINDS[i % len(KINDS)]
        case = Case.model_validate(
            {
                "reference": f"BENCH-{i:06d}",
                "title": "Benchmark case",
                "provider": "Meta Platforms",
                "request_type": request_type,
                "legal_basis": basis,
                "submitted_at": T0,
                "timezone": "Asia/Karachi",
            }
        )
        tracked = tracker.create_case(case, at=T0)
        at = T0
        for state in PATH[: rng.randint(0, len(PATH))]:
            at += timedelta(hours=rng.randint(1, 48))
            tracker.transition(tracked.key, state, at=at)
    tracker.close()
    return path


TRACKERS: dict[str, Callable[[Path, int], Path]] = {"local": build_local}


@dataclass
class Figures:
    label: str
    calls: Counter[str]
    writes: int
    seconds: float
    peak_mb: float

    @property
    def requests(self) -> int:
        return sum(self.calls.values())

    def line(self) -> str:
        calls = ", ".join(f"{k} {v}" for k, v in sorted(self.calls.items()))
        return (
            f"{self.label:<34} requests {self.requests:>6} ({calls})  writes {self.writes:>6}  "
            f"time {self.seconds:7.2f} s  peak {self.peak_mb:6.1f} MB"
        )


def one_pass(root: Path, now: datetime, *, measure_memory: bool) -> tuple[Counter[str], int, float, float]:
    tracker = Counting(LocalConnector(LocalConfig(path=str(root / "tracker.db")), WORKFLOW))
    store, audit = StateStore(root / "state.db"), AuditLog(root / "state.audit.db")
    job = SyncJob(tracker, WORKFLOW, store, audit, SyncOptions(retry=RetryPolicy(sleep=lambda _s: None)))
    gc.collect()
    if measure_memory:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        report = job.run(now)
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20 if measure_memory else 0.0
        if measure_memory:
            tracemalloc.stop()
        tracker.inner.close()
        store.close()
        audit.close()
    assert report.exit_code == 0, report.result.failures
    return tracker.calls, tracker.calls["set_sla_fields"], seconds, peak


def measured(label: str, root: Path, now: datetime, *, before: Callable[[Path], None] | None = None) -> Figures:
    """Time a pass, then measure memory in an identical pass run on a copy of the same starting files."""
    twin = root.with_name(root.name + "-mem")
    shutil.rmtree(twin, ignore_errors=True)
    shutil.copytree(root, twin)
    for where in (root, twin):
        if before is not None:
            before(where)
    calls, writes, seconds, _ = one_pass(root, now, measure_memory=False)
    _, _, _, peak = one_pass(twin, now, measure_memory=True)
    shutil.rmtree(twin, ignore_errors=True)
    return Figures(label, calls, writes, seconds, peak)


def drop_store(root: Path) -> None:
    for path in root.glob("state.db*"):
        path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--tracker", choices=sorted(TRACKERS), default="local")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one on disk)")
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="casebridge-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    work = root / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    started = time.perf_counter()
    TRACKERS[args.tracker](work, args.cases)
    print(f"{args.cases} cases on the {args.tracker} tracker, seeded in {time.perf_counter() - started:.1f} s ({work})")
    # cron every 5 minutes: the pass after the first re-lists the first pass's own writes once (they are
    # inside the overlap; their history is cached), the pass after that is the steady no-change state
    first = measured("first sync (empty store)", work, NOW)
    relist = measured("resync +5 min (re-lists own writes)", work, NOW + timedelta(minutes=5))
    noop = measured("no-change resync +10 min", work, NOW + timedelta(minutes=10))
    baseline = measured("baseline: resync +10 min, no store", work, NOW + timedelta(minutes=10), before=drop_store)
    passes = (first, relist, noop, baseline)
    for figures in passes:
        print(figures.line())
    print(
        f"no-change resync vs first sync: requests {noop.requests / max(first.requests, 1):.5f}x, "
        f"time {noop.seconds / first.seconds:.3f}x; vs baseline (no store): requests "
        f"{noop.requests / max(baseline.requests, 1):.3f}x, time {noop.seconds / baseline.seconds:.3f}x"
    )
    peak = max(f.peak_mb for f in passes)
    print(
        f"goals: no-change writes {noop.writes} (goal 0) {'OK' if noop.writes == 0 else 'MISSED'}; "
        f"peak {peak:.1f} MB (goal < 150 MB) {'OK' if peak < 150 else 'MISSED'}"
    )
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

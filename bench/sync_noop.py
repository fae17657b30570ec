"""Benchmark: the first sync of N cases vs a no-change resync (issue 5).

For each pass it prints connector calls (the requests a remote tracker would get), SLA writes, wall time and
peak Python memory (tracemalloc, measured in a separate identical pass so it does not slow the timed one),
and compares against a baseline measured in the same run: the same resync with the state store deleted
(what every pass cost before the store existed: every history read, every case evaluated from scratch).

    .venv/bin/python bench/sync_noop.py              # 10,000 cases, embedded tracker and fake Jira
    .venv/bin/python bench/sync_noop.py --cases 2000 --dir /tmp/bench

Goals: no-change resync writes 0; peak memory < 150 MB.

The Jira test server (tests/jira_server, spec-checked fake, Cloud or Data Center) runs in a child process
seeded with the same N cases; its request counter gives requests and writes per pass. Its clock and every
``now`` here sit an hour behind the real time, because the sync job never lets the watermark pass the real
time (a what-if ``--now`` in the future must not hide later real updates). The memory pass of a Jira pass
runs against the server state saved before the timed pass (the server restores it), so both see the same.

    .venv/bin/python bench/sync_noop.py --tracker both    # embedded tracker, then the fake Jira (Cloud)
    .venv/bin/python bench/sync_noop.py --tracker jira --mode datacenter --validate-every 1
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import multiprocessing as mp
import os
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

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.connectors.retry import RetryPolicy
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import Case

WORKFLOW = load_workflow("lawful-access")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=20)
# The fake Jira's passes: an hour behind the real time (the watermark never passes the real time)
JIRA_NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
KINDS = [
    ("subscriber", "voluntary"),
    ("emergency", "eu-epo"),
    ("preservation", "us-2703f"),
    ("content", "mlat"),
    ("domain_registration", "nis2"),
    ("traffic", "voluntary"),
]
PATH = ["legal_review", "approved", "submitted", "acknowledged", "awaiting_requester", "acknowledged", "fulfilled"]
NO_SLEEP = RetryPolicy(sleep=lambda _s: None)


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


def bench_case(i: int, submitted_at: datetime) -> Case:
    request_type, basis = KINDS[i % len(KINDS)]
    return Case.model_validate(
        {
            "reference": f"BENCH-{i:06d}",
            "title": "Benchmark case",
            "provider": "Meta Platforms",
            "request_type": request_type,
            "legal_basis": basis,
            "submitted_at": submitted_at,
            "timezone": "Asia/Karachi",
        }
    )


# -- the embedded tracker ------------------------------------------------------------------------------
def seed_local(path: Path, count: int, *, stamp_moves: bool = False) -> None:
    """``count`` cases in an embedded tracker at ``path``, each walked part of the way through the
    workflow (seeded, so every run builds the same cases). With ``stamp_moves`` the tracker stamps each
    change with its own moment, all in the past, so a pass after seeding lists nothing; without, it
    stamps real time."""
    tracker = LocalConnector(LocalConfig(path=str(path)), WORKFLOW)
    tracker.db.execute("PRAGMA synchronous=OFF")  # seeding only
    clock = [T0]
    if stamp_moves:
        tracker.use_clock(lambda: clock[0])
    rng = random.Random(5)
    for i in range(count):
        tracked = tracker.create_case(bench_case(i, T0), at=T0)
        at = T0
        for state in PATH[: rng.randint(0, len(PATH))]:
            at += timedelta(hours=rng.randint(1, 48))
            clock[0] = at
            tracker.transition(tracked.key, state, at=at)
        clock[0] = T0
    tracker.close()


class LocalBench:
    """N cases in the embedded tracker, each walked part of the way through the workflow. The tracker is a
    file in the pass's directory, so the memory pass runs on a copy of it."""

    label = "embedded tracker"
    now = NOW

    def __init__(self, root: Path, count: int, _args: argparse.Namespace) -> None:
        seed_local(root / "tracker.db", count)

    def tracker(self, root: Path, now: datetime) -> Counting:
        return Counting(LocalConnector(LocalConfig(path=str(root / "tracker.db")), WORKFLOW))

    def counts(self, tracker: Counting) -> tuple[Counter[str], int]:
        tracker.inner.close()
        return tracker.calls, tracker.calls["set_sla_fields"]

    def save(self) -> None:
        """Nothing to save: the twin directory holds its own copy of the tracker."""

    restore = save

    def close(self) -> None:
        pass


# -- the Jira test server ------------------------------------------------------------------------------
def seed_jira(server: Any, count: int) -> None:
    """The same kind of cases as the embedded tracker's, created in the two months before JIRA_NOW."""
    from casebridge.connectors.jira import JiraFieldNames
    from casebridge.connectors.jira.schema import needed_fields
    from tests.jira_fixtures import build_jira

    build_jira(server, WORKFLOW)
    state = server.state
    ids = {
        s.role: state.add_custom_field(s.name, s.type).id
        for s in needed_fields(JiraFieldNames(), WORKFLOW, liaison=False)
    }
    project = state.projects["CASE"]
    rng = random.Random(5)
    for i in range(count):
        start = JIRA_NOW - timedelta(minutes=rng.randrange(2 * 60, 60 * 24 * 60))
        case = bench_case(i, start.replace(second=0))
        text = json.dumps(case.to_record(), sort_keys=True)
        data: Any = text
        if server.mode == "cloud":
            code_block = {"type": "codeBlock", "content": [{"type": "text", "text": text}]}
            data = {"type": "doc", "version": 1, "content": [code_block]}
        values = {"summary": case.title, ids["reference"]: case.reference, ids["case_data"]: data}
        issue = state.new_issue(project, "Task", values, start)
        at = start
        for step in PATH[: rng.randint(0, len(PATH))]:
            at += timedelta(hours=rng.randint(1, 48))
            if at >= JIRA_NOW - timedelta(hours=1):
                break
            state.move(issue, WORKFLOW.states[step].status_for("jira"), at)


def serve_jira(conn: Any, mode: str, count: int, validate_every: int) -> None:
    """The child process: a seeded fake Jira answering commands over ``conn``."""
    from tests.jira_server import JiraServer

    clock = {"at": JIRA_NOW}
    server = JiraServer(mode, validate_every=validate_every, now=lambda: clock["at"]).start()
    seed_jira(server, count)
    conn.send(server.url)
    saved: Any = None
    while True:
        command, arg = conn.recv()
        reply: Any = None
        if command == "clock":
            clock["at"] = arg
            server.counter.reset()
        elif command == "counts":
            counter = server.counter
            reply = (counter.snapshot(), counter.writes, len(server.mismatches), server.mismatches[:3])
        elif command == "save":
            with server.state.lock:
                saved = copy.deepcopy(server.state.issues)
        elif command == "restore":
            with server.state.lock:
                server.state.issues = copy.deepcopy(saved)
                server.state.version += 1  # search snapshots are keyed on the version
        elif command == "stop":
            server.stop()
            conn.send(None)
            return
        conn.send(reply)


class JiraBench:
    """The fake Jira in a child process (so tracemalloc sees the sync side only and each side has a core)."""

    now = JIRA_NOW

    def __init__(self, root: Path, count: int, args: argparse.Namespace) -> None:
        self.mode = args.mode
        self.label = f"Jira test server ({self.mode})"
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve_jira, args=(child, self.mode, count, args.validate_every), daemon=True)
        self.process.start()
        self.url = self.conn.recv()
        self.mismatches = 0

    def ask(self, command: str, arg: Any = None) -> Any:
        self.conn.send((command, arg))
        return self.conn.recv()

    def tracker(self, root: Path, now: datetime) -> Any:
        from casebridge.connectors.jira import JiraConnector
        from tests.jira_fixtures import CLOUD_TOKEN, DC_PAT, EMAIL

        self.ask("clock", now)  # the server stamps our writes with the pass's time; counter reset
        os.environ["CB_BENCH_JIRA_TOKEN"] = CLOUD_TOKEN if self.mode == "cloud" else DC_PAT
        raw: dict[str, Any] = {"url": self.url, "project": "CASE"}
        if self.mode == "cloud":
            raw.update(deployment="cloud", email=EMAIL, api_token={"env": "CB_BENCH_JIRA_TOKEN"})
        else:
            raw.update(deployment="datacenter", personal_access_token={"env": "CB_BENCH_JIRA_TOKEN"})
        return JiraConnector(JiraConnector.config_model.model_validate(raw), WORKFLOW)

    def counts(self, tracker: Any) -> tuple[Counter[str], int]:
        tracker.close()
        by_route, writes, mismatches, examples = self.ask("counts")
        if mismatches:
            print(f"!! {mismatches} requests/answers off Atlassian's API, e.g. {examples}")
        self.mismatches += mismatches
        calls: Counter[str] = Counter()
        for route, n in by_route.items():
            method, path = route.split(" ", 1)
            calls[f"{method} {path.split('/rest/api/')[-1][2:]}"] += n
        return calls, writes

    def save(self) -> None:
        self.ask("save")

    def restore(self) -> None:
        self.ask("restore")

    def close(self) -> None:
        self.ask("stop")
        self.process.join(timeout=10)


TRACKERS: dict[str, Callable[[Path, int, argparse.Namespace], Any]] = {"local": LocalBench, "jira": JiraBench}


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
            f"{self.label:<36} requests {self.requests:>6}  writes {self.writes:>6}  "
            f"time {self.seconds:7.2f} s  peak {self.peak_mb:6.1f} MB  ({calls})"
        )


def one_pass(bench: Any, root: Path, now: datetime, *, measure_memory: bool) -> tuple[Counter[str], int, float, float]:
    tracker = bench.tracker(root, now)
    store, audit = StateStore(root / "state.db"), AuditLog(root / "state.audit.db")
    job = SyncJob(tracker, WORKFLOW, store, audit, SyncOptions(retry=NO_SLEEP))
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
        calls, writes = bench.counts(tracker)
        store.close()
        audit.close()
    assert report.exit_code == 0, report.result.failures
    return calls, writes, seconds, peak


def measured(
    bench: Any, label: str, root: Path, now: datetime, *, before: Callable[[Path], None] | None = None
) -> Figures:
    """Time a pass, then measure memory in an identical pass run on a copy of the same starting files
    (and, for a remote tracker, the same server state)."""
    twin = root.with_name(root.name + "-mem")
    shutil.rmtree(twin, ignore_errors=True)
    shutil.copytree(root, twin)
    for where in (root, twin):
        if before is not None:
            before(where)
    bench.save()
    calls, writes, seconds, _ = one_pass(bench, root, now, measure_memory=False)
    bench.restore()
    _, _, _, peak = one_pass(bench, twin, now, measure_memory=True)
    shutil.rmtree(twin, ignore_errors=True)
    return Figures(label, calls, writes, seconds, peak)


def drop_store(root: Path) -> None:
    for path in root.glob("state.db*"):
        path.unlink()


def run_tracker(name: str, root: Path, args: argparse.Namespace) -> list[Figures]:
    """Seed, then: first sync, resync +5 min, no-change resync +10 min, baseline without the store."""
    work = root / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    started = time.perf_counter()
    bench = TRACKERS[name](work, args.cases, args)
    now = bench.now
    print(f"\n== {bench.label}: {args.cases} cases, seeded in {time.perf_counter() - started:.1f} s")
    try:
        # cron every 5 minutes: the pass after the first re-lists the first pass's own writes once (they
        # are inside the overlap; their history is cached), the pass after that is the steady state
        first = measured(bench, "first sync (empty store)", work, now)
        relist = measured(bench, "resync +5 min (re-lists own writes)", work, now + timedelta(minutes=5))
        noop = measured(bench, "no-change resync +10 min", work, now + timedelta(minutes=10))
        ten = now + timedelta(minutes=10)
        baseline = measured(bench, "baseline: resync +10 min, no store", work, ten, before=drop_store)
    finally:
        bench.close()
    passes = [first, relist, noop, baseline]
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
    return passes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--tracker", choices=[*sorted(TRACKERS), "both"], default="both")
    parser.add_argument("--mode", choices=["cloud", "datacenter"], default="cloud", help="fake Jira deployment")
    parser.add_argument(
        "--validate-every", type=int, default=0, help="fake Jira: check every Nth request/answer against the spec"
    )
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one on disk)")
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="casebridge-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    names = sorted(TRACKERS) if args.tracker == "both" else [args.tracker]
    names.sort(key=lambda n: n != "local")  # the embedded tracker first: it is the reference
    results = {name: run_tracker(name, root, args) for name in names}
    if len(results) == 2:
        local, jira = results["local"][2], results["jira"][2]
        print(
            f"\nno-change resync, Jira vs embedded: requests {jira.requests} vs {local.requests} "
            f"({jira.requests / max(local.requests, 1):.1f}x), writes {jira.writes} vs {local.writes}, "
            f"time {jira.seconds:.2f} vs {local.seconds:.2f} s ({jira.seconds / local.seconds:.1f}x), "
            f"peak {jira.peak_mb:.1f} vs {local.peak_mb:.1f} MB"
        )
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

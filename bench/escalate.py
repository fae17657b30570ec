"""Benchmark: escalation at agency scale (issue 16): time and target requests per planned item.

For N cases in the embedded tracker (each submitted to a provider weeks ago, so its clocks are breached
and escalate), most of whose escalations are already in the liaison queue, it prints per planned item:

- plan: listing, evaluating and planning (dossiers are written lazily, so none here);
- lookup, old: one ``find_escalation`` per key (the contract's default loop) and every dossier rendered
  (Markdown -> HTML -> plain text, as the dry run used to), against new: ``find_escalations`` (one query per
  chunk of keys) and dossiers rendered only for what will be posted;
- the lookups a remote target would get for those keys: Redmine (``lookup.chunks``) and Jira
  (``ESCALATION_CHUNK``) requests per item, against one per key before;
- ``casebridge escalate --dry-run`` through the CLI at the largest N (a child process, wall time).

The old and new paths run in the same process on the same data. Prints figures; never asserts on time.

    .venv/bin/python bench/escalate.py                       # 1,000 / 10,000 / 100,000 cases
    .venv/bin/python bench/escalate.py --cases 1000 10000 --old-limit 10000 --posted 0.99
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from casebridge.app.sync_plan import evaluate_cases, history_reader
from casebridge.connectors import Connector
from casebridge.connectors.jira.liaison import ESCALATION_CHUNK
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.connectors.redmine.lookup import chunks
from casebridge.workflows import load_workflow
from casebridge.workflows.escalation import EscalationPlan, plan_escalations
from casebridge.workflows.render import to_plain

WORKFLOW = load_workflow("lawful-access")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KINDS = [("subscriber", "voluntary"), ("emergency", "eu-epo"), ("content", "mlat"), ("traffic", "voluntary")]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_tracker(path: Path, count: int) -> LocalConnector:
    """``count`` cases submitted 20-60 days before NOW, written in one transaction (fixture, not intake)."""
    tracker = LocalConnector(LocalConfig(path=str(path)), WORKFLOW)
    db = tracker.db
    cases, history = [], []
    for i in range(count):
        request_type, basis = KINDS[i % len(KINDS)]
        created = NOW - timedelta(days=20 + i % 40, minutes=i % 997)
        data = {
            "reference": f"BENCH-{i:06d}",
            "title": "Benchmark case",
            "provider": "Meta Platforms",
            "request_type": request_type,
            "legal_basis": basis,
            "timezone": "Asia/Karachi",
            "submitted_at": _iso(created + timedelta(hours=2)),
            "article3_checked_by": "Insp. Bench",
            "article3_checked_at": _iso(created),
        }
        cases.append((i + 1, data["reference"], json.dumps(data), "submitted", _iso(created), _iso(created)))
        history += [(i + 1, 0, _iso(created), "draft"), (i + 1, 1, _iso(created + timedelta(hours=2)), "submitted")]
    db.execute("PRAGMA synchronous=OFF")
    with db:
        db.executemany(
            "INSERT INTO cases (id, reference, data, state, created_at, updated_at) VALUES (?,?,?,?,?,?)", cases
        )
        db.executemany("INSERT INTO history VALUES (?, ?, ?, ?, NULL)", history)
    return tracker


def mark_posted(tracker: LocalConnector, plan: EscalationPlan, share: float) -> int:
    """Put ``share`` of the planned keys in the liaison queue already (a daily rerun's situation)."""
    rows = [
        (p.dedupe_key, p.reference, p.case_key, p.title, "(posted earlier)", p.level, p.clock, _iso(NOW))
        for n, p in enumerate(plan)
        if n % 100 < share * 100
    ]
    with tracker.db as db:
        db.executemany(
            "INSERT INTO liaison (dedupe_key, case_reference, case_key, title, markdown, level, clock, posted_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


class Counting:
    """Counts the liaison calls made through it."""

    def __init__(self, inner: Connector) -> None:
        self.inner, self.calls = inner, Counter()

    def find_escalation(self, key: str) -> Any:
        self.calls["find_escalation"] += 1
        return self.inner.find_escalation(key)

    def find_escalations(self, keys: Any) -> Any:
        self.calls["find_escalations"] += 1
        return self.inner.find_escalations(keys)


def plan_for(tracker: LocalConnector) -> EscalationPlan:
    evaluations, _failures = evaluate_cases(tracker.list_cases(), history_reader(tracker), WORKFLOW, NOW)
    return plan_escalations([(e.tracked, e.clocks) for e in evaluations], WORKFLOW, now=NOW)


def old_lookup(plan: EscalationPlan, liaison: Counting) -> int:
    """Before: one search per key, and every dossier written and rendered to plain text."""
    found = {p.dedupe_key: x for p in plan if (x := liaison.find_escalation(p.dedupe_key)) is not None}
    return sum(len(to_plain(p.dossier())) for p in plan) + len(found)


def new_lookup(plan: EscalationPlan, liaison: Counting) -> int:
    """After: one bulk lookup, dossiers only for what would be posted."""
    found = liaison.find_escalations(p.dedupe_key for p in plan)
    return sum(len(to_plain(p.markdown)) for p in plan if p.dedupe_key not in found) + len(found)


def timed(func: Any, *args: Any) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def remote_requests(keys: list[str]) -> tuple[int, int]:
    """(Redmine, Jira) searches for these keys with the bulk lookups (each chunk one page: keys are unique)."""
    return sum(1 for _ in chunks(keys, 12)), math.ceil(len(keys) / ESCALATION_CHUNK)


def run_size(root: Path, count: int, args: argparse.Namespace) -> tuple[Path, int]:
    path = root / f"tracker-{count}.db"
    tracker = build_tracker(path, count)
    start = time.perf_counter()
    plan = plan_for(tracker)
    plan_s = time.perf_counter() - start
    items = len(plan)
    posted = mark_posted(tracker, plan, args.posted)
    new = Counting(tracker)
    new_s = timed(new_lookup, plan, new)
    old_note, old_s, old = "skipped (--old-limit)", math.nan, Counting(tracker)
    if count <= args.old_limit:
        old_s = timed(old_lookup, plan, old)
        old_note = f"{old_s / items * 1e6:8.1f} us/item, {sum(old.calls.values()) / items:.3f} lookups/item"
    redmine, jira = remote_requests([p.dedupe_key for p in plan])
    print(
        f"\n{count:>7,} cases: {items:,} planned, {posted:,} already posted\n"
        f"  plan (list, evaluate, plan)   {plan_s / items * 1e6:8.1f} us/item  ({plan_s:.2f} s)\n"
        f"  lookup + dossiers, old        {old_note}\n"
        f"  lookup + dossiers, new        {new_s / items * 1e6:8.1f} us/item, "
        f"{sum(new.calls.values()) / items:.4f} lookups/item  ({new_s:.2f} s"
        + (f"; {old_s / new_s:.1f}x faster)" if count <= args.old_limit else ")")
        + f"\n  remote searches per item      Redmine {redmine / items:.4f}, Jira {jira / items:.4f} "
        f"(before: 1.0000 each)"
    )
    tracker.close()
    return path, items


def cli_dry_run(root: Path, tracker_path: Path, baseline: str | None) -> None:
    """``casebridge escalate --dry-run`` on the same tracker, with this code and, when given, with an older
    source tree (``--baseline DIR``: DIR/casebridge is a checkout, e.g. ``git archive``): same run, same data."""
    config = root / "casebridge.toml"
    state = root / "state.db"
    config.write_text(f'state = "{state}"\n\n[tracker]\nconnector = "local"\npath = "{tracker_path}"\n')
    code = "import sys; from casebridge.cli import main; sys.argv[0] = 'casebridge'; main()"
    command = [sys.executable, "-c", code, "--config", str(config), "escalate", "--dry-run", "--now", NOW.isoformat()]
    runs = [("new", {})] + ([("old", {"PYTHONPATH": baseline})] if baseline else [])
    for label, extra in runs:
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, check=False, env={**os.environ, **extra})
        wall = time.perf_counter() - start
        if done.returncode not in (0, 1):
            print(done.stderr.decode()[-500:])
        lines = done.stdout.decode().count("\n")
        print(f"  casebridge escalate --dry-run, {label}: {wall:6.2f} s wall, exit {done.returncode}, {lines:,} lines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--posted", type=float, default=0.99, help="share already in the queue (default 0.99)")
    parser.add_argument("--old-limit", type=int, default=100000, help="run the old path up to this size")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI dry run at the largest size")
    parser.add_argument("--dir", help="work here instead of a temporary directory")
    parser.add_argument("--baseline", metavar="DIR", help="also run the CLI dry run with DIR/casebridge (old code)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        os.chmod(root, 0o700)
        print(f"escalation benchmark: {', '.join(f'{n:,}' for n in args.cases)} cases, now {NOW:%Y-%m-%d %H:%M}Z")
        last = None
        for count in args.cases:
            last = run_size(root, count, args)
        if last is not None and not args.no_cli:
            print(f"\n{args.cases[-1]:,} cases through the CLI:")
            cli_dry_run(root, last[0], args.baseline)


if __name__ == "__main__":
    main()

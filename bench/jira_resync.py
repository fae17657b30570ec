"""Benchmark: the Jira connector driving sync over 10,000 cases in the fake Jira (Cloud and DC).

The fake Jira runs in a child process (so tracemalloc's peak is the sync side only, and server and
client get a core each), seeded with N cases whose histories run through the workflow. Then, with a
fresh connector each time (so serverInfo and /field are counted):

1. first sync: ``SyncJob`` (as ``casebridge sync --full`` runs it, with a state store and an audit log)
   computes every case's clocks and writes the SLA fields (all empty yet); after each write it reads the
   case back once (its new ``updated``, so the next pass needs no history request);
2. no-change resync: the same full pass again at the same ``now``: it must write nothing and send at most
   the search pages it needs + 2 requests (serverInfo, /field);
3. baseline, in the same run: the resync a connector without the changelog in its search would need
   (one history request per case), measured on a sample and scaled to N.

Prints figures; asserts nothing about time.

    .venv/bin/python bench/jira_resync.py [--cases 10000] [--mode both|cloud|datacenter]
        [--validate-every 1] [--baseline-sample 500]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from casebridge.connectors.jira import JiraConnector, JiraFieldNames
from casebridge.connectors.jira.schema import needed_fields
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import Case
from tests.factories import LAWFUL_KINDS
from tests.jira_fixtures import CLOUD_TOKEN, DC_PAT, EMAIL, build_jira
from tests.jira_server import JiraServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KINDS = LAWFUL_KINDS
PATH = ["Legal review", "Approved", "Submitted to provider", "Acknowledged"]
PAGE = 100


# -- the server side (child process) -------------------------------------------------------------------
def seed(server: JiraServer, n: int, rng: random.Random) -> None:
    workflow = load_workflow("lawful-access")
    build_jira(server, workflow)
    state = server.state
    ids = {
        spec.role: state.add_custom_field(spec.name, spec.type).id
        for spec in needed_fields(JiraFieldNames(), workflow, liaison=True)
    }
    project = state.projects["CASE"]
    for i in range(n):
        request_type, legal_basis = KINDS[i % len(KINDS)]
        start = NOW - timedelta(minutes=rng.randrange(60, 120 * 24 * 60))
        steps, at = [], start
        for status in PATH[: rng.randrange(0, len(PATH) + 1)]:
            at += timedelta(minutes=rng.randrange(1, 3 * 24 * 60))
            if at >= NOW:
                break
            steps.append((status, at))
        submitted = next((t for s, t in steps if s == "Submitted to provider"), None)
        case = Case(
            reference=f"FIA-CCW-2026-{i:05d}",
            title=f"Bench request {i}",
            provider="Example Provider",
            request_type=request_type,
            legal_basis=legal_basis,
            timezone="Asia/Karachi",
            submitted_at=submitted.replace(microsecond=0) if submitted else None,
        )
        text = json.dumps(case.to_record(), sort_keys=True)
        data: Any = text
        if server.mode == "cloud":
            data = {
                "type": "doc",
                "version": 1,
                "content": [{"type": "codeBlock", "content": [{"type": "text", "text": text}]}],
            }
        values = {"summary": case.title, ids["reference"]: case.reference, ids["case_data"]: data}
        issue = state.new_issue(project, "Task", values, start)
        for status, when in steps:
            state.move(issue, status, when)


def serve(conn: Any, mode: str, n: int, validate_every: int) -> None:
    server = JiraServer(mode, validate_every=validate_every, now=lambda: NOW).start()
    seed(server, n, random.Random(7))
    conn.send(server.url)
    while True:
        command = conn.recv()
        if command == "counts":
            counter = server.counter
            conn.send(
                (counter.snapshot(), counter.writes, counter.total, list(server.mismatches[:3]), len(server.mismatches))
            )
        elif command == "reset":
            server.counter.reset()
            conn.send(None)
        else:
            server.stop()
            conn.send(None)
            return


# -- the client side ------------------------------------------------------------------------------------
def connector(url: str, mode: str) -> JiraConnector:
    os.environ["CB_BENCH_JIRA_TOKEN"] = CLOUD_TOKEN if mode == "cloud" else DC_PAT
    raw: dict[str, Any] = {"url": url, "project": "CASE", "liaison_project": "NCB", "page_size": PAGE}
    if mode == "cloud":
        raw.update(deployment="cloud", email=EMAIL, api_token={"env": "CB_BENCH_JIRA_TOKEN"})
    else:
        raw.update(deployment="datacenter", personal_access_token={"env": "CB_BENCH_JIRA_TOKEN"})
    return JiraConnector(JiraConnector.config_model.model_validate(raw), load_workflow("lawful-access"))


def measured(conn: Any, label: str, work: Any) -> dict[str, Any]:
    conn.send("reset")
    conn.recv()
    tracemalloc.start()
    started = time.perf_counter()
    outcome = work()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    conn.send("counts")
    by_route, writes, total, mismatches, n_mismatches = conn.recv()
    return {
        "label": label,
        "seconds": seconds,
        "peak_mib": peak / 2**20,
        "requests": total,
        "writes": writes,
        "by_route": by_route,
        "outcome": outcome,
        "mismatches": mismatches,
        "n_mismatches": n_mismatches,
    }


def sync_pass(url: str, mode: str, folder: Path) -> Any:
    """A full pass (every case listed and reconciled) with the state store and audit log in ``folder``."""
    jira = connector(url, mode)
    store, audit = StateStore(folder / "state.db"), AuditLog(folder / "state.audit.db")
    try:
        report = SyncJob(jira, jira.workflow, store, audit, SyncOptions(full=True)).run(NOW)
    finally:
        store.close()
        audit.close()
        jira.close()
    plan, result = report.plan, report.result
    return {"cases": plan.evaluated, "actions": len(plan.actions), "failures": len(result.failures)}


def baseline_pass(url: str, mode: str, sample: int) -> Any:
    """What a resync costs when history is read per case (no changelog in the search)."""
    jira = connector(url, mode)
    try:
        listed = list(islice(jira.list_cases(), sample))
        for tracked in listed:
            jira.read_history(tracked.key)
    finally:
        jira.close()
    return {"cases": len(listed)}


def report(mode: str, n: int, runs: list[dict[str, Any]]) -> None:
    pages = math.ceil(n / PAGE)
    print(f"\n== {mode}: {n} cases, page size {PAGE} -> {pages} search pages")
    for run in runs:
        print(
            f"-- {run['label']}: {run['seconds']:.1f} s, {run['requests']} requests, {run['writes']} writes, "
            f"peak {run['peak_mib']:.1f} MiB (tracemalloc, client side), outcome {run['outcome']}"
        )
        for route, count in run["by_route"].items():
            print(f"     {count:6d}  {route}")
        if run["n_mismatches"]:
            print(f"   !! {run['n_mismatches']} OpenAPI mismatches, e.g. {run['mismatches']}")
    resync, base = runs[1], runs[2]
    budget = pages + 2
    verdict = "within" if resync["requests"] <= budget and resync["writes"] == 0 else "OVER"
    print(
        f"resync: {resync['requests']} requests (budget: {pages} pages + 2 = {budget}: {verdict}), "
        f"{resync['writes']} writes (goal 0)"
    )
    sample = base["outcome"]["cases"] or 1
    per_case = (base["requests"] - 2 - math.ceil(sample / PAGE)) / sample
    naive = pages + 2 + round(per_case * n)
    print(
        f"baseline (history read per case, measured on {sample} cases): ~{naive} requests for {n} cases; "
        f"ratio {naive / max(resync['requests'], 1):.0f}x"
    )


def run_mode(mode: str, n: int, validate_every: int, sample: int) -> None:
    parent, child = mp.get_context("fork").Pipe()
    process = mp.get_context("fork").Process(target=serve, args=(child, mode, n, validate_every), daemon=True)
    seeded = time.perf_counter()
    process.start()
    url = parent.recv()
    print(f"[{mode}] fake Jira seeded with {n} cases in {time.perf_counter() - seeded:.1f} s at {url}")
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as tmp:
        folder = Path(tmp)
        runs = [
            measured(parent, "first sync (writes the SLA fields)", lambda: sync_pass(url, mode, folder)),
            measured(parent, "no-change resync", lambda: sync_pass(url, mode, folder)),
            measured(parent, f"baseline resync sample ({sample} cases)", lambda: baseline_pass(url, mode, sample)),
        ]
    parent.send("stop")
    parent.recv()
    process.join(timeout=10)
    report(mode, n, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--mode", choices=["both", "cloud", "datacenter"], default="both")
    parser.add_argument("--validate-every", type=int, default=1, help="check every Nth request/response (0: none)")
    parser.add_argument("--baseline-sample", type=int, default=500)
    args = parser.parse_args()
    for mode in ("cloud", "datacenter") if args.mode == "both" else (args.mode,):
        run_mode(mode, args.cases, args.validate_every, min(args.baseline_sample, args.cases))


if __name__ == "__main__":
    main()

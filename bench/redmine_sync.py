"""Benchmark: the first sync of N cases into the real Redmine, against a bare python-redmine loop.

    .venv/bin/python -m bench.redmine_sync [--cases 1000] [--connector]

"First sync" is what a user runs: ``casebridge intake FILE`` then ``casebridge sync``, i.e.
``workflows.intake.plan_intake`` + ``apply_intake`` (with the audit log and the sync state store, as the
CLI passes them) and then one ``sync.SyncJob`` pass under the run lock, each with a fresh connector (the
CLI starts one per command: both pay their schema look-ups). The baseline is python-redmine creating the
same issues (same status, case fields and SLA fields; payloads built before the clock starts) and
nothing else. Every run starts from the same freshly set-up database (tests/redmine_fixtures.py).

Then a no-change resync as ``casebridge sync`` runs it (watermark pass) and as ``sync --full``: requests
per case. ``--connector`` also times the connector alone (``create_cases`` with the SLA fields).
The machine is shared, so the baseline is the mean of a bare run before and one after the pipeline
(this cancels a linear drift in load). Prints figures; never passes or fails on time.
Goal from issue 3: time ratio pipeline / bare <= 1.15.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redminelib import Redmine

from casebridge.app.intake import apply_intake, plan_intake
from casebridge.connectors.redmine.mapping import case_field_values, description_markdown, sla_field_values
from casebridge.connectors.redmine.text import render
from casebridge.state.audit import AuditLog
from casebridge.state.lock import RunLock, lock_path_for
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions, SyncReport
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import Case
from casebridge.workflows.intake import IntakeRow, predicted_sla
from tests.redmine_fixtures import prepare_server, server_answers, stop_server

WORKFLOW = load_workflow("lawful-access")
STATES = ("draft", "submitted", "acknowledged", "awaiting_requester")


def make_rows(n: int, now: datetime) -> list[IntakeRow]:
    rows = []
    for i in range(1, n + 1):
        case = Case(
            reference=f"BENCH-{i:05d}",
            title=f"Subscriber data for account {i}",
            provider="Meta Platforms",
            request_type="subscriber",
            legal_basis="voluntary",
            court_order_ref=f"CO-{i}",
            submitted_at=now - timedelta(hours=i % 500),
            facts=f"Fraud case {i}: *urgent*",
            timezone="Asia/Karachi",
        )
        rows.append(IntakeRow(where=f"bench:{i}", case=case, state=STATES[i % len(STATES)], state_since=None))
    return rows


class Requests:
    """Counts the requests a requests.Session sends (response hook)."""

    def __init__(self) -> None:
        self.count = 0

    def watch(self, session: Any) -> None:
        session.hooks["response"].append(self._hook)

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return response


def bare_loop(server: Any, rows: list[IntakeRow], now: datetime) -> tuple[float, int]:
    """The baseline: python-redmine creating the same issues, nothing else."""
    probe = server.connector()
    schema, clocks = probe.schema, set(WORKFLOW.clocks)
    status_of = probe._status_of_state  # state -> Redmine status name, as configured
    payloads = [
        dict(
            project_id=schema.project_id,
            tracker_id=schema.tracker_id,
            status_id=schema.status_ids[status_of[r.state or WORKFLOW.initial]],
            subject=r.case.title,
            description=render(description_markdown(r.case), "textile"),
            custom_fields=case_field_values(r.case, schema.fields)
            + sla_field_values(predicted_sla(r, WORKFLOW, now, created_at=now), schema.fields, clocks),
        )
        for r in rows
    ]
    probe.close()
    redmine = Redmine(server.url, key=server.admin_key)
    counter = Requests()
    counter.watch(redmine.engine.session)
    start = time.perf_counter()
    for payload in payloads:
        redmine.issue.create(**payload)
    return time.perf_counter() - start, counter.count


def sync_pass(server: Any, state_dir: Path, counter: Requests, *, full: bool = False) -> SyncReport:
    """``casebridge sync`` in-process: run lock, state store, audit log, a fresh connector, SyncJob."""
    state = state_dir / "state.db"
    with RunLock(lock_path_for(state)):
        conn = server.connector()
        counter.watch(conn.client.engine.session)
        store, audit = StateStore(state), AuditLog(state_dir / "state.audit.db")
        try:
            return SyncJob(conn, WORKFLOW, store, audit, SyncOptions(full=full)).run(datetime.now(UTC))
        finally:
            store.close()
            audit.close()
            conn.close()


class Phases:
    """Requests and seconds per phase, each since the previous mark."""

    def __init__(self, counter: Requests) -> None:
        self.counter = counter
        self.marks: dict[str, tuple[int, float]] = {}
        self._count, self._at = counter.count, time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = (self.counter.count - self._count, now - self._at)
        self._count, self._at = self.counter.count, now


def pipeline(server: Any, rows: list[IntakeRow]) -> tuple[float, dict[str, tuple[int, float]], list[str]]:
    """intake then sync as the CLI runs them; (seconds of the first sync, (requests, seconds) per phase,
    notes)."""
    state_dir = Path(tempfile.mkdtemp(prefix="casebridge-bench-"))
    counter = Requests()
    phases = Phases(counter)
    start = time.perf_counter()
    conn = server.connector()  # `casebridge intake`: a fresh connector, cold
    counter.watch(conn.client.engine.session)
    actions = plan_intake(rows, conn)
    phases.mark("intake: schema + bulk lookup")
    store, audit = StateStore(state_dir / "state.db"), AuditLog(state_dir / "state.audit.db")
    try:
        created = apply_intake(actions, conn, audit, now=datetime.now(UTC), store=store)
    finally:
        store.close()
        audit.close()
        conn.close()
    phases.mark("intake: re-check + create with SLA fields")
    first = sync_pass(server, state_dir, counter)  # `casebridge sync`
    phases.mark("first sync: schema + listing")
    elapsed = time.perf_counter() - start
    assert len(created) == len(rows) and first.exit_code == 0, first.result.failures
    notes = [
        f"first sync: {first.history_reads} history reads, {len(first.result.applied)} SLA writes, "
        f"{first.listed} cases listed"
    ]
    again = sync_pass(server, state_dir, counter)
    phases.mark("no-change resync (watermark pass)")
    full = sync_pass(server, state_dir, counter, full=True)
    phases.mark("no-change sync --full (rebuilds the store)")
    for name, report in (("resync", again), ("sync --full", full)):
        notes.append(f"{name}: {report.history_reads} history reads, {len(report.result.applied)} SLA writes")
    return elapsed, phases.marks, notes


def connector_only(server: Any, rows: list[IntakeRow], now: datetime) -> tuple[float, int]:
    conn = server.connector()
    counter = Requests()
    counter.watch(conn.client.engine.session)
    sla = {r.case.reference: predicted_sla(r, WORKFLOW, now, created_at=now) for r in rows}
    states = {r.case.reference: r.state or WORKFLOW.initial for r in rows}
    start = time.perf_counter()
    created = list(conn.create_cases([r.case for r in rows], sla=sla, states=states))
    elapsed = time.perf_counter() - start
    assert len({t.key for t in created}) == len(rows)
    conn.close()
    return elapsed, counter.count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--connector", action="store_true", help="also time create_cases alone")
    args = parser.parse_args()

    def fail(reason: str) -> None:
        raise SystemExit(f"redmine_sync: Redmine unavailable: {reason}")

    was_running = server_answers()
    server = prepare_server(fail)
    n = args.cases
    rows = make_rows(n, datetime.now(UTC))
    server.reset()
    bare1_s, bare_req = bare_loop(server, rows, datetime.now(UTC))
    server.reset()
    pipe_s, phases, notes = pipeline(server, rows)
    server.reset()
    bare2_s, _ = bare_loop(server, rows, datetime.now(UTC))
    bare_s = (bare1_s + bare2_s) / 2
    conn_s = conn_req = 0
    if args.connector:
        server.reset()
        conn_s, conn_req = connector_only(server, rows, datetime.now(UTC))
    server.reset()

    first_req = sum(v for k, (v, _s) in phases.items() if not k.startswith("no-change"))
    print(f"Redmine first sync of {n} cases (puma -t 1:1, SQLite, this machine)")
    print(
        f"  bare python-redmine loop        : {bare_s:7.2f} s  {bare_req:5d} requests ({bare_req / n:.3f}/case)"
        f"  [runs before/after: {bare1_s:.2f} s, {bare2_s:.2f} s]"
    )
    print(f"  intake + sync (the CLI's path)  : {pipe_s:7.2f} s  {first_req:5d} requests ({first_req / n:.3f}/case)")
    print(f"  ratio pipeline / bare           : {pipe_s / bare_s:.3f}  (goal <= 1.15)")
    for phase, (count, seconds) in phases.items():
        print(f"    {phase:44s}: {count:5d} requests ({count / n:.4f}/case) {seconds:7.2f} s")
    for note in notes:
        print(f"    {note}")
    if args.connector:
        print(
            f"  connector create_cases alone    : {conn_s:7.2f} s  {conn_req:5d} requests, ratio {conn_s / bare_s:.3f}"
        )
    if not was_running:
        stop_server(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

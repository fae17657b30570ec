"""Benchmark: first sync of N cases into the real Redmine, against a bare python-redmine loop.

    .venv/bin/python -m bench.redmine_sync [--cases 1000]

Both runs start from the same freshly set-up database (tests/redmine_fixtures.py) and create the same
issues with the same fields (payloads are built before the clock starts). The connector run is cold:
it includes its schema look-ups, the listing of existing references and every verification. Then a
no-change resync: cases updated since the watermark, and a full listing.

Two "first syncs" are measured. (1) The connector driven directly: ``create_cases`` with the SLA fields
in the same request (what a sync can achieve). (2) The pipeline as main has it today: intake
(``workflows.intake.plan_intake`` + ``apply_intake``) then ``sync.run_sync``; its request counts show
where the requests go (per-case lookups, one history read and one SLA write per case).
Prints figures; never passes or fails on time. Goal from issue 3: time ratio <= 1.15.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redminelib import Redmine

from connectors.redmine_mapping import case_field_values, description_markdown, sla_field_values
from connectors.redmine_text import render
from tests.redmine_fixtures import prepare_server, server_answers, stop_server
from workflows.cases import Case, ClockFields, SlaFields

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def make_cases(n: int) -> tuple[list[Case], dict[str, SlaFields]]:
    cases, sla = [], {}
    for i in range(1, n + 1):
        case = Case(
            reference=f"BENCH-{i:05d}",
            title=f"Subscriber data for account {i}",
            provider="Meta Platforms",
            request_type="subscriber",
            legal_basis="voluntary",
            court_order_ref=f"CO-{i}",
            submitted_at=NOW - timedelta(hours=i),
            facts=f"Fraud case {i}: *urgent*",
            timezone="Asia/Karachi",
        )
        cases.append(case)
        due = case.submitted_at + timedelta(days=30)  # type: ignore[operator]
        sla[case.reference] = SlaFields(clocks={"followup": ClockFields(due, due - timedelta(days=10), "running")})
    return cases, sla


class Counter:
    def __init__(self, session) -> None:
        self.count = 0
        session.hooks["response"].append(self._hook)

    def _hook(self, response, *args, **kwargs):
        self.count += 1
        return response


def bare_loop(server, conn, cases: list[Case], sla: dict[str, SlaFields]) -> tuple[float, int]:
    """The baseline: python-redmine creating the same issues, nothing else."""
    schema = conn.schema
    clocks = set(conn.workflow.clocks)
    payloads = [
        dict(
            project_id=schema.project_id,
            tracker_id=schema.tracker_id,
            status_id=schema.status_ids["Draft"],
            subject=c.title,
            description=render(description_markdown(c), "textile"),
            custom_fields=case_field_values(c, schema.fields)
            + sla_field_values(sla[c.reference], schema.fields, clocks),
        )
        for c in cases
    ]
    redmine = Redmine(server.url, key=server.admin_key)
    counter = Counter(redmine.engine.session)
    start = time.perf_counter()
    for payload in payloads:
        redmine.issue.create(**payload)
    return time.perf_counter() - start, counter.count


def connector_first_sync(server, cases, sla) -> tuple[float, int, object]:
    conn = server.connector()
    counter = Counter(conn.client.engine.session)
    start = time.perf_counter()
    created = list(conn.create_cases(cases, sla=sla))
    elapsed = time.perf_counter() - start
    assert len({t.key for t in created}) == len(cases)
    return elapsed, counter.count, (conn, created)


def pipeline_first_sync(server, cases) -> tuple[float, dict[str, int]]:
    """Intake then sync as main's CLI runs them; requests counted per phase."""
    import sync
    from workflows import load_workflow
    from workflows.intake import IntakeRow, apply_intake, plan_intake

    conn = server.connector()
    counter = Counter(conn.client.engine.session)
    rows = [IntakeRow(where=f"bench:{i}", case=c, state=None, state_since=None) for i, c in enumerate(cases)]
    phases: dict[str, int] = {}
    start = time.perf_counter()
    actions = plan_intake(rows, conn)
    phases["intake plan (find_case per row)"] = counter.count
    apply_intake(actions, conn)
    phases["intake apply (create_case)"] = counter.count - sum(phases.values())
    _plan, result = sync.run_sync(conn, load_workflow("lawful-access"), datetime.now(UTC))
    phases["sync (list + history + SLA writes)"] = counter.count - sum(phases.values())
    elapsed = time.perf_counter() - start
    assert result.ok, result.failures
    again, _ = sync.run_sync(conn, load_workflow("lawful-access"), datetime.now(UTC))
    phases["no-change sync pass (full, no state store)"] = counter.count - sum(phases.values())
    assert again.actions == []
    return elapsed, phases


def resync(conn, created) -> tuple[int, int, int, int]:
    """No change since the first sync: (requests, writes) for a watermark pass and for a full pass."""
    held = {t.key: t.sla for t in created}
    watermark = max(t.updated_at for t in created)
    counter = Counter(conn.client.engine.session)
    writes = 0
    for tracked in conn.list_cases(watermark):
        if tracked.sla != held[tracked.key]:
            conn.set_sla_fields(tracked.key, held[tracked.key])
            writes += 1
    incremental = counter.count
    for tracked in conn.list_cases():
        if tracked.sla != held[tracked.key]:
            writes += 1
    return incremental, writes, counter.count - incremental, writes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--no-pipeline", dest="pipeline", action="store_false", help="skip intake + sync.py")
    args = parser.parse_args()

    def fail(reason: str) -> None:
        raise SystemExit(f"redmine_sync: Redmine unavailable: {reason}")

    was_running = server_answers()
    server = prepare_server(fail)
    cases, sla = make_cases(args.cases)
    probe = server.connector()
    # bare, connector, bare again: the machine is shared, so the baseline is the mean of the runs
    # either side of the connector's (this cancels a linear drift in load)
    server.reset()
    bare1_s, bare_req = bare_loop(server, probe, cases, sla)
    server.reset()
    conn_s, conn_req, (conn, created) = connector_first_sync(server, cases, sla)
    inc_req, inc_writes, full_req, _ = resync(conn, created)
    server.reset()
    bare2_s, _ = bare_loop(server, probe, cases, sla)
    bare_s = (bare1_s + bare2_s) / 2
    server.reset()
    pipe_s, phases = pipeline_first_sync(server, cases) if args.pipeline else (0.0, {})
    server.reset()
    n = args.cases
    print(f"Redmine first sync of {n} cases (puma -t 1:1, SQLite, this machine)")
    print(
        f"  bare python-redmine loop : {bare_s:7.2f} s  {bare_req:5d} requests  ({bare_req / n:.3f}/case)"
        f"  [runs before/after: {bare1_s:.2f} s, {bare2_s:.2f} s]"
    )
    print(f"  connector create_cases   : {conn_s:7.2f} s  {conn_req:5d} requests  ({conn_req / n:.3f}/case)")
    print(f"  ratio connector / bare   : {conn_s / bare_s:.3f}  (goal <= 1.15)")
    print(f"  no-change resync since watermark: {inc_req} requests ({inc_req / n:.4f}/case), {inc_writes} writes")
    print(f"  no-change full resync (list all): {full_req} requests ({full_req / n:.4f}/case), 0 writes")
    if phases:
        total = sum(v for k, v in phases.items() if not k.startswith("no-change"))
        print(
            f"  main's intake + sync.run_sync: {pipe_s:7.2f} s  {total:5d} requests ({total / n:.3f}/case), "
            f"ratio {pipe_s / bare_s:.3f}"
        )
        for phase, count in phases.items():
            print(f"    {phase:45s}: {count:5d} requests ({count / n:.3f}/case)")
    if not was_running:
        stop_server(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

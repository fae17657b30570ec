"""Benchmark: `casebridge intake` at agency scale (issue 16), old against new in the same run.

For each size it writes one CSV file of N distinct cases (the states, request types and identifiers an
intake file has) and runs the real CLI on it into a fresh embedded tracker, once with this checkout and
once with the baseline ref's code (default ``main``, unpacked with ``git archive`` and put first on
``sys.path``), each in its own process: wall time, CPU time (user + system) and peak RSS (``wait4``)
of that process (on a shared machine the CPU time is the steadier figure), the cases
the tracker holds afterwards and the audit records written. The machine is shared: read the ratios.

Then, against the fake Jira (tests/jira_server, every request checked against Atlassian's OpenAPI
documents), the requests per created case of an intake, the requests of a rerun (nothing to create),
and a resume: an intake stopped after half its creates, then rerun, creates only what is missing.

    .venv/bin/python bench/intake.py                          # 1k and 10k; the fake Jira with 100 cases
    .venv/bin/python bench/intake.py --sizes 1000 10000 100000 --old-max 10000
    .venv/bin/python bench/intake.py --dir /var/tmp --jira 0  # on that disk; no Jira pass
    .venv/bin/python bench/intake.py --shared-ip --sizes 2000 16000 --old-max 16000 --jira 0

The old code at 100,000 cases takes minutes on disk (issue 16: about 200 s); ``--old-max`` (default
10,000) bounds the sizes it runs at.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HEADER = "reference,title,provider,request_type,legal_basis,submitted_at,state,state_since,identifiers"
KINDS = [("subscriber", "voluntary"), ("preservation", "us-2703f"), ("traffic", "voluntary")]
PROVIDERS = ["Meta", "Google", "X", "Microsoft"]
STATES = ["submitted", "draft", "acknowledged", "legal_review"]


def write_csv(path: Path, count: int, prefix: str = "FIA-B", also: str = "") -> Path:
    """``count`` distinct cases; ``also`` (e.g. ``;ip:198.51.100.7``) is added to every row's identifiers."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER.split(","))
        for i in range(count):
            request_type, basis = KINDS[i % len(KINDS)]
            state = STATES[i % len(STATES)]
            since = NOW - timedelta(hours=1 + i % 500)
            submitted = (since - timedelta(days=1)).isoformat() if state in ("submitted", "acknowledged") else ""
            ident = f"email:s{i}@example.com;ip:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}{also}"
            ref, provider = f"{prefix}-{i:07d}", PROVIDERS[i % 4]
            out.writerow(
                [ref, f"Request {i}", provider, request_type, basis, submitted, state, since.isoformat(), ident]
            )
    return path


def baseline_tree(ref: str, into: Path) -> Path:
    """``ref``'s code as an importable ``casebridge`` under ``into`` (put first on sys.path)."""
    target = into / "casebridge"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return into


def filesystem(path: Path) -> str:
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if str(path.resolve()).startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


def run_cli(code_root: Path | None, folder: Path, args: list[str]) -> tuple[int, float, float, float]:
    """(exit code, wall seconds, CPU seconds, peak RSS in MB) of one CLI process; ``code_root`` first
    on sys.path."""
    boot = "import sys\n"
    if code_root is not None:
        boot += f"sys.path.insert(0, {str(code_root)!r})\n"
    boot += "from casebridge.cli import main\nsys.exit(main())\n"
    started = time.perf_counter()
    with open(folder / "out.txt", "w") as out, open(folder / "err.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", boot, *args], cwd=folder, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return proc.returncode, time.perf_counter() - started, cpu, usage.ru_maxrss / 1024


def one_intake(label: str, code_root: Path | None, work: Path, data: Path, count: int) -> tuple[float, float, float]:
    folder = work / label
    folder.mkdir()
    (folder / "casebridge.toml").write_text(
        'workflow = "lawful-access"\nstate = "state.db"\n\n[tracker]\nconnector = "local"\npath = "cases.db"\n'
    )
    code, seconds, cpu, rss = run_cli(code_root, folder, ["-q", "intake", str(data), "--now", NOW.isoformat()])
    with sqlite3.connect(folder / "cases.db") as db:
        held = db.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    with sqlite3.connect(folder / "state.audit.db") as db:
        records = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    problem = "" if code == 0 and held == count else f"  !! exit {code}, {held} cases held"
    print(
        f"  {label:<5} {seconds:8.2f} s wall {cpu:7.2f} s CPU  {rss:7.1f} MB peak RSS  {held:>7} cases"
        f"  {records:>7} audit records{problem}"
    )
    shutil.rmtree(folder)
    return seconds, cpu, rss


def embedded(args: argparse.Namespace, work: Path) -> None:
    print(f"== embedded tracker; files on {work} ({filesystem(work)}); baseline: {args.baseline}")
    old_root = baseline_tree(args.baseline, work / "baseline")
    for count in args.sizes:
        data = write_csv(work / f"cases-{count}.csv", count, also=";ip:198.51.100.7" if args.shared_ip else "")
        print(
            f"-- {count:,} cases"
            + (", every one naming 198.51.100.7 (an overlap warning each)" if args.shared_ip else "")
        )
        new_s, new_cpu, new_mb = one_intake("new", None, work, data, count)
        if count > args.old_max:
            print(f"  old   skipped (over --old-max {args.old_max})")
            continue
        old_s, old_cpu, old_mb = one_intake("old", old_root, work, data, count)
        print(f"  new/old: wall {new_s / old_s:.3f}x, CPU {new_cpu / old_cpu:.3f}x, peak RSS {new_mb / old_mb:.2f}x")


def jira(args: argparse.Namespace) -> None:
    from tests.jira_server import JiraServer, validate

    problem = validate.documents_problem()
    if problem is not None:
        print(f"\n== fake Jira skipped: {problem}")
        return
    print(f"\n== fake Jira (Cloud), {args.jira} cases: requests per created case")
    server = JiraServer("cloud", now=lambda: NOW).start()
    try:
        connector = jira_connector(server)
        made = jira_pass(server, connector, args.jira, "intake", stop_after=None)
        again = jira_pass(server, connector, args.jira, "rerun (all exist)", stop_after=None)
        assert again == 0, "a rerun created cases"
        half = args.jira // 2
        jira_pass(server, connector, args.jira, "stopped after half", stop_after=half, prefix="FIA-R")
        resumed = jira_pass(server, connector, args.jira, "resumed", stop_after=None, prefix="FIA-R")
        print(f"  the resumed run created {resumed} (expected {args.jira - half}); first run created {made}")
        if server.mismatches:
            print(f"!! {len(server.mismatches)} requests/answers off Atlassian's API: {server.mismatches[:2]}")
    finally:
        server.stop()


def jira_connector(server: object) -> object:
    from casebridge.connectors.jira import JiraConnector
    from casebridge.workflows import load_workflow
    from tests.jira_fixtures import CLOUD_TOKEN, build_jira, connector_config

    workflow = load_workflow("lawful-access")
    build_jira(server, workflow)  # type: ignore[arg-type]
    os.environ["CB_TEST_JIRA_TOKEN"] = CLOUD_TOKEN
    config = JiraConnector.config_model.model_validate(connector_config(server))  # type: ignore[arg-type]
    connector = JiraConnector(config, workflow)
    connector.setup(apply=True)
    return connector


class Stop(Exception):
    """Stands in for a kill: raised by the create that would exceed the budget."""


def jira_pass(
    server: object, connector: object, count: int, label: str, *, stop_after: int | None, prefix: str = "FIA-J"
) -> int:
    from casebridge.app.intake import apply_intake, plan_intake
    from casebridge.workflows.intake import read_intake_file

    folder = Path(tempfile.mkdtemp(prefix="cb-bench-jira-"))
    rows = read_intake_file(write_csv(folder / "jira.csv", count, prefix), connector.workflow, NOW)  # type: ignore[attr-defined]
    server.counter.reset()  # type: ignore[attr-defined]
    tracker = Budget(connector, stop_after)
    started = time.perf_counter()
    with contextlib.suppress(Stop):
        apply_intake(plan_intake(rows, tracker), tracker, now=NOW)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    shutil.rmtree(folder)
    routes = Counter(server.counter.snapshot())  # type: ignore[attr-defined]
    total = sum(routes.values())
    per = f"{total / tracker.created:.1f} per created case" if tracker.created else "nothing created"
    print(f"  {label:<20} created {tracker.created:>5}  requests {total:>6} ({per})  {seconds:6.1f} s")
    if tracker.created and label == "intake":
        for route, n in routes.most_common():
            print(f"      {n / tracker.created:6.2f}  {route}")
    return tracker.created


class Budget:
    """The connector, stopping (like a kill) before the create past ``stop_after``; counts creates."""

    def __init__(self, inner: object, stop_after: int | None) -> None:
        self.inner, self.stop_after, self.created = inner, stop_after, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def create_cases(self, cases, **kwargs):  # type: ignore[no-untyped-def]
        cases = list(cases)
        allowed = cases if self.stop_after is None else cases[: max(self.stop_after - self.created, 0)]
        for tracked in self.inner.create_cases(allowed, **kwargs):  # type: ignore[attr-defined]
            self.created += 1
            yield tracked
        if len(allowed) < len(cases):
            raise Stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--old-max", type=int, default=10000, help="largest size the baseline runs at")
    parser.add_argument("--baseline", default="main", help="git ref of the old code (default main)")
    parser.add_argument("--dir", type=Path, default=None, help="where the trackers are written (default: TMPDIR)")
    parser.add_argument(
        "--shared-ip", action="store_true", help="every row also names one address (a VPN exit): a warning per row"
    )
    parser.add_argument("--jira", type=int, default=100, help="cases for the fake Jira pass (0: skip)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cb-bench-intake-", dir=args.dir))
    try:
        embedded(args, work)
        if args.jira:
            jira(args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

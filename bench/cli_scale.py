"""Benchmark: the read-only commands through the CLI, this tree against an older one, in one run.

For an embedded tracker of N cases (built as bench/escalate.py builds it: every case submitted weeks
ago, so its clocks have breached; 99 % of the escalations already in the liaison queue) it runs, each
in a child process, alternating NEW (this tree) and OLD (``--baseline DIR``: DIR/casebridge is an older
checkout, e.g. ``git archive main | tar -x -C DIR/casebridge``):

- ``casebridge status`` on an empty tracker and ``casebridge --help`` (start-up);
- ``casebridge status --json`` over the N cases;
- ``casebridge escalate --dry-run`` over the N cases;
- ``casebridge report`` over the N cases, grouped all five ways (provider, legal basis, request type,
  agency, month);

and prints the median wall time, CPU time (user + system: what the machine's other load does not
inflate) and peak RSS of each, their ratio, and whether NEW printed the very same bytes as OLD.
Prints figures; never asserts on time.

    .venv/bin/python bench/cli_scale.py --baseline DIR [--cases 100000] [--runs 3] [--only report ...]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import escalate as fixture  # bench/escalate.py: the tracker builder

NOW = fixture.NOW.isoformat()
COMMANDS = ["startup", "status", "escalate", "report"]
BY_ALL = [arg for g in ("provider", "legal_basis", "request_type", "agency", "month") for arg in ("--by", g)]
CODE = "import sys; from casebridge.cli import main; sys.argv[0] = 'casebridge'; main()"


def run(args: list[str], extra_env: dict[str, str], scratch: Path) -> tuple[float, float, int, str]:
    """(wall s, cpu s, peak RSS KB, sha256 of stdout) of one child. The child runs under /usr/bin/time:
    a child forked from this (large) process would count this process's memory as its own peak."""
    env = {**os.environ, **extra_env}
    usage = scratch / "usage.txt"
    command = ["/usr/bin/time", "-f", "%M %U %S", "-o", str(usage), sys.executable, "-c", CODE, *args]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    digest = hashlib.sha256()
    assert proc.stdout is not None
    for block in iter(lambda: proc.stdout.read(1 << 20), b""):
        digest.update(block)
    code = proc.wait()
    wall = time.perf_counter() - start
    if code not in (0, 1):
        print(f"  ! exit {code}: {' '.join(args)}")
    rss, user, system = usage.read_text().split()[-3:]
    return wall, float(user) + float(system), int(rss), digest.hexdigest()


def compare(label: str, args: list[str], baseline: str | None, runs: int, scratch: Path) -> None:
    trees = [("new", {"PYTHONPATH": ""})] + ([("old", {"PYTHONPATH": baseline})] if baseline else [])
    got: dict[str, list[tuple[float, float, int, str]]] = {name: [] for name, _ in trees}
    for _ in range(runs):
        for name, env in trees:  # alternating: both see the same machine load
            got[name].append(run(args, env, scratch))
    med = {
        name: (
            statistics.median(r[0] for r in rs),
            statistics.median(r[1] for r in rs),
            max(r[2] for r in rs) / 1024,
            {r[3] for r in rs},
        )
        for name, rs in got.items()
    }
    new = med["new"]
    line = f"{label:<34} new {new[0]:6.2f} s wall {new[1]:6.2f} s cpu {new[2]:6.0f} MB"
    if "old" in med:
        old = med["old"]
        same = "same output" if new[3] == old[3] and len(new[3]) == 1 else "OUTPUT DIFFERS"
        line += (
            f" | old {old[0]:6.2f} s wall {old[1]:6.2f} s cpu {old[2]:6.0f} MB"
            f" | old/new cpu {old[1] / new[1]:4.2f}x, {same}"
        )
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each command per tree (median)")
    parser.add_argument("--startup-runs", type=int, default=9)
    parser.add_argument("--baseline", metavar="DIR", help="DIR/casebridge is the older tree to compare with")
    parser.add_argument("--dir", help="work here instead of a temporary directory")
    parser.add_argument("--only", action="append", choices=COMMANDS, help="only these (repeatable); default: all")
    args = parser.parse_args()
    only = set(args.only or COMMANDS)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        os.chmod(root, 0o700)
        empty = root / "empty.toml"
        empty.write_text(f'state = "{root}/e.db"\n\n[tracker]\nconnector = "local"\npath = "{root}/none.db"\n')
        config = root / "casebridge.toml"
        config.write_text(f'state = "{root}/s.db"\n\n[tracker]\nconnector = "local"\npath = "{root}/t.db"\n')
        tracker = fixture.build_tracker(root / "t.db", args.cases)
        plan = fixture.plan_for(tracker)
        posted = fixture.mark_posted(tracker, plan, 0.99)
        tracker.close()
        print(f"{args.cases:,} cases, {len(plan):,} escalations planned, {posted:,} already posted; now {NOW}")
        n = f"{args.cases:,} cases"
        runs = {"startup": args.startup_runs}
        listed = [
            ("startup", "--help", ["--help"]),
            ("startup", "status, empty tracker", ["--config", str(empty), "status"]),
            ("status", f"status --json, {n}", ["--config", str(config), "status", "--json", "--now", NOW]),
            ("escalate", f"escalate --dry-run, {n}", ["--config", str(config), "escalate", "--dry-run", "--now", NOW]),
            ("report", f"report, 5 groupings, {n}", ["--config", str(config), "report", "--now", NOW, *BY_ALL]),
        ]
        for command, label, argv in listed:
            if command in only:
                compare(label, argv, args.baseline, runs.get(command, args.runs), root)


if __name__ == "__main__":
    main()

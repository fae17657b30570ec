"""Benchmark: a `casebridge sync` that posts many reminders on an embedded tracker that already holds
comments, at several sizes, through the CLI, this tree against an older one in the same run.

Before it posts a reminder, sync asks the tracker whether the case already carries its marker (a rerun
never posts twice); escalation asks the same. The embedded tracker answered from a table scan of every
comment of every case (no index on the case), so a run posting R reminders over C comments read R x C
rows: quadratic as an agency's tracker fills. Each size gets a fresh copy of a tracker built as
bench/escalate.py builds it, every case turned into a preservation request under 18 U.S.C. 2703(f)
(90 days, reminders 14, 8 and 1 days before), one earlier comment per case, and no state store; the run
is ``casebridge -q sync --now NOW+56d`` (a third of the cases are inside a reminder window), a child
under /usr/bin/time, alternating NEW (this tree) and OLD (``--baseline DIR``: DIR/casebridge is an
older checkout). Prints CPU time per case and the reminders posted; never asserts on time.

    taskset -c 1 .venv/bin/python bench/reminder_sync.py --baseline DIR [--sizes 2000 20000]
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import escalate as fixture  # bench/escalate.py: the tracker builder
from cli_scale import run  # a child under /usr/bin/time: (wall, cpu, peak RSS KB, stdout digest)
from first_sync import arguments, fresh_config, per_size

AT = (fixture.NOW + timedelta(days=56)).isoformat()


def build(path: Path, size: int) -> None:
    fixture.build_tracker(path, size).close()
    db = sqlite3.connect(path)
    with db:
        # a tracker file as casebridge wrote it before the index (this tree builds it when it opens the file)
        db.execute("DROP INDEX IF EXISTS comments_case")
        db.execute(
            "UPDATE cases SET data = json_set(data, '$.request_type', 'preservation', '$.legal_basis', 'us-2703f')"
        )
        db.execute(
            "INSERT INTO comments (case_id, at, markdown) SELECT id, created_at, "
            "'Provider portal ticket opened; the provider asked for the court order number again. ' || reference "
            "FROM cases"
        )
    db.close()


def measure(root: Path, built: Path, tree: str, size: int) -> str:
    """A sync of a fresh copy of ``built``: CPU per case and the reminders it posted."""
    config = fresh_config(root, built)
    wall, cpu, _rss, _digest = run(["--config", str(config), "-q", "sync", "--now", AT], {"PYTHONPATH": tree}, root)
    db = sqlite3.connect(config.parent / "t.db")
    posted = (
        db.execute("SELECT COUNT(*) FROM comments").fetchone()[0] - size  # the earlier comment of each case
    )
    db.close()
    return f"{wall:7.2f} s wall {cpu:7.2f} s cpu = {1000 * cpu / size:5.2f} ms a case, {posted:,} reminders"


def main() -> None:
    args = arguments(__doc__, [2_000, 20_000])
    header = f"sync posting reminders over a tracker with a comment per case, now {AT}; CPU ms a case"
    per_size(args, header, build, measure)


if __name__ == "__main__":
    main()

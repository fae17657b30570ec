"""Benchmark: the first `casebridge sync` of an embedded tracker (every case's SLA fields written, each an
audited write), at several sizes, through the CLI, this tree against an older one in the same run.

A new agency's first run writes every case once. Each size gets a fresh copy of a tracker built as
bench/escalate.py builds it (cases submitted 20-60 days ago) and no state store; the pass runs as cron
runs it (``casebridge -q sync --no-remind``, a child under /usr/bin/time), alternating NEW (this tree)
and OLD (``--baseline DIR``: DIR/casebridge is an older checkout). Prints wall and CPU time per case at
each size: flat per-case figures mean linear (the OLD tree before this benchmark printed the applied
actions by comparing each with every applied one, quadratic). Prints figures; never asserts on time.

    taskset -c 1 .venv/bin/python bench/first_sync.py --baseline DIR [--sizes 1000 5000 20000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import escalate as fixture  # bench/escalate.py: the tracker builder
from cli_scale import run  # a child under /usr/bin/time: (wall, cpu, peak RSS KB, stdout digest)

NOW = fixture.NOW.isoformat()


def fresh_config(root: Path, built: Path) -> Path:
    """A fresh copy of the tracker file ``built`` in root/run, and a config naming it (no state store yet)."""
    work = root / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    shutil.copy(built, work / "t.db")
    config = work / "c.toml"
    config.write_text(f'state = "{work}/s.db"\n\n[tracker]\nconnector = "local"\npath = "{work}/t.db"\n')
    return config


def per_size(
    args: argparse.Namespace,
    header: str,
    build: Callable[[Path, int], None],
    measure: Callable[[Path, Path, str, int], str],
) -> None:
    """For each of ``args.sizes``: builds a tracker (``build(path, size)``) and prints one line of what
    ``measure(root, built, tree, size)`` says of this tree and, with ``args.baseline``, of the older one."""
    trees = [("new", "")] + ([("old", args.baseline)] if args.baseline else [])
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        os.chmod(root, 0o700)
        print(header)
        for size in args.sizes:
            built = root / f"t{size}.db"
            build(built, size)
            line = f"{size:>8,} cases"
            for name, tree in trees:
                line += f" | {name} " + measure(root, built, tree, size)
            print(line, flush=True)
            built.unlink()


def arguments(doc: str | None, sizes: list[int]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=sizes)
    parser.add_argument("--baseline", metavar="DIR", help="DIR/casebridge is the older tree to compare with")
    parser.add_argument("--dir", help="work here instead of a temporary directory (on disk, as a tracker is)")
    return parser.parse_args()


def main() -> None:
    args = arguments(__doc__, [1_000, 5_000, 20_000])

    def measure(root: Path, built: Path, tree: str, size: int) -> str:
        config = fresh_config(root, built)
        args_ = ["--config", str(config), "-q", "sync", "--no-remind", "--now", NOW]
        wall, cpu, rss, _digest = run(args_, {"PYTHONPATH": tree}, root)
        return (
            f"{wall:7.2f} s wall {cpu:7.2f} s cpu {rss / 1024:5.0f} MB"
            f" = {1000 * wall / size:5.2f} / {1000 * cpu / size:5.2f} ms a case"
        )

    header = f"first sync (every case written once), now {NOW}; per case: wall / CPU milliseconds"
    per_size(args, header, lambda path, size: fixture.build_tracker(path, size).close(), measure)


if __name__ == "__main__":
    main()

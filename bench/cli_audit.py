"""Benchmark: a scaling audit of every CLI command that touches many cases, at several sizes (issue 16).

For each size N it writes an intake file of N cases (bench/intake.py's rows; CSV, and the same rows as
JSON) and takes each into a fresh embedded tracker; takes the CSV again (nothing changes); takes the
rows, each also naming one address, into a third tracker (an overlap warning each) and finds that
address. Then it runs on the CSV tracker, in order: the syncs (first, no-op rerun, --dry-run, --json,
--full), status (text, --json, three references), report (text, json, csv, html --out), find, audit
verify and export; then, on a tracker of N cases submitted weeks ago and never synced (bench/escalate.py's
fixture: every clock breached), sync --dry-run (everything to write), escalate (--dry-run, --json, --yes
into the embedded liaison queue, and a rerun with everything posted), a first sync with reminders,
--full, status, report and audit verify over its many records. Each command is a child under
/usr/bin/time (bench/cli_scale.py's ``run``). It prints the CPU time (user + system) per case, less the
start-up (``status`` on an empty tracker, best of 3), at each size, and the ratio largest/smallest: a
flat figure (ratio near 1) is linear; above about 1.5x is suspect. Prints figures; never asserts on time.

    taskset -c 1 .venv/bin/python bench/cli_audit.py [--sizes 2000 20000] [--only sync status ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import escalate as fixture  # bench/escalate.py: a tracker of cases submitted weeks ago (breached)
from cli_scale import run  # a child under /usr/bin/time: (wall, cpu, peak RSS KB, stdout digest)
from intake import NOW, write_csv  # bench/intake.py: the intake rows

BY_ALL = [arg for g in ("provider", "legal_basis", "request_type", "agency", "month") for arg in ("--by", g)]

AT = NOW.isoformat()


def write_json(source: Path, target: Path) -> Path:
    """The CSV rows as a JSON list (identifiers as a list of {type, value})."""
    records = []
    with source.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            record = {k: v for k, v in row.items() if v and k != "identifiers"}
            record["identifiers"] = [
                {"type": t, "value": v} for t, v in (part.split(":", 1) for part in row["identifiers"].split(";"))
            ]
            records.append(record)
    target.write_text(json.dumps(records), encoding="utf-8")
    return target


def write_shared(source: Path, target: Path) -> Path:
    """The CSV rows, each also naming one address (a VPN exit): every row after the first warns."""
    lines = source.read_text(encoding="utf-8").splitlines()
    target.write_text("\n".join([lines[0]] + [f"{line};ip:10.9.9.9" for line in lines[1:]]) + "\n", encoding="utf-8")
    return target


def commands(root: Path, size: int) -> list[tuple[str, str, list[str]]]:
    """(group, label, argv) in the order they run; each argv after ``--config``."""
    refs = [f"FIA-B-{i:07d}" for i in (0, size // 2, size - 1)]
    return [
        ("intake", "intake CSV", ["intake", str(root / "in.csv"), "--now", AT]),
        ("intake", "intake JSON (own tracker)", ["@json", "intake", str(root / "in.json"), "--now", AT]),
        ("intake", "intake CSV again (nothing changes)", ["intake", str(root / "in.csv"), "--now", AT]),
        ("intake", "intake CSV, one IP in every row", ["@shared", "intake", str(root / "shared.csv"), "--now", AT]),
        ("find", "find the IP every row names", ["@shared", "find", "10.9.9.9"]),
        ("sync", "sync, first after intake", ["-q", "sync", "--no-remind", "--now", AT]),
        ("sync", "sync, no-op rerun", ["-q", "sync", "--no-remind", "--now", AT]),
        ("sync", "sync --dry-run (a day later)", ["sync", "--dry-run", "--no-remind", "--now", "2026-12-02T09:00:00Z"]),
        ("sync", "sync --json (a day later)", ["sync", "--json", "--no-remind", "--now", "2026-12-02T09:00:00Z"]),
        ("sync", "sync --full (two days later)", ["sync", "--full", "--now", "2026-12-03T09:00:00Z"]),
        ("status", "status", ["status", "--now", AT]),
        ("status", "status --json", ["status", "--json", "--now", AT]),
        ("status", "status REF REF REF", ["status", *refs, "--now", AT]),
        ("report", "report (text)", ["report", "--now", AT]),
        ("report", "report --format json", ["report", "--format", "json", "--now", AT]),
        ("report", "report --format csv", ["report", "--format", "csv", "--now", AT]),
        ("report", "report --format html --out", ["report", "--format", "html", "--out", str(root / "r.html")]),
        # on the fixture tracker (@esc): every case breached, never synced
        ("sync", "esc: sync --dry-run, all to write", ["@esc", "sync", "--dry-run", "--now", AT]),
        ("sync", "esc: sync --dry-run --json", ["@esc", "sync", "--dry-run", "--json", "--now", AT]),
        ("escalate", "esc: escalate --dry-run", ["@esc", "escalate", "--dry-run", "--now", AT]),
        ("escalate", "esc: escalate --json --dry-run", ["@esc", "escalate", "--json", "--dry-run", "--now", AT]),
        ("escalate", "esc: escalate --yes", ["@esc", "escalate", "--yes", "--now", AT]),
        ("escalate", "esc: escalate --dry-run, all posted", ["@esc", "escalate", "--dry-run", "--now", AT]),
        ("sync", "esc: sync first, with reminders", ["@esc", "sync", "--now", AT]),
        ("sync", "esc: sync --full, no-op", ["@esc", "sync", "--full", "--now", AT]),
        ("status", "esc: status --json", ["@esc", "status", "--json", "--now", AT]),
        ("report", "esc: report, 5 groupings", ["@esc", "report", "--now", AT, *BY_ALL]),
        ("audit", "esc: audit verify", ["@esc", "audit", "verify"]),
        ("find", "find email", ["find", f"s{size // 2}@example.com"]),
        ("find", "find --json ip", ["find", "--json", "10.0.0.7"]),
        ("audit", "audit verify", ["audit", "verify"]),
        ("audit", "audit export jsonl", ["audit", "export", "--format", "jsonl"]),
        ("audit", "audit export csv", ["audit", "export", "--format", "csv"]),
    ]


def configure(root: Path, name: str) -> Path:
    config = root / f"{name}.toml"
    config.write_text(
        f'state = "{root}/{name}-s.db"\naudit = "{root}/{name}-a.db"\n\n'
        f'[tracker]\nconnector = "local"\npath = "{root}/{name}-t.db"\n'
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000])
    parser.add_argument("--only", action="append", help="only these groups (intake always runs)")
    parser.add_argument("--dir", help="work here instead of a temporary directory")
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            root = Path(tmp)
            os.chmod(root, 0o700)
            write_json(write_csv(root / "in.csv", size), root / "in.json")
            configs = {name: configure(root, name) for name in ("csv", "json", "esc", "empty", "shared")}
            write_shared(root / "in.csv", root / "shared.csv")
            fixture.build_tracker(root / "esc-t.db", size).close()
            startup = min(run(["--config", str(configs["empty"]), "status"], {}, root)[1] for _ in range(3))
            figures.setdefault("(start-up: status, empty tracker)", []).append(startup)
            for group, label, argv in commands(root, size):
                config = configs["csv"]
                if argv[0].startswith("@"):
                    config, argv = configs[argv[0][1:]], argv[1:]
                if args.only and group not in args.only and group != "intake":
                    continue
                _wall, cpu, rss, _ = run(["--config", str(config), *argv], {"PYTHONPATH": ""}, root)
                figures.setdefault(label, []).append(cpu)
                net = 1000 * (cpu - startup) / size
                print(f"{size:>7,} {label:<36} {cpu:7.2f} s cpu {net:7.3f} ms a case {rss / 1024:5.0f} MB")
                sys.stdout.flush()
    print(
        "\nper-case CPU ms (after the start-up figure) at "
        + " / ".join(f"{s:,}" for s in args.sizes)
        + "; ratio largest/smallest"
    )
    startups = figures.pop("(start-up: status, empty tracker)")
    print("  start-up (status, empty tracker)     " + " / ".join(f"{c:6.2f} s" for c in startups))
    for label, cpus in figures.items():
        per = [1000 * (c - u) / s for c, u, s in zip(cpus, startups, args.sizes, strict=False)]
        ratio = per[-1] / per[0] if per[0] else float("nan")
        flag = "  SUSPECT" if ratio > 1.5 else ""
        print(f"  {label:<34} " + " / ".join(f"{p:7.3f}" for p in per) + f"   {ratio:5.2f}x{flag}")


if __name__ == "__main__":
    main()

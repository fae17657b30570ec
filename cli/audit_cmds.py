"""audit verify / audit export: the hash-chained record of every write casebridge made."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from casebridge.cli import Context, pass_ctx
from casebridge.errors import EXIT_CASES_FAILED
from casebridge.state.audit import read_export, verify_records


@click.group()
def audit() -> None:
    """The audit log of every write (intake, SLA fields, transitions, comments, escalations)."""


@audit.command()
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify an export (.jsonl or .csv) instead of the live log.",
)
@pass_ctx
def verify(ctx: Context, file: Path | None) -> None:
    """Check the hash chain; name every edited, deleted, inserted or reordered record. Exit 1 if broken."""
    if file is not None:
        fmt = "csv" if file.suffix.lower() == ".csv" else "jsonl"
        with file.open(encoding="utf-8", newline="") as handle:
            report = verify_records(read_export(handle, fmt))
        where = str(file)
    else:
        log = ctx.audit_log()
        try:
            report = log.verify()
        finally:
            log.close()
        where = str(log.path)
    for problem in report.problems:
        click.echo(f"BROKEN {problem}", err=True)
    if report.ok:
        click.echo(f"{where}: {report.count} records, chain intact; head {report.head}")
        return
    click.echo(f"{where}: {report.count} records, {len(report.problems)} problems", err=True)
    click.get_current_context().exit(EXIT_CASES_FAILED)


@audit.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout).")
@pass_ctx
def export(ctx: Context, fmt: str, output: Path | None) -> None:
    """Write every record (seq, at, kind, data, prev_hash, hash) as JSON lines or CSV."""
    log = ctx.audit_log()
    try:
        if output is None:
            log.export(sys.stdout, fmt)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                count = log.export(handle, fmt)
            click.echo(f"{count} records written to {output}", err=True)
    finally:
        log.close()


COMMANDS = [audit]

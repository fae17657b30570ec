"""intake: cases from CSV or JSON files into the tracker (the reference is the key)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from casebridge.app.intake import apply_intake, plan_intake
from casebridge.app.intake_stream import intake_streamed, recover_intake
from casebridge.cli import Context, now_option, parse_now, pass_ctx, with_clock
from casebridge.connectors import Connector
from casebridge.errors import UserError
from casebridge.state.lock import run_lock
from casebridge.state.store import StateStore
from casebridge.workflows.case_index import OverlapWatch, check_providers, overlap_warnings
from casebridge.workflows.cases import TrackedCase
from casebridge.workflows.directory import Directory
from casebridge.workflows.intake import (
    DuplicateReferences,
    IntakeAction,
    IntakeRow,
    iter_intake_file,
    read_intake_file,
)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; write nothing.")
@click.option("--strict", is_flag=True, help="A provider missing from the provider directory is an error.")
@now_option
@pass_ctx
def intake(ctx: Context, files: tuple[Path, ...], dry_run: bool, strict: bool, now: str | None) -> None:
    """Import cases from CSV or JSON files (the reference is the key: re-importing changes nothing).

    Every file is validated before anything is written; a bad row rejects the whole run with
    FILE:LINE: field: problem.
    """

    settings = ctx.settings
    workflow = settings.workflow()
    moment = parse_now(now)
    if not dry_run:
        tracker = settings.tracker()
        if tracker.transactional:  # the embedded tracker: streamed, one transaction, all or nothing
            with run_lock(settings.lock_path):
                _intake_streamed(ctx, files, with_clock(tracker, moment), moment, strict)
            return
        tracker.close()
    rows = [row for path in files for row in read_intake_file(path, workflow, moment)]
    seen: dict[str, str] = {}
    for row in rows:
        if row.case.reference in seen:
            raise UserError(
                f"{row.where}: reference: {row.case.reference} already appears at {seen[row.case.reference]}"
            )
        seen[row.case.reference] = row.where
    directory = settings.directory()
    for warning in check_providers([(row.where, row.case) for row in rows], directory, strict=strict):
        click.echo(f"warning: {warning}", err=True)
    with nullcontext() if dry_run else run_lock(settings.lock_path):  # one of intake, sync, escalate
        _intake(ctx, rows, dry_run, moment, directory)


def _intake(ctx: Context, rows: list[IntakeRow], dry_run: bool, moment: datetime, directory: Directory) -> None:

    settings = ctx.settings
    workflow = settings.workflow()
    named = [(row.where, row.case) for row in rows]
    references = {row.case.reference for row in rows}
    if not dry_run:
        settings.prepare_dirs()
    tracker = with_clock(settings.tracker(), moment)
    try:
        if dry_run and not tracker.exists():  # nothing to compare with, and a dry run creates nothing
            actions = [IntakeAction("create", row) for row in rows]
        else:
            actions = plan_intake(rows, tracker)
        for warning in overlap_warnings(named, _known_cases(settings, tracker, references), directory, workflow):
            click.echo(f"warning: {warning}", err=True)
        for action in actions:
            if action.kind != "unchanged" or ctx.verbose:
                ctx.say(("would " if dry_run else "") + action.describe())
        counts = {k: sum(1 for a in actions if a.kind == k) for k in ("create", "update", "unchanged")}
        if not dry_run:
            store = StateStore(settings.state_path)  # intake seeds it: the next sync reads no history
            audit = ctx.audit_log()
            try:
                store.claim(tracker.identity())
                apply_intake(actions, tracker, audit=audit, now=moment, store=store)
            finally:
                store.close()
                if audit is not None:
                    audit.close()
        created, updated, unchanged = counts["create"], counts["update"], counts["unchanged"]
        if dry_run:
            ctx.say(f"would create {created}, update {updated}, leave {unchanged} unchanged")
        else:
            ctx.say(f"created {created}, updated {updated}, unchanged {unchanged}")
    finally:
        tracker.close()


def _intake_streamed(ctx: Context, files: tuple[Path, ...], tracker: Connector, moment: datetime, strict: bool) -> None:
    """Intake into a transactional tracker as the files are read (``app.intake_stream``): memory holds a
    batch, the whole run commits at once; a bad row, an error or a kill leaves the tracker as it was."""
    settings = ctx.settings
    workflow, directory = settings.workflow(), settings.directory()
    seen = DuplicateReferences()

    def rows() -> Iterator[IntakeRow]:
        for path in files:
            for row in iter_intake_file(path, workflow, moment):
                seen.check(row)
                for warning in check_providers([(row.where, row.case)], directory, strict=strict):
                    click.echo(f"warning: {warning}", err=True)
                yield row

    settings.prepare_dirs()
    store, audit = StateStore(settings.state_path), ctx.audit_log()
    try:
        store.claim(tracker.identity())
        recover_intake(tracker, audit)
        watch = OverlapWatch(_known_stream(settings, tracker), directory, workflow)

        def report(actions: list[IntakeAction]) -> None:
            for warning in watch.warnings((a.row.where, a.row.case) for a in actions):
                click.echo(f"warning: {warning}", err=True)
            for action in actions if not ctx.quiet else ():  # -q: not even the lines' text is built
                if action.kind != "unchanged" or ctx.verbose:
                    ctx.say(action.describe())

        counts = intake_streamed(rows(), tracker, audit, store, now=moment, report=report)
        ctx.say(f"created {counts['create']}, updated {counts['update']}, unchanged {counts['unchanged']}")
    finally:
        store.close()
        audit.close()
        tracker.close()


def _known_stream(settings: Any, tracker: Connector) -> Iterator[TrackedCase]:
    """``_known_cases`` one at a time (the overlap index keeps identifiers, not cases): at 100,000 cases
    the list alone is most of a rerun's memory."""
    if settings.state_path.is_file():
        store = StateStore(settings.state_path)
        try:
            cached = store.load()
        finally:
            store.close()
        if cached:
            yield from (c.tracked for c in cached.values() if c.tracked is not None)
            return
    if tracker.exists():
        yield from tracker.list_cases()


def _known_cases(settings: Any, tracker: Connector, exclude: set[str]) -> list[TrackedCase]:
    """The cases the sync job's state store caches (no tracker request); the tracker's listing when the
    store is empty (never synced). Cases of this intake are left out (they are checked as new)."""
    return [t for t in _known_stream(settings, tracker) if t.case.reference not in exclude]


COMMANDS = [intake]

"""status: every case's clocks evaluated at --now, as text or JSON."""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from casebridge.app.sync_plan import CaseEvaluation, evaluate_cases, history_reader
from casebridge.cli import Context, empty_tracker_hint, no_collection, now_option, parse_now, pass_ctx
from casebridge.cli.complete import complete_reference
from casebridge.cli.jsonout import JsonArrayWriter
from casebridge.cli.status_json import StatusRows, case_zone, local_iso
from casebridge.connectors import Connector
from casebridge.errors import EXIT_CASES_FAILED, UserError
from casebridge.workflows.case_index import canonical_provider
from casebridge.workflows.cases import Case, StatusChange, TrackedCase
from casebridge.workflows.clocks import ClockResult
from casebridge.workflows.directory import Directory
from casebridge.workflows.model import ClockState, Workflow
from casebridge.workflows.reminders import next_reminder
from casebridge.workflows.sla import due_statement

if TYPE_CHECKING:
    from casebridge.app.status_batch import Listing

log = logging.getLogger(__name__)


def clock_json(
    result: ClockResult, zone: zoneinfo.ZoneInfo, case: Any = None, workflow: Workflow | None = None
) -> dict[str, Any]:
    remaining = None if result.remaining_seconds is None else round(result.remaining_seconds)
    upcoming = next_reminder(result)
    counting = None if case is None else due_statement(result, case, workflow).to_json()
    return {
        "name": result.name,
        "kind": str(result.kind),
        "started_at": local_iso(result.started_at, zone),
        "due_at": local_iso(result.due_at, zone),
        "counting": counting,
        "warn_at": local_iso(result.warn_at, zone),
        "state": str(result.state),
        "remaining_seconds": remaining,
        "source": result.target.source,
        "next_reminder": None if upcoming is None else {"before": upcoming[0], "at": local_iso(upcoming[1], zone)},
    }


def evaluation_json(ev: CaseEvaluation, workflow: Workflow | None = None) -> dict[str, Any]:
    zone = case_zone(ev.tracked.case.timezone)
    return {
        "reference": ev.tracked.case.reference,
        "state": ev.tracked.state,
        "request_type": str(ev.tracked.case.request_type),
        "legal_basis": str(ev.tracked.case.legal_basis),
        "provider": ev.tracked.case.provider,
        "escalation_level": ev.tracked.sla.escalation_level,
        "clocks": [clock_json(c, zone, ev.tracked.case, workflow) for c in ev.clocks],
    }


def _human_remaining(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{sign}{days}d{hours:02d}h" if days else f"{sign}{hours}h{rest // 60:02d}m"


def _provider_label(case: Case, directory: Directory | None) -> str:
    canonical = None if directory is None else canonical_provider(case, directory)
    if canonical is None or canonical == case.provider:
        return case.provider
    return f"{canonical} ({case.provider})"


def _print_text(
    evaluations: list[CaseEvaluation], directory: Directory | None = None, workflow: Workflow | None = None
) -> None:
    for ev in evaluations:
        case = ev.tracked.case
        provider = _provider_label(case, directory)
        click.echo(f"{case.reference}  [{ev.tracked.state}]  {case.request_type} x {case.legal_basis}  {provider}")
        zone = case_zone(case.timezone)
        # clocks that never started (the MLA clock of a case never refused...) are noise in the list
        for c in (c for c in ev.clocks if c.state != ClockState.NOT_STARTED):
            due = local_iso(c.due_at, zone) or "-"
            left = _human_remaining(c.remaining_seconds)
            click.echo(f"    {c.name:<15} {c.kind!s:<12} {c.state!s:<12} due {due:<26} left {left}")
            if c.due_at is not None and c.target.counting != "elapsed":  # the law's rule, stated
                click.echo(f"    {'':<15} {due_statement(c, case, workflow).text}")
            upcoming = next_reminder(c)
            if upcoming is not None:
                click.echo(f"    {'':<15} next reminder {upcoming[0]} before due, at {local_iso(upcoming[1], zone)}")


def _listing(tracker: Connector) -> Listing | None:
    """The cases through the tracker's stored text when it has it and there are enough of them to
    batch (``app.status_batch``); else None (``list_cases``)."""
    texts = tracker.list_case_texts()
    from casebridge.app import status_batch  # after the listing: nothing of it on an empty start-up

    if texts is None or len(texts) < status_batch.MIN_BATCH:
        return None
    return status_batch.read_listing(texts)


def _batched(
    cases: list[TrackedCase],
    histories: list[str | None],
    read: Callable[[TrackedCase], list[StatusChange]],
    workflow: Workflow,
    moment: datetime,
    out: JsonArrayWriter | None,
    rows: StatusRows,
    ordinary: Callable[[list[TrackedCase]], None],
) -> None:
    """Every clock of a chunk evaluated at once and its rows written from the columns; a chunk the batch
    fails on, or whose values the columns do not make plain, goes the ``ordinary`` way (which reports a
    case that cannot be evaluated alone)."""
    from casebridge.app.status_batch import BATCH_SIZE, evaluate_chunk
    from casebridge.cli.status_columns import ColumnRows  # numpy: only with cases to evaluate

    columns = ColumnRows(rows)
    for start in range(0, len(cases), BATCH_SIZE):
        chunk = cases[start : start + BATCH_SIZE]
        try:
            batch = evaluate_chunk(chunk, histories[start : start + BATCH_SIZE], read, workflow, moment)
        except Exception:
            log.info("batch clock path failed on a chunk of %d cases; evaluating them one by one", len(chunk))
            log.debug("batch failure", exc_info=True)
            ordinary(chunk)
            continue
        if out is None:
            _print_text([CaseEvaluation(t, [], batch.results(i)) for i, t in enumerate(chunk)], workflow=workflow)
            continue
        texts = columns.chunk(chunk, batch)
        if texts is None:
            ordinary(chunk)
        else:
            for at in range(0, len(texts), STATUS_CHUNK):  # printed a slice at a time: memory stays flat
                part = texts[at : at + STATUS_CHUNK]
                out.write_flat(part.ravel().tolist(), len(part))


STATUS_CHUNK = 2000  # cases evaluated before their lines are printed (memory stays flat at 100,000 cases)


def _show(
    tracker: Connector, references: tuple[str, ...], as_json: bool, workflow: Workflow, moment: datetime
) -> dict[str, str]:
    """Prints the clocks of every case (or of ``references``); returns the cases not evaluated, each with
    why."""
    if references:
        found = [(ref, tracker.find_case(ref)) for ref in references]
        missing = [ref for ref, t in found if t is None]
        if missing:
            raise UserError(f"no case with reference {', '.join(missing)} in the tracker")
        cases = [t for _, t in found if t is not None]
    else:
        listing = _listing(tracker)
        if listing is not None:
            cases, histories = listing.cases, listing.histories
        else:
            cases = sorted(tracker.list_cases(), key=lambda t: t.case.reference)
    read = history_reader(tracker)
    failures: dict[str, str] = {}
    out = JsonArrayWriter() if as_json else None
    rows = StatusRows(workflow)

    def ordinary(chunk: list[TrackedCase]) -> None:
        for start in range(0, len(chunk), STATUS_CHUNK):  # evaluated and printed a chunk at a time
            evaluations, failed = evaluate_cases(chunk[start : start + STATUS_CHUNK], read, workflow, moment)
            failures.update(failed)
            if out is not None:
                out.write_encoded(rows.row(ev) for ev in evaluations)
            else:
                _print_text(evaluations, workflow=workflow)

    if references or listing is None:
        ordinary(cases)
    else:
        _batched(cases, histories, read, workflow, moment, out, rows, ordinary)
    if out is not None:
        out.close()
    return failures


@click.command()
@click.argument("references", nargs=-1, shell_complete=complete_reference)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@now_option
@pass_ctx
def status(ctx: Context, references: tuple[str, ...], as_json: bool, now: str | None) -> None:
    """Show every case's clocks (or only REFERENCES), evaluated at --now."""
    moment = parse_now(now)
    settings = ctx.settings
    workflow = settings.workflow()
    tracker = settings.tracker()
    if not tracker.exists():  # a read-only command creates nothing
        tracker.close()
        if references:
            raise UserError(f"no case with reference {', '.join(references)}: {empty_tracker_hint(settings)}")
        if as_json:
            click.echo("[]")
        else:
            ctx.say(empty_tracker_hint(settings))
        return

    try:
        with no_collection():  # the cases are freed when _show returns: before the collector is on again
            failures = _show(tracker, references, as_json, workflow, moment)
    finally:
        tracker.close()
    for reference, message in sorted(failures.items()):
        click.echo(f"not evaluated: {reference}: {message}", err=True)
    if failures:
        click.get_current_context().exit(EXIT_CASES_FAILED)


COMMANDS = [status]

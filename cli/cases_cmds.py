"""intake, status, transition: the investigator's commands."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from casebridge.app.extend import describe, plan_for, record_extension
from casebridge.app.intake import apply_intake, plan_intake
from casebridge.app.intake_stream import intake_streamed, recover_intake
from casebridge.app.sync_plan import CaseEvaluation, evaluate_cases, history_reader
from casebridge.cli import Context, empty_tracker_hint, now_option, parse_now, pass_ctx
from casebridge.cli.complete import complete_reference, complete_state
from casebridge.cli.jsonout import JsonArrayWriter
from casebridge.cli.status_json import StatusRows
from casebridge.connectors import Connector
from casebridge.errors import EXIT_CASES_FAILED, TransitionNotAllowed, UserError
from casebridge.state.lock import run_lock
from casebridge.state.store import StateStore
from casebridge.workflows.case_index import OverlapWatch, canonical_provider, check_providers, overlap_warnings
from casebridge.workflows.cases import Case, TrackedCase
from casebridge.workflows.clocks import ClockResult
from casebridge.workflows.directory import Directory
from casebridge.workflows.intake import (
    DuplicateReferences,
    IntakeAction,
    IntakeRow,
    iter_intake_file,
    read_intake_file,
)
from casebridge.workflows.model import ClockState, Workflow
from casebridge.workflows.reminders import next_reminder
from casebridge.workflows.sla import due_statement


def _with_clock(connector: Connector, now: datetime) -> Connector:
    # the embedded tracker stamps writes with --now, so replays produce the same history
    connector.use_clock(lambda: now)
    return connector


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
                _intake_streamed(ctx, files, _with_clock(tracker, moment), moment, strict)
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
    tracker = _with_clock(settings.tracker(), moment)
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
            for action in actions:
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

    cached: list[TrackedCase] = []
    if settings.state_path.is_file():
        store = StateStore(settings.state_path)
        try:
            cached = [c.tracked for c in store.load().values() if c.tracked is not None]
        finally:
            store.close()
    if not cached and tracker.exists():
        cached = list(tracker.list_cases())
    return [t for t in cached if t.case.reference not in exclude]


_ZONES: dict[str, zoneinfo.ZoneInfo] = {}


def _case_zone(name: str) -> zoneinfo.ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = zoneinfo.ZoneInfo(name)
    return zone


def _iso(moment: datetime | None, zone: zoneinfo.ZoneInfo) -> str | None:
    if moment is None:
        return None
    local = moment.astimezone(zone)
    return (local if local.microsecond == 0 else local.replace(microsecond=0)).isoformat()


def clock_json(
    result: ClockResult, zone: zoneinfo.ZoneInfo, case: Any = None, workflow: Workflow | None = None
) -> dict[str, Any]:
    remaining = None if result.remaining_seconds is None else round(result.remaining_seconds)
    upcoming = next_reminder(result)
    counting = None if case is None else due_statement(result, case, workflow).to_json()
    return {
        "name": result.name,
        "kind": str(result.kind),
        "started_at": _iso(result.started_at, zone),
        "due_at": _iso(result.due_at, zone),
        "counting": counting,
        "warn_at": _iso(result.warn_at, zone),
        "state": str(result.state),
        "remaining_seconds": remaining,
        "source": result.target.source,
        "next_reminder": None if upcoming is None else {"before": upcoming[0], "at": _iso(upcoming[1], zone)},
    }


def evaluation_json(ev: CaseEvaluation, workflow: Workflow | None = None) -> dict[str, Any]:
    zone = _case_zone(ev.tracked.case.timezone)
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
        zone = _case_zone(case.timezone)
        # clocks that never started (the MLA clock of a case never refused...) are noise in the list
        for c in (c for c in ev.clocks if c.state != ClockState.NOT_STARTED):
            due = _iso(c.due_at, zone) or "-"
            left = _human_remaining(c.remaining_seconds)
            click.echo(f"    {c.name:<15} {c.kind!s:<12} {c.state!s:<12} due {due:<26} left {left}")
            if c.due_at is not None and c.target.counting != "elapsed":  # the law's rule, stated
                click.echo(f"    {'':<15} {due_statement(c, case, workflow).text}")
            upcoming = next_reminder(c)
            if upcoming is not None:
                click.echo(f"    {'':<15} next reminder {upcoming[0]} before due, at {_iso(upcoming[1], zone)}")


STATUS_CHUNK = 2000  # cases evaluated before their lines are printed (memory stays flat at 100,000 cases)


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
        if references:
            found = [(ref, tracker.find_case(ref)) for ref in references]
            missing = [ref for ref, t in found if t is None]
            if missing:
                raise UserError(f"no case with reference {', '.join(missing)} in the tracker")
            cases = [t for _, t in found if t is not None]
        else:
            cases = sorted(tracker.list_cases(), key=lambda t: t.case.reference)
        read = history_reader(tracker)
        failures: dict[str, str] = {}
        out = JsonArrayWriter() if as_json else None
        rows = StatusRows(workflow)
        for start in range(0, len(cases), STATUS_CHUNK):  # evaluated and printed a chunk at a time
            evaluations, failed = evaluate_cases(cases[start : start + STATUS_CHUNK], read, workflow, moment)
            failures.update(failed)
            if out is not None:
                out.write_encoded(rows.row(ev) for ev in evaluations)
            else:
                _print_text(evaluations, workflow=workflow)
        if out is not None:
            out.close()
    finally:
        tracker.close()
    for reference, message in sorted(failures.items()):
        click.echo(f"not evaluated: {reference}: {message}", err=True)
    if failures:
        click.get_current_context().exit(EXIT_CASES_FAILED)


@click.command()
@click.argument("reference", shell_complete=complete_reference)
@click.argument("state", shell_complete=complete_state)
@click.option("--at", "at", metavar="ISO", help="When the change happened (default: --now or now).")
@click.option("--note", metavar="TEXT", help="A comment recorded with the change.")
@click.option("--reason", metavar="REASON", help="Why the provider refused (with STATE refused).")
@now_option
@pass_ctx
def transition(
    ctx: Context, reference: str, state: str, at: str | None, note: str | None, reason: str | None, now: str | None
) -> None:
    """Move a case to STATE (embedded tracker; in Jira and Redmine people move cases in the tracker).

    Moving to refused takes --reason (us-legal-process-required, mlat-required, no-data, ...: the
    workflow's refusal_reasons); `casebridge report` counts refusals by it.
    """
    settings = ctx.settings
    workflow = settings.workflow()
    if state not in workflow.states:
        raise UserError(f"unknown state {state!r}; states of {workflow.name}: {', '.join(workflow.states)}")
    _check_reason(workflow, state, reason)
    moment = parse_now(at, "--at") if at else parse_now(now)
    settings.prepare_dirs()
    tracker = _with_clock(settings.tracker(), moment)
    try:
        tracked = tracker.find_case(reference) if tracker.exists() else None
        if tracked is None:
            raise UserError(f"no case with reference {reference} in {settings.tracker_label()}")
        if reason is not None and not workflow.can_transition(tracked.state, state):  # before writing the reason
            raise UserError(f"{reference}: the workflow has no transition {tracked.state} -> {state}")
        if reason is not None and reason != tracked.case.refusal_reason:
            tracker.update_case(tracked.key, tracked.case.model_copy(update={"refusal_reason": reason}))
        try:
            tracker.transition(tracked.key, state, note=note, at=moment)
        except TransitionNotAllowed as exc:  # the user asked for a move the workflow forbids: input error
            raise UserError(str(exc)) from None
        audit = ctx.audit_log()
        if audit is not None:
            audit.append(
                "transition",
                {
                    "reference": reference,
                    "key": tracked.key,
                    "from": tracked.state,
                    "to": state,
                    "at": moment.isoformat(),
                    "note": bool(note),
                    "reason": reason,
                },
            )
    finally:
        tracker.close()
    click.echo(f"{reference}: {tracked.state} -> {state} at {moment.isoformat()}")


def _check_reason(workflow: Any, state: str, reason: str | None) -> None:
    if reason is None:
        return
    if state not in workflow.report.refused:
        refused = ", ".join(sorted(workflow.report.refused)) or "(none)"
        raise UserError(f"--reason is for a refusal: move the case to {refused}, not {state}")
    if reason not in workflow.refusal_reasons:
        raise UserError(
            f"--reason: {reason!r} is not a refusal reason of workflow {workflow.name} "
            f"(known: {', '.join(workflow.refusal_reasons)}; add yours under [workflow] refusal_reasons)"
        )


@click.command()
@click.argument("reference", shell_complete=complete_reference)
@click.argument("clock")
@click.option("--at", "at", metavar="ISO", help="When the renewed request was sent (default: --now or now).")
@click.option("--note", metavar="TEXT", help="A note recorded with the extension (e.g. the provider's ticket).")
@click.option("--dry-run", is_flag=True, help="Print the new due time; record nothing.")
@now_option
@pass_ctx
def extend(
    ctx: Context, reference: str, clock: str, at: str | None, note: str | None, dry_run: bool, now: str | None
) -> None:
    """Record an extension of CLOCK (e.g. preservation) that the case's policy allows.

    The due time moves by exactly the extension, counted from the current due time. Refused (exit 2)
    past the policy's maximum, or when the clock has lapsed or stopped at --at. Works on every tracker:
    the extension is kept in the case data.
    """

    settings = ctx.settings
    moment = parse_now(now)
    when = parse_now(at, "--at") if at else moment
    if when > moment:
        raise UserError(f"--at {when.isoformat()} is after --now {moment.isoformat()}; record it once it happened")
    with nullcontext() if dry_run else run_lock(settings.lock_path):
        if not dry_run:
            settings.prepare_dirs()
        tracker = _with_clock(settings.tracker(), moment)
        try:
            plan = plan_for(tracker, reference, clock, when, note)
            if dry_run:
                ctx.say("would record: " + describe(plan))
                return
            audit = ctx.audit_log()
            try:
                warnings = record_extension(tracker, plan, audit, now=moment)
            finally:
                if audit is not None:
                    audit.close()
        finally:
            tracker.close()
    click.echo(describe(plan))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if warnings:
        click.get_current_context().exit(EXIT_CASES_FAILED)


COMMANDS = [intake, status, transition, extend]

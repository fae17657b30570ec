"""transition and extend: the investigator's changes to one case on the embedded tracker (transition) or
any tracker (extend: the extension is kept in the case data)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import click

from casebridge.app.extend import describe, plan_for, record_extension
from casebridge.cli import Context, now_option, parse_now, pass_ctx, with_clock
from casebridge.cli.complete import complete_reference, complete_state
from casebridge.errors import EXIT_CASES_FAILED, TransitionNotAllowed, UserError
from casebridge.state.lock import run_lock


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
    tracker = with_clock(settings.tracker(), moment)
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
        tracker = with_clock(settings.tracker(), moment)
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


COMMANDS = [transition, extend]

"""casebridge escalate: post lapsed cases to the INTERPOL NCB liaison queue, exactly once.

The library does the work (``workflows.escalation``: plan, then apply with a dedupe-key check against
the target before every post); this module shows the plan, asks for confirmation on a terminal, and
turns outcomes into output and an exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click

from casebridge.app.escalate import EscalationOutcome, apply_escalations, find_posted
from casebridge.app.escalate_followup import needs_completion
from casebridge.app.sync_plan import evaluate_cases, history_reader
from casebridge.cli import Context, empty_tracker_hint, now_option, parse_now, pass_ctx
from casebridge.cli.jsonout import dumps_indented
from casebridge.connectors import Connector
from casebridge.errors import EXIT_CASES_FAILED, UserError
from casebridge.state.lock import run_lock
from casebridge.workflows.escalation import EscalationConfig, EscalationPlan, plan_escalations
from casebridge.workflows.render import to_plain


def _stamp_writes(connector: Connector, now: datetime) -> None:
    # the embedded tracker stamps its writes with --now so replays are reproducible
    connector.use_clock(lambda: now)


def build_plan(
    ctx: Context, tracker: Connector, now: datetime, only: tuple[str, ...]
) -> tuple[EscalationPlan, dict[str, str]]:
    """The plan, and the cases that could not be evaluated (reference -> message): those are reported
    and make the exit code 1; every other case is planned as usual."""
    settings = ctx.settings
    workflow = settings.workflow()
    config = EscalationConfig.from_raw(settings.app.escalation)
    directory = settings.directory()
    chosen = [t for t in tracker.list_cases() if not only or t.case.reference in only]
    evaluations, failures = evaluate_cases(chosen, history_reader(tracker), workflow, now)
    evaluated = [(ev.tracked, ev.clocks) for ev in evaluations]
    only_refs = list(only) if only else None
    plan = plan_escalations(evaluated, workflow, now=now, config=config, only=only_refs, directory=directory)
    return plan, failures


def _print_plan(ctx: Context, plan: EscalationPlan, dry_run: bool, already: dict[str, Any]) -> None:
    verb = "would post" if dry_run else "to post"
    lines: list[str] = []  # printed a thousand at a time: 100,000 cases make as many lines
    for item in plan:
        if item.dedupe_key in already:
            lines.append(f"already posted: {item.dedupe_key}")
        else:
            lines.append(f"{verb}: {item.dedupe_key}  level {item.level} ({item.level_name})  {item.title}")
            if dry_run:  # the dossier as the NCB will read it (the Markdown source is in --json)
                lines.append("\n".join(("    " + line).rstrip() for line in to_plain(item.markdown).splitlines()))
        if len(lines) >= 1000:
            ctx.say("\n".join(lines))
            lines.clear()
    if lines:
        ctx.say("\n".join(lines))
    for blocked in plan.blocked:
        click.echo(f"not escalated: {blocked}", err=True)
    for reason in plan.not_due:
        ctx.say(f"not due: {reason}")
    if not plan and not plan.blocked and not plan.not_due:
        ctx.say("nothing to escalate: no breached clock whose policy escalates")


def _confirm(yes: bool, count: int) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UserError("standard input is not a terminal: pass --yes to post without a confirmation prompt")
    if not click.confirm(f"Post {count} escalation(s) to the NCB liaison queue?", default=False):
        raise click.exceptions.Abort()


@dataclass
class EscalationRun:
    """What one escalation run did: its exit code and, for --json, its report."""

    code: int
    report: dict[str, Any]


def run_escalation(
    ctx: Context, *, dry_run: bool, cases: tuple[str, ...], yes: bool, as_json: bool, now: str | None, strict: bool
) -> EscalationRun:
    """Plan, confirm, post; print text (unless ``as_json``). Blocked cases make the run exit 1 only when
    ``strict`` (by hand: always; in a scheduled `sync --escalate`: only with --strict)."""
    moment = parse_now(now)
    settings = ctx.settings
    if not dry_run:
        settings.prepare_dirs()
    tracker = settings.tracker()
    if dry_run and not tracker.exists():
        ctx.say(empty_tracker_hint(settings))
        tracker.close()
        return EscalationRun(0, _plan_json(EscalationPlan(), moment, dry_run=True))
    liaison = settings.liaison()
    _stamp_writes(tracker, moment)
    _stamp_writes(liaison, moment)
    outcomes: list[EscalationOutcome] = []
    try:
        plan, unevaluated = build_plan(ctx, tracker, moment, cases)
        for reference, message in sorted(unevaluated.items()):
            click.echo(f"not evaluated: {reference}: {message}", err=True)
        # a dry run reads the audit log only if there is one (it creates nothing)
        audit = None if dry_run and not settings.audit_path.exists() else ctx.audit_log()
        try:
            already = find_posted(plan, liaison)
            if not as_json:
                _print_plan(ctx, plan, dry_run, already)
            # held by the target, but a killed run may have left its audit record or case side undone
            incomplete = [i for i in plan if i.dedupe_key in already and needs_completion(i, audit)]
            if not dry_run and (len(already) < len(plan) or incomplete):
                if len(already) < len(plan):
                    _confirm(yes, len(plan) - len(already))
                outcomes = apply_escalations(plan, liaison, tracker, audit, now=moment)
            elif incomplete:
                ctx.say(f"would complete {len(incomplete)} already posted (an interrupted run left them unfinished)")
        finally:
            if audit is not None:
                audit.close()
    finally:
        tracker.close()
        liaison.close()
    report = _plan_json(plan, moment, dry_run=dry_run, already=already)
    report["already_posted"] = sorted(already)
    if not dry_run:
        report["outcomes"] = [o.to_json() for o in outcomes]
    if not as_json:
        _print_outcomes(ctx, plan, outcomes, already, dry_run)
    failed = any(not o.ok for o in outcomes) or (strict and bool(plan.blocked)) or bool(unevaluated)
    return EscalationRun(EXIT_CASES_FAILED if failed else 0, report)


def _print_outcomes(
    ctx: Context, plan: EscalationPlan, outcomes: list[EscalationOutcome], already: dict[str, Any], dry_run: bool
) -> None:
    for o in outcomes:
        where = f" -> {o.posted.url or o.posted.key}" if o.posted else ""
        if o.error:
            click.echo(f"{o.status}: {o.dedupe_key}{where} ({o.error})", err=True)
        elif o.status == "already_posted" and o.notes and "already handled" not in o.notes[0]:
            ctx.say(f"{o.status}: {o.dedupe_key}{where} (completed: {'; '.join(o.notes)})")
        else:
            ctx.say(f"{o.status}: {o.dedupe_key}{where}")
    if dry_run:
        return
    statuses = ("posted", "resent", "already_posted", "failed")
    counts = {k: sum(1 for o in outcomes if o.status == k) for k in statuses}
    if not outcomes:  # nothing new was due: every planned item is already in the queue
        counts["already_posted"] = len(already)
    ctx.say(
        f"{counts['posted']} posted, {counts['already_posted']} already posted, {counts['failed']} failed, "
        f"{len(plan.blocked)} blocked"
        + (f", {counts['resent']} resent (an earlier send was never confirmed)" if counts["resent"] else "")
    )


@click.command()
@click.option("--dry-run", is_flag=True, help="Print exactly what would be posted; post nothing.")
@click.option("--case", "cases", multiple=True, metavar="REF", help="Only these cases (repeatable).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (required when stdin is not a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON document).")
@now_option
@pass_ctx
def escalate(ctx: Context, dry_run: bool, cases: tuple[str, ...], yes: bool, as_json: bool, now: str | None) -> None:
    """Post every breached clock whose policy escalates to the NCB liaison queue, exactly once.

    Exit code 1 when a post failed or a case is blocked (for example, no Article 3 self-check)."""
    with nullcontext() if dry_run else run_lock(ctx.settings.lock_path):  # one of intake, sync, escalate
        run = run_escalation(ctx, dry_run=dry_run, cases=cases, yes=yes, as_json=as_json, now=now, strict=True)
    if as_json:
        click.echo(dumps_indented(run.report))
    click.get_current_context().exit(run.code)


def _plan_json(plan: EscalationPlan, now: datetime, *, dry_run: bool, already: Collection[str] = ()) -> dict[str, Any]:
    """A dry run's report carries the dossier of each item it would post (not of those already posted:
    dossiers are written only for what is posted or shown)."""
    shown = set(already) if dry_run else set()
    return {
        "now": now.isoformat(),
        "dry_run": dry_run,
        "planned": [
            item.to_json() | ({"markdown": item.markdown} if dry_run and item.dedupe_key not in shown else {})
            for item in plan
        ],
        "blocked_cases": [{"reference": b.reference, "field": b.field} for b in plan.blocked],
        "blocked": [str(b) for b in plan.blocked],
        "not_due": [str(n) for n in plan.not_due],
    }


COMMANDS = [escalate]

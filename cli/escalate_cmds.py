"""casebridge escalate: post lapsed cases to the INTERPOL NCB liaison queue, exactly once.

The library does the work (``workflows.escalation``: plan, then apply with a dedupe-key check against
the target before every post); this module shows the plan, asks for confirmation on a terminal, and
turns outcomes into output and an exit code.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from casebridge.app.escalate import apply_escalations, find_posted
from casebridge.cli import Context, now_option, parse_now, pass_ctx
from casebridge.connectors import Connector
from casebridge.errors import EXIT_CASES_FAILED, UserError
from casebridge.sync import evaluate, history_reader
from casebridge.workflows.escalation import EscalationConfig, EscalationPlan, plan_escalations
from casebridge.workflows.render import to_plain


def _stamp_writes(connector: Connector, now: datetime) -> None:
    # the embedded tracker stamps its writes with --now so replays are reproducible
    connector.use_clock(lambda: now)


def build_plan(ctx: Context, tracker: Connector, now: datetime, only: tuple[str, ...]) -> EscalationPlan:
    settings = ctx.settings
    workflow = settings.workflow()
    config = EscalationConfig.from_raw(settings.app.escalation)
    directory = settings.directory()
    read = history_reader(tracker)
    evaluated = []
    for tracked in tracker.list_cases():
        if only and tracked.case.reference not in only:
            continue
        ev = evaluate(tracked, read(tracked), workflow, now)
        evaluated.append((tracked, ev.clocks))
    only_refs = list(only) if only else None
    return plan_escalations(evaluated, workflow, now=now, config=config, only=only_refs, directory=directory)


def _print_plan(plan: EscalationPlan, dry_run: bool, already: dict[str, Any]) -> None:
    verb = "would post" if dry_run else "to post"
    for item in plan:
        if item.dedupe_key in already:
            click.echo(f"already posted: {item.dedupe_key}")
            continue
        click.echo(f"{verb}: {item.dedupe_key}  level {item.level} ({item.level_name})  {item.title}")
        if dry_run:  # the dossier as the NCB will read it (the Markdown source is in --json)
            click.echo("\n".join("    " + line for line in to_plain(item.markdown).splitlines()))
    for blocked in plan.blocked:
        click.echo(f"not escalated: {blocked}", err=True)
    for reason in plan.not_due:
        click.echo(f"not due: {reason}")


def _confirm(yes: bool, count: int) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UserError("standard input is not a terminal: pass --yes to post without a confirmation prompt")
    if not click.confirm(f"Post {count} escalation(s) to the NCB liaison queue?", default=False):
        raise click.exceptions.Abort()


def _audit(ctx: Context) -> Any:
    try:
        from casebridge.state.audit import open_audit_log  # type: ignore[import-not-found]
    except ImportError:
        return None
    return open_audit_log(ctx.settings)


@click.command()
@click.option("--dry-run", is_flag=True, help="Print exactly what would be posted; post nothing.")
@click.option("--case", "cases", multiple=True, metavar="REF", help="Only these cases (repeatable).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (required when stdin is not a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@now_option
@pass_ctx
def escalate(ctx: Context, dry_run: bool, cases: tuple[str, ...], yes: bool, as_json: bool, now: str | None) -> None:
    """Post every breached clock whose policy escalates to the NCB liaison queue, exactly once."""
    moment = parse_now(now)
    settings = ctx.settings
    tracker = settings.tracker()
    liaison = settings.liaison()
    _stamp_writes(tracker, moment)
    _stamp_writes(liaison, moment)
    try:
        plan = build_plan(ctx, tracker, moment, cases)
        audit = _audit(ctx)
        already = find_posted(plan, liaison, audit)
        if as_json and dry_run:
            data = _plan_json(plan, moment, dry_run=True)
            data["already_posted"] = sorted(already)
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        if not as_json:
            _print_plan(plan, dry_run, already)
        outcomes = []
        if len(already) < len(plan) and not dry_run:
            _confirm(yes, len(plan) - len(already))
            outcomes = apply_escalations(plan, liaison, tracker, audit, now=moment)
    finally:
        tracker.close()
        liaison.close()
    if as_json:
        data = _plan_json(plan, moment, dry_run=False)
        data["outcomes"] = [o.to_json() for o in outcomes]
        data["already_posted"] = sorted(already)
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for o in outcomes:
            where = f" -> {o.posted.url or o.posted.key}" if o.posted else ""
            suffix = f" ({o.error})" if o.error else ""
            click.echo(f"{o.status}: {o.dedupe_key}{where}{suffix}")
        if not dry_run:
            counts = {k: sum(1 for o in outcomes if o.status == k) for k in ("posted", "already_posted", "failed")}
            if not outcomes:  # nothing new was due: every planned item is already in the queue
                counts["already_posted"] = len(already)
            click.echo(
                f"{counts['posted']} posted, {counts['already_posted']} already posted, {counts['failed']} failed, "
                f"{len(plan.blocked)} blocked"
            )
    if plan.blocked or any(not o.ok for o in outcomes):
        click.get_current_context().exit(EXIT_CASES_FAILED)


def _plan_json(plan: EscalationPlan, now: datetime, *, dry_run: bool) -> dict[str, Any]:
    return {
        "now": now.isoformat(),
        "dry_run": dry_run,
        "planned": [item.to_json() | ({"markdown": item.markdown} if dry_run else {}) for item in plan],
        "blocked_cases": [{"reference": b.reference, "field": b.field} for b in plan.blocked],
        "blocked": [str(b) for b in plan.blocked],
        "not_due": [str(n) for n in plan.not_due],
    }


COMMANDS = [escalate]

"""sync, check, setup: the scheduled job and the admin's tracker set-up commands."""

from __future__ import annotations

import json

import click

from cli import Context, now_option, parse_now, pass_ctx
from connectors.errors import EXIT_CASES_FAILED, EXIT_USAGE
from sync import run_sync


@click.command()
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@now_option
@pass_ctx
def sync(ctx: Context, dry_run: bool, as_json: bool, now: str | None) -> None:
    """Evaluate every open case's clocks and write the SLA fields that changed."""
    moment = parse_now(now)
    settings = ctx.settings
    tracker = settings.tracker()
    try:
        plan, result = run_sync(tracker, settings.workflow(), moment, dry_run=dry_run)
    finally:
        tracker.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "now": moment.isoformat(),
                    "dry_run": dry_run,
                    "actions": [a.to_json() for a in plan.actions],
                    "failures": result.failures,
                },
                indent=2,
            )
        )
    else:
        prefix = "would " if dry_run else ""
        for action in plan.actions:
            click.echo(prefix + action.describe())
        for ref, message in sorted(result.failures.items()):
            click.echo(f"FAILED {ref}: {message}", err=True)
        if not ctx.quiet:
            click.echo(
                f"{len(plan.evaluations)} cases evaluated, {prefix}{len(result.applied) if not dry_run else len(plan.actions)} updated, {len(result.failures)} failed"
            )
    if result.failures:
        ctx_exit(EXIT_CASES_FAILED)


def ctx_exit(code: int) -> None:
    click.get_current_context().exit(code)


@click.command()
@pass_ctx
def check(ctx: Context) -> None:
    """Check that the tracker has every field, status and transition the workflow needs."""
    settings = ctx.settings
    tracker = settings.tracker()
    try:
        missing = tracker.check_schema()
    finally:
        tracker.close()
    if not missing:
        click.echo(f"{tracker.name}: ready for workflow {settings.workflow().name}")
        return
    for item in missing:
        click.echo(str(item))
    click.echo(f"{len(missing)} missing; run `casebridge setup {tracker.name}` for how to add them", err=True)
    ctx_exit(EXIT_USAGE)


@click.command()
@click.argument("target", required=False)
@click.option("--apply", "apply", is_flag=True, help="Create over the API what the account may create.")
@pass_ctx
def setup(ctx: Context, target: str | None, apply: bool) -> None:
    """Print (or with --apply, perform) what makes the tracker ready: e.g. `setup redmine` prints the
    Ruby script a Redmine admin runs with `rails runner`."""
    settings = ctx.settings
    tracker = settings.tracker()
    try:
        if target and target != tracker.name:
            raise click.BadParameter(f"the configured tracker is {tracker.name!r}, not {target!r}", param_hint="TARGET")
        click.echo(tracker.setup(apply=apply))
    finally:
        tracker.close()


COMMANDS = [sync, check, setup]

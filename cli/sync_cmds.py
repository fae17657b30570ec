"""sync, check, setup: the scheduled job and the admin's tracker set-up commands."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import click

from casebridge.app.sync_plan import SetFields
from casebridge.cli import Context, empty_tracker_hint, now_option, parse_now, pass_ctx
from casebridge.cli.config import Settings
from casebridge.cli.escalate_cmds import EscalationRun, run_escalation
from casebridge.connectors import Connector, Missing
from casebridge.errors import EXIT_USAGE, CasebridgeError, LockHeldError, SafetyValveError, TrackerError
from casebridge.state.lock import RunLock
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions, SyncReport
from casebridge.workflows.render import to_plain
from casebridge.workflows.schema import parse_duration

log = logging.getLogger(__name__)


class StopFlag:
    """Set by SIGTERM/SIGINT, read between actions. Lock-free on purpose: a handler that takes a lock
    (threading.Event.set) deadlocks when the signal lands while the main thread holds that lock."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking within 0.2 s of a stop request."""
        deadline = time.monotonic() + seconds
        while not self._set and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(0.2, left))


def _duration(value: str, option: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _progress(actions: list[SetFields], label: str) -> Iterator[SetFields]:
    with click.progressbar(actions, label=label, file=sys.stderr) as bar:
        yield from bar


MIN_INTERVAL = 30.0  # seconds: a tighter --every only hammers the tracker


def run_once(
    ctx: Context,
    options: SyncOptions,
    now_text: str | None,
    stop: StopFlag,
    as_json: bool,
    then: Callable[[], EscalationRun] | None = None,
) -> int:
    """One pass under the run lock (a dry run takes no lock: it writes nothing), printed, then ``then``
    (escalation) still under the lock. Returns the exit code of both. With ``as_json`` exactly one JSON
    document is printed: the sync report, with the escalation report nested under "escalation"."""
    settings = ctx.settings
    show_bar = sys.stderr.isatty() and not ctx.quiet
    if options.dry_run and not _tracker_exists(settings):  # a dry run creates nothing
        hint = empty_tracker_hint(settings)
        if as_json:
            click.echo(json.dumps({"dry_run": True, "actions": [], "hint": hint}, indent=2))
        else:
            ctx.say(hint)
        return 0
    lock = RunLock(settings.lock_path)
    if not options.dry_run:
        settings.prepare_dirs()
        lock.acquire()
    try:
        tracker = settings.tracker()
        store = StateStore(settings.state_path)
        audit = ctx.audit_log()
        try:
            if not options.dry_run:
                store.claim(tracker.identity())
            job = SyncJob(
                tracker,
                settings.workflow(),
                store,
                audit,
                options,
                progress=_progress if show_bar else None,
                should_stop=stop.is_set,
                directory=settings.directory(),
            )
            report = job.run(parse_now(now_text))
        finally:
            tracker.close()
            store.close()
            audit.close()
        data = report.to_json() if as_json else None
        if not as_json:
            _print_report(ctx, report)
        code = report.exit_code
        if then is not None and not options.dry_run:
            escalation = then()
            code = max(code, escalation.code)
            if data is not None:
                data["escalation"] = escalation.report
        if data is not None:
            click.echo(json.dumps(data, indent=2))
        return code
    finally:
        lock.release()


def _tracker_exists(settings: Settings) -> bool:
    tracker = settings.tracker()
    try:
        return tracker.exists()
    finally:
        tracker.close()


def _print_reminders(ctx: Context, report: SyncReport) -> None:
    if report.options.dry_run:
        for item in report.reminders:  # the text as the case's tracker will show it
            ctx.say(f"would remind {item.reference}: {item.title} (key {item.dedupe_key})")
            ctx.say("\n".join(("    " + line).rstrip() for line in to_plain(item.markdown).splitlines()))
        return
    for o in report.reminded:
        if o.status == "posted":
            ctx.say(f"reminded {o.reference}: key {o.dedupe_key}")
        elif o.status == "already_posted" and ctx.verbose:
            ctx.say(f"already reminded {o.reference}: key {o.dedupe_key}")
        elif not o.ok:
            click.echo(f"FAILED reminder {o.dedupe_key}: {o.error}", err=True)


def _reminded(report: SyncReport) -> str:
    posted = sum(1 for o in report.reminded if o.status == "posted")
    return f", {posted} reminder{'s' if posted != 1 else ''} posted" if posted else ""


def _print_report(ctx: Context, report: SyncReport) -> None:
    dry = report.options.dry_run
    prefix = "would " if dry else ""
    # the applied actions are the plan's own objects: found by identity, not compared field by field with
    # every applied one (100,000 first writes: 10**10 comparisons)
    applied = {id(action) for action in report.result.applied}
    for action in report.plan.actions:
        if dry or id(action) in applied:
            ctx.say(prefix + action.describe())
    for pair in report.links:
        ctx.say(f"{prefix}link {pair.reference_a} <-> {pair.reference_b} (both name {pair.identifier})")
    for write in report.providers:
        ctx.say(prefix + write.describe())
    _print_reminders(ctx, report)
    for ref, keys in report.duplicates.items():
        click.echo(f"DUPLICATE {ref}: tracker items {', '.join(keys)} carry this reference; merge them", err=True)
    for ref, message in sorted(report.result.failures.items()):
        click.echo(f"FAILED {ref}: {message}", err=True)
    if report.stopped:
        click.echo("stopped on request between two actions; the rest is done by the next run", err=True)
    evaluated, failed = report.plan.evaluated, len(report.result.failures)
    if dry:
        ctx.say(f"{evaluated} cases evaluated, {len(report.plan.actions)} would be updated, {failed} failed")
    elif report.options.full:
        disagreed = len(report.plan.actions)
        ctx.say(
            f"{evaluated} cases evaluated; {disagreed} disagreed with the engine, "
            f"{len(report.result.applied)} updated, {failed} failed{_reminded(report)}"
        )
    else:
        updated = len(report.result.applied)
        ctx.say(f"{evaluated} cases evaluated, {updated} updated, {failed} failed{_reminded(report)}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and the outcome as JSON.")
@click.option("--full", is_flag=True, help="Rebuild the state store from the tracker and reconcile every case.")
@click.option("--force", is_flag=True, help="Accept a tracker that suddenly lists no cases (safety valve).")
@click.option("--every", metavar="DURATION", help="Run as a loop, e.g. --every 5m (at least 30s); SIGTERM stops it.")
@click.option("--escalate", "escalate", is_flag=True, help="Then run `escalate --yes` (also: [sync] escalate).")
@click.option("--strict", is_flag=True, help="With --escalate: a blocked case (no Article 3 check...) fails the run.")
@click.option("--no-remind", "no_remind", is_flag=True, help="Post no reminders this run (before-deadline comments).")
@now_option
@pass_ctx
def sync(
    ctx: Context,
    dry_run: bool,
    as_json: bool,
    full: bool,
    force: bool,
    every: str | None,
    escalate: bool,
    strict: bool,
    no_remind: bool,
    now: str | None,
) -> None:
    """Evaluate every open case's clocks and write the SLA fields that changed.

    Exit codes: 0 ok, 1 some cases failed (or, with --escalate --strict, were blocked), 2 usage/config
    error (or another run holds the lock), 3 the tracker was unreachable or refused authentication.
    """
    settings = ctx.settings
    conf = settings.app.sync
    options = SyncOptions(
        dry_run=dry_run,
        full=full,
        force=force,
        overlap=timedelta(seconds=_duration(conf.overlap, "[sync] overlap")),
        safety_valve=conf.safety_valve,
        remind=not no_remind,
    )
    stop = StopFlag()
    then = _escalation(ctx, as_json, now, strict) if (escalate or conf.escalate) else None
    if every is None:
        ctx_exit(run_once(ctx, options, now, stop, as_json, then))
        return
    if now is not None:
        raise click.BadParameter("a loop evaluates at the real time; drop --now", param_hint="--every")
    interval = _interval(every)
    ctx_exit(_loop(ctx, options, interval, as_json, stop, then))


def _interval(every: str) -> float:
    if every.strip().isdigit():
        raise click.BadParameter(f"{every!r} has no unit; write e.g. 30s, 5m or 1h", param_hint="--every")
    seconds = _duration(every, "--every")
    if seconds < MIN_INTERVAL:
        raise click.BadParameter(f"{every!r} is under {MIN_INTERVAL:.0f}s; a tighter loop only loads the tracker")
    return seconds


def _escalation(ctx: Context, as_json: bool, now: str | None, strict: bool) -> Callable[[], EscalationRun]:
    """After the pass: `escalate --yes` at the same --now. Blocked cases are reported; they fail a
    scheduled run only with --strict (else one blocked case would fail every run until someone acts)."""

    def run() -> EscalationRun:
        return run_escalation(ctx, dry_run=False, cases=(), yes=True, as_json=as_json, now=now, strict=strict)

    return run


def _loop(
    ctx: Context,
    options: SyncOptions,
    interval: float,
    as_json: bool,
    stop: StopFlag,
    then: Callable[[], EscalationRun] | None,
) -> int:
    """Run a pass every ``interval`` seconds until SIGTERM/SIGINT; returns the last pass's exit code."""

    def request_stop(_signum: int, _frame: Any) -> None:
        stop.set()  # a plain assignment: nothing in a signal handler may take a lock

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    try:
        while not stop.is_set():
            try:
                code = run_once(ctx, options, None, stop, as_json, then)
            except (LockHeldError, SafetyValveError, TrackerError) as exc:
                # a loop outlives a busy lock, an unreachable or suddenly empty tracker: say so, try next time
                click.echo(f"casebridge: {exc}", err=True)
                code = exc.exit_code
            except CasebridgeError:
                raise
            stop.wait(interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def ctx_exit(code: int) -> None:
    click.get_current_context().exit(code)


def _configured_targets(ctx: Context) -> list[tuple[str, Connector]]:
    """The tracker, and the liaison queue when ``[liaison]`` names another target."""
    settings = ctx.settings
    targets = [("tracker", settings.tracker())]
    if settings.app.liaison is not None:
        targets.append(("liaison", settings.liaison()))
    return targets


@click.command()
@pass_ctx
def check(ctx: Context) -> None:
    """Check that the tracker (and the liaison queue) has every field, status and transition needed."""
    targets = _configured_targets(ctx)
    missing: list[tuple[str, Missing]] = []
    try:
        for _, target in targets:
            missing += [(target.name, item) for item in target.check_schema()]
    finally:
        for _, target in targets:
            target.close()
    if not missing:
        names = " and ".join(f"{section} {t.name}" for section, t in targets)
        click.echo(f"{names}: ready for workflow {ctx.settings.workflow().name}")
        return
    for name, item in missing:
        click.echo(f"{name}: {item}")
    first = missing[0][0]
    click.echo(f"{len(missing)} missing; run `casebridge setup {first}` for how to add them", err=True)
    ctx_exit(EXIT_USAGE)


@click.command()
@click.argument("target", required=False, metavar="[TARGET]")
@click.option("--apply", "apply", is_flag=True, help="Create over the API what the account may create.")
@pass_ctx
def setup(ctx: Context, target: str | None, apply: bool) -> None:
    """Print (or with --apply, perform) what makes a configured tracker or liaison TARGET ready.

    \b
    TARGET is the connector of [tracker] or [liaison] (default: the tracker):
      redmine  prints the Ruby script a Redmine admin runs with `rails runner`
      jira     prints the custom fields, statuses and transitions needed (no network);
               --apply creates the custom fields the account may create
      email    checks nothing to set up; `casebridge check` tries the SMTP login
      local    needs no set-up
    """
    targets = _configured_targets(ctx)
    try:
        chosen = [t for _, t in targets if target in (None, t.name)][:1]
        if not chosen:
            configured = ", ".join(t.name for _, t in targets)
            raise click.BadParameter(
                f"{target!r} is not configured here (configured: {configured}; config: {ctx.settings.label})",
                param_hint="TARGET",
            )
        click.echo(chosen[0].setup(apply=apply))
        if apply and (remaining := chosen[0].check_schema()):
            click.echo(f"{len(remaining)} still missing after --apply; an administrator must add them", err=True)
            ctx_exit(EXIT_USAGE)
    finally:
        for _, t in targets:
            t.close()


COMMANDS = [sync, check, setup]

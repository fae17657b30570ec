"""find IDENTIFIER: every case that names an account, whichever way it was written."""

from __future__ import annotations

import json

import click

from casebridge.app.sync_plan import evaluate, history_reader
from casebridge.cli import Context, now_option, parse_now, pass_ctx
from casebridge.cli.cases_cmds import _print_text, evaluation_json
from casebridge.state.store import StateStore
from casebridge.workflows.case_index import build_index, canonical_provider
from casebridge.workflows.cases import IdentifierType, TrackedCase
from casebridge.workflows.identifiers import guess_keys

TYPES = [t.value for t in IdentifierType]


def _cached(ctx: Context) -> list[TrackedCase]:
    path = ctx.settings.state_path
    if not path.is_file():
        return []
    store = StateStore(path)
    try:
        return [c.tracked for c in store.load().values() if c.tracked is not None]
    finally:
        store.close()


@click.command()
@click.argument("identifier")
@click.option("--type", "kind", type=click.Choice(TYPES), help="The identifier's type (default: every type it may be).")
@click.option("--region", metavar="CC", help="Country for a phone number written without +, e.g. PK.")
@click.option("--live", is_flag=True, help="Read the tracker's listing instead of the sync job's cache.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@now_option
@pass_ctx
def find(
    ctx: Context, identifier: str, kind: str | None, region: str | None, live: bool, as_json: bool, now: str | None
) -> None:
    """List every case naming IDENTIFIER (phone, e-mail, URL, IP, username...), normalised: "+92 300
    1234567" finds "0092-300-1234567". Reads the sync job's cache (one listing when it is empty)."""
    moment = parse_now(now)
    settings = ctx.settings
    directory = settings.directory()
    workflow = settings.workflow()
    tracker = settings.tracker()
    try:
        cases = [] if live else _cached(ctx)
        if not cases:
            cases = list(tracker.list_cases())
        index = build_index(cases, directory)
        wanted = index.find(guess_keys(identifier, kind=kind, region=region.upper() if region else None))
        hits = sorted((t for t in cases if t.case.reference in wanted), key=lambda t: t.case.reference)
        read = history_reader(tracker)
        evaluations = [evaluate(t, read(t), workflow, moment) for t in hits]
    finally:
        tracker.close()
    if as_json:
        out = []
        for ev in evaluations:
            item = evaluation_json(ev, workflow)
            item["provider_canonical"] = canonical_provider(ev.tracked.case, directory)
            out.append(item)
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if not evaluations:
        click.echo(f"no case names {identifier!r}")
        return
    _print_text(evaluations, directory, workflow)


COMMANDS = [find]

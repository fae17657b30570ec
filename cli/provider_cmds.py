"""providers check | list | show NAME: the provider directory."""

from __future__ import annotations

import json
from typing import Any

import click

from casebridge.cli import Context, pass_ctx
from casebridge.errors import UserError
from casebridge.workflows.directory import Directory, Fact, Provider, describe_problems, load_directory


def _directory(ctx: Context, files: tuple[str, ...]) -> Directory:
    return load_directory(files) if files else ctx.settings.directory()


@click.group()
def providers() -> None:
    """The provider directory: legal entities, request channels, sources."""


@providers.command("check")
@click.argument("files", nargs=-1)
@pass_ctx
def check(ctx: Context, files: tuple[str, ...]) -> None:
    """Validate the shipped directory plus FILES (default: plus the configured [providers] extra)."""
    directory = _directory(ctx, files)
    facts = sum(_fact_count(p) for p in directory)
    for warning in describe_problems(directory):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"ok: {len(directory)} providers, {facts} facts, each with a source and a check date")


def _fact_count(p: Provider) -> int:
    return len(p.entities) + len(p.channels) + (p.foreign_orders_fact is not None) + (p.preservation_fact is not None)


@providers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def list_(ctx: Context, as_json: bool) -> None:
    """Every provider with its aliases."""
    directory = ctx.settings.directory()
    if as_json:
        click.echo(json.dumps([provider_json(p) for p in directory], indent=2, ensure_ascii=False))
        return
    for p in directory:
        aliases = ", ".join(p.aliases) or "-"
        click.echo(f"{p.name:<14} {aliases}")


@providers.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def show(ctx: Context, name: str, as_json: bool) -> None:
    """One provider (by name, alias or entity name) with every fact and its source."""
    directory = ctx.settings.directory()
    provider = directory.resolve(name)
    if provider is None:
        near = directory.nearest(name)
        hint = f" (nearest: {', '.join(near)})" if near else ""
        raise UserError(f"no provider {name!r} in the directory{hint}; `casebridge providers list` lists them")
    if as_json:
        click.echo(json.dumps(provider_json(provider), indent=2, ensure_ascii=False))
        return
    for line in _show_lines(provider):
        click.echo(line)


def _cite(fact: Fact) -> str:
    return f"[{fact.source}, checked {fact.checked.isoformat()}]"


def _show_lines(p: Provider) -> list[str]:
    lines = [p.name, f"  aliases: {', '.join(p.aliases) or '-'}", f"  defined in: {p.source_path}"]
    for e in p.entities:
        lines.append(f"  entity: {e.name} ({e.country or '??'}, {e.role}) {_cite(e.fact)}")
        if e.serves:
            lines.append(f"      serves: {e.serves}")
    for c in p.channels:
        lines.append(f"  channel ({', '.join(c.purposes)}): {c.kind} {c.address} {_cite(c.fact)}")
        if c.fact.note:
            lines.append(f"      {c.fact.note}")
    if p.foreign_orders_fact is not None:
        lines.append(
            f"  accepts foreign orders directly: {'yes' if p.foreign_orders else 'no'} {_cite(p.foreign_orders_fact)}"
        )
        if p.foreign_orders_fact.note:
            lines.append(f"      {p.foreign_orders_fact.note}")
    if p.preservation_fact is not None:
        ext = f" (+{p.preservation_extension} on request)" if p.preservation_extension else ""
        lines.append(f"  preservation: {p.preservation}{ext} {_cite(p.preservation_fact)}")
    return lines


def _fact_json(fact: Fact) -> dict[str, Any]:
    return {"source": fact.source, "checked": fact.checked.isoformat(), "note": fact.note or None}


def provider_json(p: Provider) -> dict[str, Any]:
    return {
        "name": p.name,
        "aliases": list(p.aliases),
        "entities": [
            {"name": e.name, "country": e.country, "role": e.role, "serves": e.serves or None, **_fact_json(e.fact)}
            for e in p.entities
        ],
        "channels": [
            {"kind": c.kind, "address": c.address, "for": list(c.purposes), **_fact_json(c.fact)} for c in p.channels
        ],
        "foreign_orders": None
        if p.foreign_orders_fact is None
        else {"accepted": p.foreign_orders, **_fact_json(p.foreign_orders_fact)},
        "preservation": None
        if p.preservation_fact is None
        else {"period": p.preservation, "extension": p.preservation_extension, **_fact_json(p.preservation_fact)},
        "defined_in": p.source_path,
    }


COMMANDS = [providers]

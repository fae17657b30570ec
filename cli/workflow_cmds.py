"""workflow check / workflow show: validate and draw a workflow definition."""

from __future__ import annotations

import click

from casebridge.cli import Context, pass_ctx
from casebridge.workflows import load_workflow
from casebridge.workflows.model import ClockKind, Workflow


def _load(ctx: Context, file: str | None) -> Workflow:
    return load_workflow(file) if file else ctx.settings.workflow()


@click.group()
def workflow() -> None:
    """Validate and draw workflow definitions."""


@workflow.command("check")
@click.argument("file", required=False)
@pass_ctx
def check(ctx: Context, file: str | None) -> None:
    """Validate FILE (default: the configured workflow); exit 2 with FILE: key <- problem if invalid."""
    wf = _load(ctx, file)
    covered = sum(len(p.targets) for p in wf.policies)
    click.echo(
        f"{wf.source_path}: ok: {len(wf.states)} states, {len(wf.transitions)} transitions, "
        f"{len(wf.clocks)} clocks, {len(wf.policies)} policies ({covered} clock targets)"
    )


def _mermaid(wf: Workflow) -> list[str]:
    lines = ["stateDiagram-v2", f"    [*] --> {wf.initial}"]
    for t in wf.transitions:
        label = f" : {t.name}" if t.name else ""
        lines += [f"    {src} --> {t.target}{label}" for src in sorted(t.sources)]
    lines += [f"    {s.name} --> [*]" for s in wf.states.values() if s.terminal]
    for clock in wf.clocks.values():
        pauses = f", pauses in {', '.join(sorted(clock.pause_in))}" if clock.pause_in else ""
        lines.append(f"    note right of {sorted(clock.start_on)[0]} : clock {clock.name} ({clock.kind}){pauses}")
    return lines


def _dot(wf: Workflow) -> list[str]:
    lines = [f'digraph "{wf.name}" {{', "    rankdir=LR;", "    node [shape=box, style=rounded];"]
    for s in wf.states.values():
        shape = ", peripheries=2" if s.terminal else ""
        lines.append(f'    {s.name} [label="{s.label}"{shape}];')
    for t in wf.transitions:
        label = f' [label="{t.name}"]' if t.name else ""
        lines += [f"    {src} -> {t.target}{label};" for src in sorted(t.sources)]
    lines.append("}")
    return lines


def _text(wf: Workflow) -> list[str]:
    lines = [f"workflow {wf.name}: {wf.description}", f"initial state: {wf.initial}", "", "states:"]
    for s in wf.states.values():
        nexts = sorted({t.target for t in wf.transitions if s.name in t.sources})
        end = " (terminal)" if s.terminal else ""
        lines.append(f"  {s.name:<20} {s.label!r}{end} -> {', '.join(nexts) or '-'}")
    lines += ["", "clocks:"]
    for c in wf.clocks.values():
        pause = "never pauses" if c.kind is ClockKind.LEGAL else f"pauses in {', '.join(sorted(c.pause_in)) or '-'}"
        lines.append(
            f"  {c.name:<15} {c.kind!s:<12} calendar {c.calendar}; starts on {', '.join(sorted(c.start_on))}; "
            f"{pause}; stops on {', '.join(sorted(c.stop_on))}"
        )
    lines += ["", "policies:"]
    for p in wf.policies:
        for t in p.targets:
            esc = " escalates" if t.escalate else ""
            lines.append(
                f"  {','.join(sorted(p.request_types))} x {','.join(sorted(p.legal_bases))}: {t.clock} "
                f"{t.target / 3600:g}h (warn {t.warn / 3600:g}h){esc}  [{t.source}]"
            )
    return lines


@workflow.command("show")
@click.argument("file", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot"]), default="text", show_default=True)
@pass_ctx
def show(ctx: Context, file: str | None, fmt: str) -> None:
    """Draw FILE (default: the configured workflow) as text, Mermaid or Graphviz dot."""
    wf = _load(ctx, file)
    render = {"text": _text, "mermaid": _mermaid, "dot": _dot}[fmt]
    click.echo("\n".join(render(wf)))


COMMANDS = [workflow]

"""info and config: which configuration is in force, where every file lives, the commented example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from casebridge.cli import Context, pass_ctx
from casebridge.cli.config import EXAMPLE
from casebridge.errors import ConfigError


def _file(path: Path) -> dict[str, Any]:
    return {"path": str(path), "exists": path.exists()}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def info(ctx: Context, as_json: bool) -> None:
    """Which config file is in force (or the embedded defaults), the tracker, the workflow and every file
    casebridge reads or writes. Creates nothing."""
    settings = ctx.settings
    files = {"state store": settings.state_path, "audit log": settings.audit_path, "run lock": settings.lock_path}
    files |= {f"tracker {key}": path for key, path in settings.connector_paths("tracker").items()}
    if settings.app.liaison is not None:
        files |= {f"liaison {key}": path for key, path in settings.connector_paths("liaison").items()}
    liaison = settings.app.liaison or {"connector": "(the tracker's own queue)"}
    data: dict[str, Any] = {
        "config": str(settings.source) if settings.source else None,
        "tracker": settings.tracker_label(),
        "liaison": liaison.get("connector"),
        "workflow": settings.workflow().name,
        "files": {name: _file(path) for name, path in files.items()},
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"config:   {settings.source or 'none: embedded defaults'}")
    click.echo(f"tracker:  {data['tracker']}")
    click.echo(f"liaison:  {data['liaison']}")
    click.echo(f"workflow: {data['workflow']}")
    for name, entry in data["files"].items():
        click.echo(f"{name + ':':<15} {entry['path']}{'' if entry['exists'] else '  (not created yet)'}")


@click.group()
def config() -> None:
    """The configuration file."""


@config.command()
def example() -> None:
    """Print the commented example configuration (every key); save it as casebridge.toml and edit."""
    try:
        click.echo(EXAMPLE.read_text(encoding="utf-8"), nl=False)
    except OSError as exc:
        raise ConfigError(f"{EXAMPLE}: the example configuration is missing from this installation ({exc})") from None


COMMANDS = [info, config]

"""Shell completion of workflow states and case references (click's completion calls these).

Completion must be instant and must never write or reach the network: states come from the workflow
file, references from the sync job's state store when it exists. Any problem completes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

from casebridge.errors import CasebridgeError

if TYPE_CHECKING:
    from casebridge.cli.config import Settings


def _settings(ctx: click.Context) -> Settings:
    from casebridge.cli.config import load_settings

    root = ctx.find_root()
    return load_settings(root.params.get("config_path"))


def complete_state(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        states = _settings(ctx).workflow().states
    except (CasebridgeError, OSError):
        return []
    return [CompletionItem(name) for name in states if name.startswith(incomplete)]


def complete_reference(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from casebridge.state.store import StateStore

    try:
        settings = _settings(ctx)
        if not settings.state_path.exists():
            return []
        store = StateStore(settings.state_path)
        try:
            references = store.references()
        finally:
            store.close()
    except (CasebridgeError, OSError):
        return []
    return [CompletionItem(ref) for ref in references if ref.startswith(incomplete)]

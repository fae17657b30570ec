"""Redmine text for the connector: one Markdown source -> the instance's text formatting.

The rendering itself is the project's shared renderer (``workflows.render.to_redmine``: Markdown ->
node tree -> Textile or Redmine Markdown, every text node escaped with the target's rules), so
dossiers, descriptions and comments look the same in every tracker. Case data put into Markdown goes
through ``md_escape`` (``workflows.render.md_text``) first, so it can never become markup.
"""

from __future__ import annotations

from casebridge.connectors.redmine.config import TextFormat
from casebridge.workflows.render import md_text, to_redmine


def md_escape(text: object) -> str:
    """Escape ``text`` (for example a case field) so Markdown shows it literally."""
    return md_text(text)


def render(source: str, fmt: TextFormat) -> str:
    """``source`` (Markdown) rendered for a Redmine whose text formatting is ``fmt``."""
    return to_redmine(source, fmt)

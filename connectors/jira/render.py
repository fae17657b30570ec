"""Jira text for the connector: one Markdown source -> wiki markup (Data Center, API v2) or ADF (Cloud, v3).

The rendering itself is the project's shared renderer (``workflows.render.to_jira_wiki`` / ``to_adf``:
Markdown -> node tree -> target, every text node escaped with Jira's rules), so dossiers, descriptions
and comments look the same in every tracker. Case data put into Markdown goes through ``md_escape``
(one line) or ``workflows.render.md_paragraphs`` (multi-line) first, so it can never become markup. Reading ADF back is
Jira's own and stays here.
"""

from __future__ import annotations

from typing import Any

from casebridge.workflows.render import md_text, to_adf, to_jira_wiki

__all__ = ["adf_plain_text", "md_escape", "to_adf", "to_wiki"]


def md_escape(text: object) -> str:
    """Escape ``text`` (one line of case data) so Markdown shows it literally."""
    return md_text(text)


def to_wiki(markdown_text: str) -> str:
    """Jira wiki markup for ``markdown_text``."""
    return to_jira_wiki(markdown_text)


def adf_plain_text(node: Any) -> str:
    """The text of an ADF document, blocks separated by blank lines (reads back what we wrote)."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    parts = [adf_plain_text(child) for child in node.get("content", [])]
    return ("\n\n" if node.get("type") == "doc" else "").join(parts)

"""Redmine text via the shared renderer (the live rendering check is in test_redmine_connector.py)."""

from __future__ import annotations

import pytest

from casebridge.connectors.redmine.text import md_escape, render

SOURCE = "# Dossier\n\nSome **bold** and *em*.\n\n* one\n* two\n"


def test_textile_and_markdown_structure():
    textile, markdown = render(SOURCE, "textile"), render(SOURCE, "markdown")
    assert textile.startswith("h1. Dossier") and "*bold*" in textile and "_em_" in textile
    assert markdown.startswith("# Dossier") and "**bold**" in markdown and "*em*" in markdown
    assert "* one" in textile and "- one" in markdown


@pytest.mark.parametrize("fmt", ["textile", "markdown", "common_mark"])
def test_escaped_case_data_stays_literal(fmt):
    data = '*x* _y_ "l":http://e.vil [a](javascript:1) <script> #12 @admin !i.png! {{macro}}'
    out = render("Facts: " + md_escape(data), fmt)
    for markup in ("*x*", "_y_", "<script>", " #12 ", " @admin ", "!i.png!", "{{", "[a](", "javascript:1)"):
        assert markup not in out, markup


def test_unknown_format_is_refused():
    with pytest.raises(ValueError):
        render("x", "html")  # type: ignore[arg-type]

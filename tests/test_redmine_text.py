"""Markdown -> Redmine text formatting (pure; the live rendering check is in test_redmine_connector.py)."""

from __future__ import annotations

import pytest

from connectors.redmine_text import inert, md_escape, render

SOURCE = """# Dossier FIA-1

Some **bold**, *em* and `a<b>` with [a link](https://example.org/x y).

* one
* two

> quoted

```
raw <pre> & </pre> text
```
"""


def test_textile_structure():
    out = render(SOURCE, "textile")
    assert out.startswith("h1. Dossier FIA&#45;1\n")
    assert "*bold*" in out and "_em_" in out and "@a<b>@" in out
    assert '"a link":https://example.org/x%20y' in out
    assert "* one\n* two" in out and "> quoted" in out
    assert "<pre>raw <pre> & < /pre> text</pre>" in out  # an inner </pre> cannot end the block


def test_markdown_structure():
    out = render(SOURCE, "markdown")
    assert out.startswith("# Dossier FIA&#45;1\n")
    assert "**bold**" in out and "*em*" in out and "`a<b>`" in out
    assert "[a link](https://example.org/x%20y)" in out
    assert "```\nraw <pre> & </pre> text\n```" in out


@pytest.mark.parametrize("fmt", ["textile", "markdown", "common_mark"])
def test_escaped_case_data_stays_literal(fmt):
    data = '*x* _y_ "l":http://e.vil [a](javascript:1) <script> #12 @admin !i.png! |t| {{macro}}'
    out = render("Facts: " + md_escape(data), fmt)
    for markup in ("*x*", "_y_", "<script>", " #12 ", " @admin ", "!i.png!", "{{", "[a]", "javascript:"):
        assert markup not in out, markup


def test_raw_html_in_the_source_is_text_and_links_are_restricted():
    out = render("<b>hi</b> [x](javascript:alert(1)) [m](mailto:a@b.org)", "markdown")
    assert "<b>" not in out and "&#60;b&#62;hi" in out
    assert "(#)" in out and "(mailto:a@b.org)" in out


def test_inert_keeps_plain_text_plain():
    assert inert("Google LLC 2026") == "Google LLC 2026"
    assert inert("a&b") == "a&#38;b"

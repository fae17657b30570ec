"""Render a dossier's Markdown for each escalation target, keeping case data inert.

The dossier (``workflows.dossier``) is Markdown that casebridge writes itself: headings, paragraphs,
bullet lists, bold labels, tables and links; every value that came from case data is passed through
``md_text`` first, so nothing in a field becomes markup. This module turns that Markdown into:

- HTML (the ``markdown`` package with raw HTML switched off) and plain text: the two parts of a mail;
- Jira wiki markup (Data Center / Server) and Atlassian Document Format (Jira Cloud);
- Redmine text formatting: CommonMark or Textile, as the Redmine server is configured.

Every target is produced from the same tree: Markdown -> HTML (by the library) -> a small node tree
(``parse``) -> target. Text nodes of that tree are plain Unicode, so each target escapes text with its
own rules and a field can never open, close or inject markup in any of them.
"""

from __future__ import annotations

import json
import re
import textwrap
import threading
import unicodedata
from dataclasses import dataclass, field
from html import escape as html_escape
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    import markdown

MAX_FIELD_CHARS = 4000  # a runaway field must not make the dossier unpostable (Jira caps text at 32767)

# Bidi embedding/override/isolate controls can make a dossier *display* something other than what it
# says (the "Trojan Source" trick); right-to-left letters themselves are kept.
_BIDI_CONTROLS = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}
_WS = re.compile(r"[ \t\u00a0\u2028\u2029]+")


def clean_text(value: object, *, multiline: bool = False, limit: int = MAX_FIELD_CHARS) -> str:
    """``value`` as text safe to place anywhere: control and bidi-override characters removed, runs of
    whitespace collapsed, at most ``limit`` characters. With ``multiline`` newlines are kept (paragraphs)."""
    text = str(value)
    if text.isprintable():  # the common case: no control, bidi, line or tab character to remove
        cleaned = _WS.sub(" ", text).strip()
        return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"
    out = []
    for ch in text.replace("\r\n", "\n").replace("\r", "\n"):
        if ch == "\n":
            out.append("\n" if multiline else " ")
        elif ch == "\t":
            out.append(" ")
        elif ord(ch) in _BIDI_CONTROLS or unicodedata.category(ch) == "Cc":
            continue
        else:
            out.append(ch)
    lines = [_WS.sub(" ", line).strip() for line in "".join(out).split("\n")]
    cleaned = "\n".join(lines).strip() if multiline else " ".join(lines).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


# Python-Markdown's backslash-escapable characters (a subset of CommonMark's, which accepts all of them).
_MD_BACKSLASH = set("\\`*_{}[]()#+-.!|")
# '=' lines would make setext headings, '~~~' would open a fenced code block
_MD_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "=": "&#61;", "~": "&#126;"}
_MD_ESCAPES = str.maketrans({**{ch: "\\" + ch for ch in _MD_BACKSLASH}, **_MD_ENTITY})


def md_text(value: object) -> str:
    """One line of case data as Markdown that renders back to exactly ``clean_text(value)``."""
    return clean_text(value).translate(_MD_ESCAPES)


def md_paragraphs(value: object) -> list[str]:
    """Multi-line case data as Markdown paragraphs (one per non-empty line)."""
    return [md_text(line) for line in clean_text(value, multiline=True).split("\n") if line]


def md_link(text: str, url: str | None) -> str:
    """``[text](url)`` for http(s) URLs (``text`` already Markdown); other schemes are shown as text."""
    if not url or not re.match(r"^https?://", url, re.I):
        return text
    safe = re.sub(r"[\s()<>\"'\\]", lambda m: f"%{ord(m.group()):02X}", url)
    return f"[{text}]({safe})"


# --------------------------------------------------------------------------------------- Markdown -> tree
@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


_VOID = {"br", "hr", "img"}


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def _markdown() -> markdown.Markdown:
    import markdown  # imported when a dossier is rendered: start-up does not pay for it

    md = markdown.Markdown(extensions=["tables", "fenced_code"], output_format="html")
    # No raw HTML, ever: a '<' that slipped past escaping is shown, not interpreted.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


_CONVERTERS = threading.local()  # one converter per thread, reset between documents (not thread-safe)


def to_html(source: str) -> str:
    """The HTML fragment of the dossier (raw HTML in the source is escaped, not passed through)."""
    md = getattr(_CONVERTERS, "md", None)
    if md is None:  # building one costs about a third of converting a dossier: reused
        md = _CONVERTERS.md = _markdown()
    try:
        return md.convert(source)
    finally:
        md.reset()


def parse(source: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(to_html(source))
    builder.close()
    return builder.root


def _blocks(node: Node) -> list[Node]:
    """Block children; whitespace between blocks dropped, stray text wrapped in a paragraph."""
    out: list[Node] = []
    for child in node.children:
        if isinstance(child, str):
            if child.strip():
                out.append(Node("p", children=[child]))
        else:
            out.append(child)
    return out


def _inline_text(children: list[Node | str]) -> list[Node | str]:
    """Inline children with the newlines Python-Markdown leaves inside paragraphs turned into spaces."""
    return [c.replace("\n", " ") if isinstance(c, str) else c for c in children]


def _is_list(node: Node | str) -> TypeGuard[Node]:
    return isinstance(node, Node) and node.tag in {"ul", "ol"}


def _list_items(node: Node) -> list[tuple[list[Node | str], list[Node]]]:
    """The items of list ``node`` as (inline content, nested lists): Markdown puts a sub-list inside
    its parent item, and every target writes it after the item's own text."""
    return [
        ([c for c in li.children if not _is_list(c)], [c for c in li.children if _is_list(c)])
        for li in _blocks(node)
        if li.tag == "li"
    ]


def _rows(table: Node) -> list[tuple[bool, list[Node]]]:
    rows: list[tuple[bool, list[Node]]] = []
    for part in _blocks(table):
        for tr in _blocks(part) if part.tag in {"thead", "tbody"} else [part]:
            cells = [c for c in _blocks(tr) if c.tag in {"th", "td"}]
            rows.append((bool(cells) and cells[0].tag == "th", cells))
    return rows


def html_document(source: str, title: str) -> str:
    """A complete HTML e-mail body: the dossier fragment with a minimal, client-safe style."""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html_escape(clean_text(title))}</title>"
        "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;"
        "text-align:left;vertical-align:top}</style></head>\n"
        f'<body dir="auto">\n{to_html(source)}\n</body></html>\n'
    )


# ------------------------------------------------------------------------------------------ plain text
def _plain_inline(children: list[Node | str]) -> str:
    parts = []
    for c in _inline_text(children):
        if isinstance(c, str):
            parts.append(c)
        elif c.tag == "br":
            parts.append("\n")
        elif c.tag == "a":
            label, href = _plain_inline(c.children), c.attrs.get("href", "")
            parts.append(label if label == href else f"{label} <{href}>")
        else:
            parts.append(_plain_inline(c.children))
    return "".join(parts).strip()


def _fill(text: str, width: int, indent: str = "") -> str:
    return textwrap.fill(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=" " * len(indent),
        break_long_words=False,
        break_on_hyphens=False,
    )


def _plain_list(node: Node, width: int, indent: str = "") -> list[str]:
    lines = []
    for i, (content, nested) in enumerate(_list_items(node), 1):
        mark = indent + (f"{i}. " if node.tag == "ol" else "- ")
        lines.append(_fill(_plain_inline(content), width, mark))
        lines += [line for sub in nested for line in _plain_list(sub, width, " " * len(mark))]
    return lines


def _plain_block(node: Node, width: int) -> list[str]:
    if node.tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
        text = _plain_inline(node.children)
        return [text + "\n" + {"h1": "=", "h2": "-"}.get(node.tag, "~") * min(len(text), width)]
    if node.tag in {"ul", "ol"}:
        return ["\n".join(_plain_list(node, width))]
    if node.tag == "table":
        rows = _rows(node)
        header = [_plain_inline(c.children) for c in rows[0][1]] if rows and rows[0][0] else []
        out = []
        for is_head, cells in rows:
            if is_head:
                continue
            values = [(h, _plain_inline(c.children)) for h, c in zip(header or [""] * len(cells), cells, strict=False)]
            pairs = [f"{h}: {v}" if h else v for h, v in values if v]  # empty cells left out
            out.append(_fill("; ".join(pairs), width, "- "))
        return ["\n".join(out)] if out else []
    if node.tag == "hr":
        return ["-" * min(40, width)]
    if node.tag == "pre":
        return [node.text().rstrip("\n")]
    if node.tag == "blockquote":
        return [b for child in _blocks(node) for b in _plain_block(child, width)]
    return [_fill(_plain_inline(node.children), width)]


def to_plain(source: str, width: int = 78) -> str:
    """The dossier as plain text (the text/plain part of a mail)."""
    blocks = [b for node in _blocks(parse(source)) for b in _plain_block(node, width) if b]
    return "\n\n".join(blocks) + "\n"


# --------------------------------------------------------------------------- the other targets, by module
def to_jira_wiki(source: str) -> str:
    from casebridge.workflows.render_targets import jira_wiki

    return jira_wiki(parse(source))


def to_adf(source: str) -> dict[str, Any]:
    from casebridge.workflows.render_targets import adf

    return adf(parse(source))


def to_adf_json(source: str) -> str:
    return json.dumps(to_adf(source), ensure_ascii=False)


def to_redmine(source: str, formatting: str = "common_mark") -> str:
    """Redmine text for its ``text_formatting`` setting: "common_mark" (default since Redmine 5),
    "markdown" (the older Redcarpet formatter) or "textile"."""
    from casebridge.workflows.render_targets import redmine_markdown, textile

    if formatting in {"common_mark", "markdown"}:
        return redmine_markdown(parse(source))
    if formatting == "textile":
        return textile(parse(source))
    raise ValueError(f"unknown Redmine text formatting {formatting!r} (common_mark, markdown or textile)")

"""Tracker renderers over the dossier tree of ``workflows.render``: Jira wiki, ADF, Redmine text.

Each renderer escapes every text node with the target's own rules (text nodes hold case data), and
emits markup only for the constructs the dossier uses: headings, paragraphs, lists, bold, italics,
code, links, tables and rules. Anything else is rendered as its text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casebridge.workflows.render import Node, _blocks, _inline_text, _list_items, _rows

InlineFn = Callable[[list[Node | str]], str]


def _href(node: Node) -> str | None:
    href = node.attrs.get("href", "")
    return href if re.match(r"^https?://", href, re.I) else None


def _percent(url: str, unsafe: str) -> str:
    """``url`` with the characters of the regex class ``unsafe`` (the target's link delimiters)
    percent-encoded, so a URL cannot end its link early."""
    return re.sub(unsafe, lambda m: f"%{ord(m.group()):02X}", url)


@dataclass(frozen=True)
class _Inline:
    """How a text markup writes the inline constructs the dossier uses. Text nodes (case data) go
    through ``escape``; anything else is rendered as its text."""

    escape: Callable[[str], str]
    strong: str  # the delimiter put on both sides
    em: str
    code: Callable[[str], str]  # the code span's text -> markup
    br: str
    link: Callable[[str, str], str]  # (label markup, http(s) URL) -> markup
    finish: Callable[[str], str] = str  # a last fix-up of every finished run

    def __call__(self, children: list[Node | str]) -> str:
        parts = []
        for c in _inline_text(children):
            if isinstance(c, str):
                parts.append(self.escape(c))
            elif c.tag in {"strong", "b"}:
                parts.append(f"{self.strong}{self(c.children).strip()}{self.strong}")
            elif c.tag in {"em", "i"}:
                parts.append(f"{self.em}{self(c.children).strip()}{self.em}")
            elif c.tag == "code":
                parts.append(self.code(c.text()))
            elif c.tag == "br":
                parts.append(self.br)
            elif c.tag == "a" and (url := _href(c)):
                parts.append(self.link(self(c.children), url))
            else:
                parts.append(self(c.children))
        return self.finish("".join(parts).strip())


# --------------------------------------------------------------------------------------- Jira wiki
# Backslash escapes Jira's markup characters; a backslash itself and '&' become entities (as pandoc's
# Jira writer does: "\\" would be a forced line break). Parentheses are escaped for emoticons "(y)".
_JIRA_SPECIAL = set("*_-+^~?|[]{}()!#")
_JIRA_LINE_START = re.compile(r"^(h[1-6]|bq|fn\d+)\.", re.I)
_JIRA_URL_UNSAFE = r"[|\]\[\s]"


# Jira's wiki renderer turns bare "scheme://..." and "mailto:..." in text into live links; in case data
# that would put an attacker's link (or a file:/// path) into the NCB's queue. The colon after a scheme
# becomes an entity: it still reads as ":", but no longer starts a link.
_JIRA_AUTOLINK = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*):(?=//|[^\s@:]+@)")


def jira_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("&#92;")
        elif ch == "&":
            out.append("&amp;")
        elif ch in _JIRA_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return _JIRA_AUTOLINK.sub(r"\1&#58;", "".join(out))


def _jira_line_start(text: str) -> str:
    # a paragraph of case data starting "h1." would become a heading: neutralise its first letter
    return _JIRA_LINE_START.sub(lambda m: f"&#{ord(m.group()[0])};" + m.group()[1:], text)


_jira_inline = _Inline(
    escape=jira_escape,
    strong="*",
    em="_",
    code=lambda text: "{{" + jira_escape(text) + "}}",
    br="\\\\ ",
    link=lambda label, url: f"[{label}|{_percent(url, _JIRA_URL_UNSAFE)}]",
    finish=_jira_line_start,
)


def jira_wiki(root: Node) -> str:
    return _tracker_text(root, _jira_inline, _jira_block)


def _wiki_list(node: Node, inline: InlineFn, marks: str = "") -> list[str]:
    """Jira wiki and Textile lists alike: one mark per level, "*" bullet, "#" number ("*#" nests)."""
    marks += "*" if node.tag == "ul" else "#"
    lines = []
    for content, nested in _list_items(node):
        lines.append(f"{marks} {inline(content)}")
        lines += [line for sub in nested for line in _wiki_list(sub, inline, marks)]
    return lines


def _jira_block(node: Node, inline: InlineFn) -> str:
    if node.tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
        return f"{node.tag}. {inline(node.children)}"
    if node.tag in {"ul", "ol"}:
        return "\n".join(_wiki_list(node, inline))
    if node.tag == "blockquote":
        return "{quote}\n" + "\n\n".join(_jira_block(child, inline) for child in _blocks(node)) + "\n{quote}"
    if node.tag == "table":
        lines = []
        for is_head, cells in _rows(node):
            sep = "||" if is_head else "|"
            lines.append(sep + sep.join((inline(c.children) or " ") for c in cells) + sep)
        return "\n".join(lines)
    if node.tag == "hr":
        return "----"
    if node.tag == "pre":
        return "{noformat}\n" + node.text().replace("{noformat}", "{ noformat}").rstrip("\n") + "\n{noformat}"
    return inline(node.children)


# ---------------------------------------------------------------------- Atlassian Document Format
def _adf_inline(children: list[Node | str], marks: tuple[dict[str, Any], ...] = ()) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in _inline_text(children):
        if isinstance(c, str):
            if c:
                out.append({"type": "text", "text": c, **({"marks": list(marks)} if marks else {})})
        elif c.tag in {"strong", "b"}:
            out += _adf_inline(c.children, (*marks, {"type": "strong"}))
        elif c.tag in {"em", "i"}:
            out += _adf_inline(c.children, (*marks, {"type": "em"}))
        elif c.tag == "code":
            out += _adf_inline([c.text()], ({"type": "code"},))  # ADF: code combines with links only
        elif c.tag == "br":
            out.append({"type": "hardBreak"})
        elif c.tag == "a" and _href(c):
            out += _adf_inline(c.children, (*marks, {"type": "link", "attrs": {"href": _href(c)}}))
        else:
            out += _adf_inline(c.children, marks)
    return _trim(out)


def _trim(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Strip the whitespace Markdown leaves at paragraph ends; ADF rejects empty text nodes."""
    if nodes and nodes[0].get("type") == "text":
        nodes[0]["text"] = nodes[0]["text"].lstrip()
    if nodes and nodes[-1].get("type") == "text":
        nodes[-1]["text"] = nodes[-1]["text"].rstrip()
    return [n for n in nodes if n.get("type") != "text" or n["text"]]


def _adf_para(children: list[Node | str]) -> dict[str, Any]:
    return {"type": "paragraph", "content": _adf_inline(children)}


def _adf_block(node: Node) -> list[dict[str, Any]]:
    if node.tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
        return [{"type": "heading", "attrs": {"level": int(node.tag[1])}, "content": _adf_inline(node.children)}]
    if node.tag in {"ul", "ol"}:
        items = [
            {"type": "listItem", "content": [_adf_para(content), *(b for sub in nested for b in _adf_block(sub))]}
            for content, nested in _list_items(node)
        ]
        return [{"type": "bulletList" if node.tag == "ul" else "orderedList", "content": items}] if items else []
    if node.tag == "table":
        rows = []
        for is_head, cells in _rows(node):
            kind = "tableHeader" if is_head else "tableCell"
            rows.append(
                {
                    "type": "tableRow",
                    "content": [{"type": kind, "attrs": {}, "content": [_adf_para(c.children)]} for c in cells],
                }
            )
        return (
            [
                {
                    "type": "table",
                    "attrs": {"isNumberColumnEnabled": False, "layout": "default"},
                    "content": rows,
                }
            ]
            if rows
            else []
        )
    if node.tag == "hr":
        return [{"type": "rule"}]
    if node.tag == "pre":
        text = node.text().rstrip("\n")
        return [{"type": "codeBlock", "content": [{"type": "text", "text": text}] if text else []}]
    if node.tag == "blockquote":
        inner = [b for child in _blocks(node) for b in _adf_block(child)]
        return [{"type": "blockquote", "content": inner}] if inner else []
    return [_adf_para(node.children)]


def adf(root: Node) -> dict[str, Any]:
    return {"version": 1, "type": "doc", "content": [b for n in _blocks(root) for b in _adf_block(n)]}


# ------------------------------------------------------------------------------ Redmine CommonMark
def commonmark_escape(text: str) -> str:
    """CommonMark lets every ASCII punctuation character be backslash-escaped; escaping all of them
    also stops GFM autolinks (``http\\://``) and HTML (``\\<``)."""
    return "".join("\\" + ch if (ch.isascii() and not ch.isalnum() and not ch.isspace()) else ch for ch in text)


_CM_URL_UNSAFE = r"[\s<>()\\]"
_cm_inline = _Inline(
    escape=commonmark_escape,
    strong="**",
    em="*",
    code=commonmark_escape,  # code spans cannot escape; show as text
    br="\\\n",
    link=lambda label, url: f"[{label}](<{_percent(url, _CM_URL_UNSAFE)}>)",
)


def _cm_list(node: Node, inline: InlineFn) -> list[str]:
    lines = []
    for i, (content, nested) in enumerate(_list_items(node), 1):
        mark = f"{i}." if node.tag == "ol" else "-"
        lines.append(f"{mark} {inline(content)}")
        # a sub-list belongs to the item whose text starts in its column
        lines += [" " * (len(mark) + 1) + line for sub in nested for line in _cm_list(sub, inline)]
    return lines


def _cm_block(node: Node, inline: InlineFn) -> str:
    if node.tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
        return "#" * int(node.tag[1]) + " " + inline(node.children)
    if node.tag in {"ul", "ol"}:
        return "\n".join(_cm_list(node, inline))
    if node.tag == "blockquote":
        inner = "\n\n".join(_cm_block(child, inline) for child in _blocks(node))
        return "\n".join(f"> {line}".rstrip() for line in inner.split("\n"))
    if node.tag == "table":
        lines = []
        for i, (_, cells) in enumerate(_rows(node)):
            lines.append("| " + " | ".join(inline(c.children) for c in cells) + " |")
            if i == 0:
                lines.append("|" + "|".join("---" for _ in cells) + "|")
        return "\n".join(lines)
    if node.tag == "hr":
        return "---"
    if node.tag == "pre":
        body = node.text().rstrip("\n")
        fence = "~" * max(3, max((len(m) for m in re.findall(r"~+", body)), default=0) + 1)
        return f"{fence}\n{body}\n{fence}"
    return inline(node.children)


def redmine_markdown(root: Node) -> str:
    return _tracker_text(root, _cm_inline, _cm_block)


# --------------------------------------------------------------------------------- Redmine Textile
def textile_escape(text: str) -> str:
    """Every ASCII punctuation character as a numeric entity: Textile has no backslash escape, and
    Redmine's link syntax (#123, @user, attachment:) runs on the rendered text."""
    out = []
    for i, ch in enumerate(text):
        if ch in "xX" and _between_digits(text, i):
            out.append(f"&#{ord(ch)};")  # Textile turns "3x4" / "3 x 4" into a multiplication sign
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch.isascii() and not ch.isalnum() and not ch.isspace():
            out.append(f"&#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def _between_digits(text: str, i: int) -> bool:
    before = text[max(0, i - 2) : i].rstrip(" ")
    after = text[i + 1 : i + 3].lstrip(" ")
    return bool(before) and before[-1].isdigit() and bool(after) and after[0].isdigit()


_TEXTILE_URL_UNSAFE = r"[\s\"<>()]"
_textile_inline = _Inline(
    escape=textile_escape,
    strong="*",
    em="_",
    code=textile_escape,
    br="\n",
    link=lambda label, url: f'"{label}":{_percent(url, _TEXTILE_URL_UNSAFE)}',
)


def _textile_block(node: Node, inline: InlineFn) -> str:
    if node.tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
        return f"{node.tag}. {inline(node.children)}"
    if node.tag in {"ul", "ol"}:
        return "\n".join(_wiki_list(node, inline))
    if node.tag == "blockquote":  # "bq." quotes one paragraph
        return "\n\n".join(
            f"bq. {inline(child.children)}" if child.tag == "p" else _textile_block(child, inline)
            for child in _blocks(node)
        )
    if node.tag == "table":
        lines = []
        for is_head, cells in _rows(node):
            cell = "|_. " if is_head else "| "
            lines.append("".join(f"{cell}{inline(c.children)} " for c in cells) + "|")
        return "\n".join(lines)
    if node.tag == "hr":
        return "<hr>"
    if node.tag == "pre":
        return "<pre>" + textile_escape(node.text().rstrip("\n")) + "</pre>"
    return "p. " + inline(node.children)


def textile(root: Node) -> str:
    return _tracker_text(root, _textile_inline, _textile_block)


def _tracker_text(root: Node, inline: InlineFn, block: Callable[[Node, InlineFn], str]) -> str:
    return "\n\n".join(text for n in _blocks(root) if (text := block(n, inline))) + "\n"

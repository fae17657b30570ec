"""One Markdown source rendered for Jira: wiki markup (Data Center, API v2) or ADF (Cloud, API v3).

Markdown is turned into HTML by the ``markdown`` package, and that HTML into the target format by a
small tree walker. Text nodes are escaped for the target (wiki) or are literal by construction (ADF), so
case data that happens to contain markup shows as text. Raw HTML in the Markdown source is not passed
through: unknown tags keep only their text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import markdown as md_lib

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~^])")
_WIKI_SPECIAL = re.compile(r"([*_{}\[\]|\-+^~!#?])")
_BLOCK = frozenset(
    [
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "li",
        "pre",
        "blockquote",
        "hr",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    ]
)
_MARKS = {
    "strong": "strong",
    "b": "strong",
    "em": "em",
    "i": "em",
    "code": "code",
    "del": "strike",
    "s": "strike",
}


def md_escape(text: str) -> str:
    """``text`` as literal Markdown: every character Markdown (or the HTML inside it) could read as markup
    is escaped, so a case field shows exactly as typed."""
    escaped = _MD_SPECIAL.sub(r"\\\1", text)
    return escaped.replace("&", "&amp;").replace("<", "&lt;")


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[_Node | str] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in ("br", "hr", "img"):
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def _tree(markdown_text: str) -> _Node:
    html = md_lib.markdown(markdown_text, extensions=["tables", "fenced_code", "sane_lists"])
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def _text_of(node: _Node | str) -> str:
    if isinstance(node, str):
        return node
    return "".join(_text_of(c) for c in node.children)


# -- wiki markup -----------------------------------------------------------------------------------
def wiki_escape(text: str) -> str:
    # a backslash starts an escape (and "\\" is a line break) in Jira wiki: write it as an entity
    return "".join("&#92;" if ch == "\\" else ("\\" + ch if _WIKI_SPECIAL.match(ch) else ch) for ch in text)


def to_wiki(markdown_text: str) -> str:
    """Jira wiki markup for ``markdown_text``."""
    blocks = [_wiki_block(child, 0) for child in _tree(markdown_text).children]
    return "\n\n".join(b for b in blocks if b.strip()).strip() + "\n"


def _wiki_block(node: _Node | str, depth: int) -> str:
    if isinstance(node, str):
        return wiki_escape(node.strip("\n"))
    tag = node.tag
    if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
        return f"{tag}. {_wiki_inline(node)}"
    if tag in ("ul", "ol"):
        return "\n".join(_wiki_list(node, ("*" if tag == "ul" else "#"), depth + 1))
    if tag == "pre":
        return "{noformat}\n" + _text_of(node).rstrip("\n").replace("{noformat}", "{ noformat}") + "\n{noformat}"
    if tag == "blockquote":
        inner = "\n\n".join(_wiki_block(c, depth) for c in node.children if _text_of(c).strip())
        return "{quote}\n" + inner + "\n{quote}"
    if tag == "hr":
        return "----"
    if tag == "table":
        return "\n".join(_wiki_rows(node))
    return _wiki_inline(node)


def _wiki_list(node: _Node, prefix: str, depth: int) -> list[str]:
    lines: list[str] = []
    for item in node.children:
        if not isinstance(item, _Node) or item.tag != "li":
            continue
        inline = [c for c in item.children if not (isinstance(c, _Node) and c.tag in ("ul", "ol"))]
        text = "".join(_wiki_inline_part(c) for c in inline).strip()
        lines.append(f"{prefix * depth} {text}")
        for sub in item.children:
            if isinstance(sub, _Node) and sub.tag in ("ul", "ol"):
                lines.extend(_wiki_list(sub, prefix + ("*" if sub.tag == "ul" else "#"), depth))
    return [line.replace(prefix * depth + prefix, prefix * depth + prefix, 1) for line in lines]


def _wiki_rows(table: _Node) -> list[str]:
    rows: list[str] = []
    stack = list(table.children)
    while stack:
        node = stack.pop(0)
        if not isinstance(node, _Node):
            continue
        if node.tag in ("thead", "tbody"):
            stack[:0] = node.children
        elif node.tag == "tr":
            cells = [c for c in node.children if isinstance(c, _Node)]
            if cells and cells[0].tag == "th":
                rows.append("||" + "||".join(_wiki_inline(c) for c in cells) + "||")
            else:
                rows.append("|" + "|".join(_wiki_inline(c) or " " for c in cells) + "|")
    return rows


def _wiki_inline(node: _Node) -> str:
    return "".join(_wiki_inline_part(c) for c in node.children).strip()


def _wiki_inline_part(node: _Node | str) -> str:
    if isinstance(node, str):
        return wiki_escape(node.replace("\n", " "))
    inner = "".join(_wiki_inline_part(c) for c in node.children)
    wrap = {"strong": "*", "b": "*", "em": "_", "i": "_", "del": "-", "s": "-"}
    if node.tag in wrap and inner.strip():
        return f"{wrap[node.tag]}{inner}{wrap[node.tag]}"
    if node.tag == "code":
        return "{{" + inner + "}}"
    if node.tag == "a":
        href = node.attrs.get("href", "").replace("|", "%7C").replace("]", "%5D")
        return f"[{inner}|{href}]" if href else inner
    if node.tag == "br":
        return "\n"
    if node.tag in ("p", "ul", "ol", "li"):
        return _wiki_block(node, 0)
    return inner


# -- Atlassian Document Format ------------------------------------------------------------------------
def to_adf(markdown_text: str) -> dict[str, Any]:
    """An ADF document (``{"type": "doc", "version": 1, ...}``) for ``markdown_text``."""
    content = [b for child in _tree(markdown_text).children for b in _adf_block(child)]
    return {"type": "doc", "version": 1, "content": content or [{"type": "paragraph", "content": []}]}


def _adf_block(node: _Node | str) -> list[dict[str, Any]]:
    if isinstance(node, str):
        text = node.strip("\n")
        return [_para([{"type": "text", "text": text}])] if text.strip() else []
    tag = node.tag
    if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
        return [{"type": "heading", "attrs": {"level": int(tag[1])}, "content": _adf_inline(node, [])}]
    if tag in ("ul", "ol"):
        items = [_adf_item(li) for li in node.children if isinstance(li, _Node) and li.tag == "li"]
        return [{"type": "bulletList" if tag == "ul" else "orderedList", "content": items}]
    if tag == "pre":
        text = _text_of(node).rstrip("\n")
        return [{"type": "codeBlock", "content": [{"type": "text", "text": text}] if text else []}]
    if tag == "blockquote":
        inner = [b for c in node.children for b in _adf_block(c)]
        return [{"type": "blockquote", "content": inner or [_para([])]}]
    if tag == "hr":
        return [{"type": "rule"}]
    if tag == "table":
        return [_adf_table(node)]
    return [_para(_adf_inline(node, []))]


def _para(content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "paragraph", "content": content}


def _adf_item(li: _Node) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    inline: list[_Node | str] = []
    for child in li.children:
        if isinstance(child, _Node) and child.tag in _BLOCK:
            if inline:
                content.append(_para(_adf_inline(_Node("span", children=inline), [])))
                inline = []
            content.extend(_adf_block(child))
        else:
            inline.append(child)
    if inline and _text_of(_Node("span", children=inline)).strip():
        content.append(_para(_adf_inline(_Node("span", children=inline), [])))
    return {"type": "listItem", "content": content or [_para([])]}


def _adf_table(table: _Node) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    stack = list(table.children)
    while stack:
        node = stack.pop(0)
        if isinstance(node, _Node) and node.tag in ("thead", "tbody"):
            stack[:0] = node.children
        elif isinstance(node, _Node) and node.tag == "tr":
            cells = [
                {
                    "type": "tableHeader" if c.tag == "th" else "tableCell",
                    "content": [_para(_adf_inline(c, []))],
                }
                for c in node.children
                if isinstance(c, _Node)
            ]
            rows.append({"type": "tableRow", "content": cells})
    return {"type": "table", "content": rows}


def _adf_inline(node: _Node, marks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for child in node.children:
        if isinstance(child, str):
            text = child.replace("\n", " ")
            if text:
                out.append({"type": "text", "text": text, **({"marks": list(marks)} if marks else {})})
        elif child.tag == "br":
            out.append({"type": "hardBreak"})
        elif child.tag in _MARKS:
            out.extend(_adf_inline(child, [*marks, {"type": _MARKS[child.tag]}]))
        elif child.tag == "a" and child.attrs.get("href"):
            out.extend(_adf_inline(child, [*marks, {"type": "link", "attrs": {"href": child.attrs["href"]}}]))
        else:
            out.extend(_adf_inline(child, marks))
    return out


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

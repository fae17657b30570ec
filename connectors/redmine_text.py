"""One Markdown source -> the Redmine instance's text formatting (Textile, Markdown or CommonMark).

The Markdown is parsed by the ``markdown`` library (raw HTML disabled, so ``<script>`` stays text) and
the element tree is written out again in the target syntax. Every piece of *text* is written with the
characters that carry markup in Textile or Markdown (and Redmine's own link syntax: ``#12``, ``@user``,
``r12``, ``commit:``) replaced by numeric HTML entities. Redmine renders entities as the characters, so
text from case data shows literally and is inert whatever it contains. Callers that build Markdown from
case data escape it with ``md_escape`` first.
"""

from __future__ import annotations

import copy
import html
import re
import threading
import xml.etree.ElementTree as ET

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

from connectors.redmine_config import TextFormat

# Markup characters of Textile, Markdown and Redmine links; '&' first so entities are not re-escaped.
_PLACEHOLDER = re.compile("\x02wzxhzdk:(\\d+)\x03")
_INERT = {ch: f"&#{ord(ch)};" for ch in "&<>*_+-^~@%\"'!?[](){}|#=:`\\$/"}
_INERT_RE = re.compile("[" + re.escape("".join(_INERT)) + "]")
# Python-Markdown's escapable characters (plus '|' for tables); raw HTML is off, so '<' needs none
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>])")


def md_escape(text: str) -> str:
    """Escape ``text`` (for example a case field) so Markdown shows it literally."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def inert(text: str) -> str:
    """``text`` with every markup character as a numeric entity (shown literally by Redmine)."""
    return _INERT_RE.sub(lambda m: _INERT[m.group(0)], text)


class _Capture(Treeprocessor):
    def __init__(self, md: markdown.Markdown, sink: list[ET.Element]) -> None:
        super().__init__(md)
        self.sink = sink

    def run(self, root: ET.Element) -> None:
        # deep copy: later serialisation steps mutate the tree. Fenced code blocks are not in the tree
        # but stashed as HTML behind a placeholder paragraph: put them back as <pre> elements.
        tree = copy.deepcopy(root)
        stash = self.md.htmlStash
        for parent in tree.iter():
            for i, child in enumerate(list(parent)):
                match = _PLACEHOLDER.fullmatch((child.text or "").strip()) if child.tag == "p" else None
                if match and int(match.group(1)) < len(stash.rawHtmlBlocks):
                    pre = _stashed_pre(str(stash.rawHtmlBlocks[int(match.group(1))]))
                    pre.tail = child.tail
                    parent[i] = pre
        self.sink.append(tree)


def _stashed_pre(fragment: str) -> ET.Element:
    try:
        return ET.fromstring(fragment)
    except ET.ParseError:  # not well-formed XML (control characters): keep the text only
        pre = ET.Element("pre")
        pre.text = re.sub(r"<[^>]+>", "", fragment)
        return pre


class _NoRawHtml(Extension):
    def __init__(self, sink: list[ET.Element]) -> None:
        super().__init__()
        self.sink = sink

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        # priority below 'unescape' (0) so backslash escapes are already resolved to characters
        md.treeprocessors.register(_Capture(md, self.sink), "casebridge_capture", -10)


_local = threading.local()


def parse(source: str) -> ET.Element:
    # building a Markdown instance costs more than converting a dossier: keep one per thread
    parser = getattr(_local, "parser", None)
    if parser is None:
        sink: list[ET.Element] = []
        parser = _local.parser = (markdown.Markdown(extensions=["tables", "fenced_code", _NoRawHtml(sink)]), sink)
    md, sink = parser
    sink.clear()
    md.reset().convert(source)
    return sink[0]


def render(source: str, fmt: TextFormat) -> str:
    """``source`` (Markdown) rendered for a Redmine whose text formatting is ``fmt``."""
    writer = _Textile() if fmt == "textile" else _Markdown()
    return writer.blocks(parse(source)).strip() + "\n"


class _Writer:
    """Common walk; subclasses give the syntax."""

    def blocks(self, parent: ET.Element, depth: int = 0) -> str:
        out: list[str] = []
        if parent.text and parent.text.strip():
            out.append(self.inline_text(parent.text))
        for child in parent:
            out.append(self.block(child, depth))
            if child.tail and child.tail.strip():
                out.append(self.inline_text(child.tail))
        return "\n\n".join(b for b in out if b)

    def inline_text(self, text: str) -> str:
        return inert(text.replace("\n", " "))

    def inline(self, el: ET.Element) -> str:
        parts = [self.inline_text(el.text or "")]
        for child in el:
            parts.append(self.span(child))
            parts.append(self.inline_text(child.tail or ""))
        return "".join(parts)

    def block(self, el: ET.Element, depth: int) -> str:
        tag = el.tag
        if tag == "p":
            return self.inline(el)
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            return self.heading(int(tag[1]), self.inline(el))
        if tag in ("ul", "ol"):
            return self.listing(el, depth)
        if tag == "pre":
            code = el.find("code")
            # the parser stores code already HTML-escaped; each writer escapes for its own syntax
            return self.code_block(html.unescape((code.text if code is not None else el.text) or ""))
        if tag == "blockquote":
            return self.quote(self.blocks(el, depth))
        if tag == "hr":
            return "---"
        if tag == "table":
            return self.table(el)
        return self.inline(el)

    def listing(self, el: ET.Element, depth: int) -> str:
        lines: list[str] = []
        for i, item in enumerate(el.findall("li"), start=1):
            lines.append(self.item(el.tag == "ol", depth, i, self.list_item_text(item)))
            lines += [self.listing(c, depth + 1) for c in item if c.tag in ("ul", "ol")]
        return "\n".join(lines)

    def list_item_text(self, item: ET.Element) -> str:
        """The item's own text on one line (loose lists wrap it in <p>; nested lists come after)."""
        parts = [self.inline_text(item.text or "")]
        for child in item:
            if child.tag in ("ul", "ol"):
                continue
            parts.append(self.inline(child) if child.tag == "p" else self.span(child))
            parts.append(self.inline_text(child.tail or ""))
        return " ".join(p.strip() for p in parts if p.strip())

    def table(self, el: ET.Element) -> str:
        rows = []
        for tr in el.iter("tr"):
            cells = [(c.tag == "th", self.inline(c).strip()) for c in tr]
            rows.append(self.row(cells))
        return "\n".join(rows)

    # syntax hooks
    def heading(self, level: int, text: str) -> str: ...
    def item(self, ordered: bool, depth: int, index: int, text: str) -> str: ...
    def code_block(self, code: str) -> str: ...
    def quote(self, text: str) -> str: ...
    def row(self, cells: list[tuple[bool, str]]) -> str: ...
    def span(self, el: ET.Element) -> str: ...


class _Textile(_Writer):
    def heading(self, level: int, text: str) -> str:
        return f"h{level}. {text}"

    def item(self, ordered: bool, depth: int, index: int, text: str) -> str:
        return ("#" if ordered else "*") * (depth + 1) + " " + text

    def code_block(self, code: str) -> str:
        # Redmine escapes HTML inside <pre> itself; only a closing </pre> would end the block early
        return "<pre>" + re.sub(r"(?i)</pre", "< /pre", code.rstrip("\n")) + "</pre>"

    def quote(self, text: str) -> str:
        return "\n".join("> " + line for line in text.splitlines())

    def row(self, cells: list[tuple[bool, str]]) -> str:
        return "|" + "|".join(("_. " if head else "") + text for head, text in cells) + "|"

    def span(self, el: ET.Element) -> str:
        inner = self.inline(el)
        if el.tag == "strong":
            return f"*{inner}*"
        if el.tag == "em":
            return f"_{inner}_"
        if el.tag == "code":
            code = html.unescape(el.text or "")
            # Redmine escapes HTML inside @...@ itself; an '@' would end the span: show such code as text
            return f"@{code}@" if "@" not in code else self.inline_text(code)
        if el.tag == "a":
            return f'"{inner}":{_safe_url(el.get("href", ""))}'
        if el.tag == "br":
            return "\n"
        return inner


class _Markdown(_Writer):
    def heading(self, level: int, text: str) -> str:
        return "#" * level + " " + text

    def item(self, ordered: bool, depth: int, index: int, text: str) -> str:
        return "   " * depth + (f"{index}." if ordered else "*") + " " + text

    def code_block(self, code: str) -> str:
        fence = "~~~~" if "```" in code else "```"
        return f"{fence}\n{code.rstrip(chr(10))}\n{fence}"

    def quote(self, text: str) -> str:
        return "\n".join("> " + line for line in text.splitlines())

    def row(self, cells: list[tuple[bool, str]]) -> str:
        line = "| " + " | ".join(text for _, text in cells) + " |"
        if all(head for head, _ in cells):
            line += "\n|" + "---|" * len(cells)
        return line

    def span(self, el: ET.Element) -> str:
        inner = self.inline(el)
        if el.tag == "strong":
            return f"**{inner}**"
        if el.tag == "em":
            return f"*{inner}*"
        if el.tag == "code":
            text = html.unescape(el.text or "")
            ticks = "``" if "`" in text else "`"
            return f"{ticks}{text}{ticks}"
        if el.tag == "a":
            return f"[{inner}]({_safe_url(el.get('href', ''))})"
        if el.tag == "br":
            return "  \n"
        return inner


def _safe_url(url: str) -> str:
    """Only http(s)/mailto links survive, with characters that end a link percent-encoded."""
    if not re.match(r"^(https?://|mailto:)", url):
        return "#"
    return "".join(ch if ch.isalnum() or ch in "-._~:/?&=%@+,;" else f"%{ord(ch):02X}" for ch in url)

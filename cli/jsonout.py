"""Indented JSON output, fast and streamed.

``json.dumps(value, indent=2, ensure_ascii=False)`` is exactly what the commands print, but with an
indent the standard library falls back to its pure-Python encoder: at 100,000 cases ``status --json``
spent half of its time there. ``dumps_indented`` gives the same text, byte for byte: a dict is written
item by item, its plain str/None/int/bool values with the library's own C string escaper and int repr;
a list with no nested container goes through the library's C encoder with the line break and indentation
as its item separator (JSON strings never hold a raw line break, so that is exact); a dict with a key
that is not a str is left to the library entirely. ``JsonArrayWriter`` prints a JSON array one chunk of items at a
time, so a list of 100,000 cases is never held as one string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring  # the C escaper when available; ensure_ascii=False's choice
from typing import Any

import click

__all__ = ["JsonArrayWriter", "dumps_indented", "encode_at"]

_SCALARS = frozenset({str, int, float, bool, type(None)})
_FLAT: dict[str, Callable[[Any], str]] = {}  # indentation -> C encoder whose item separator is "," + that indentation


def _flat(inner: str) -> Callable[[Any], str]:
    """A C-speed encoder for a container without nested containers, its items on lines at ``inner``."""
    encode = _FLAT.get(inner)
    if encode is None:
        encode = _FLAT[inner] = json.JSONEncoder(ensure_ascii=False, separators=("," + inner, ": ")).encode
    return encode


def _encode(value: Any, pad: str) -> str:
    """``value`` as indented JSON whose lines continue at indentation ``pad`` ("\n" + spaces)."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = pad + "  "
        # Item by item, the plain scalars written here (what the library writes for them: its own C
        # string escaper, int's repr); anything else (str or int subclasses, floats, containers) recurses.
        # At 100,000 cases this is about twice as fast as C-encoding runs of scalar items.
        parts: list[str] = []
        for key, item in value.items():
            if type(key) is not str:  # json's key conversions: leave them to it
                return _stdlib(value, pad)
            kind = type(item)
            if kind is str:
                text = encode_basestring(item)
            elif item is None:
                text = "null"
            elif kind is int:
                text = int.__repr__(item)
            elif kind is bool:
                text = "true" if item else "false"
            else:
                text = _encode(item, inner)
            parts.append(encode_basestring(key) + ": " + text)
        return "{" + inner + ("," + inner).join(parts) + pad + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = pad + "  "
        if _SCALARS.issuperset(map(type, value)):
            return "[" + inner + _flat(inner)(value)[1:-1] + pad + "]"
        return "[" + inner + ("," + inner).join([_encode(item, inner) for item in value]) + pad + "]"
    return _flat("\n")(value)  # a scalar (or a value json cannot hold: its TypeError)


def _stdlib(value: Any, pad: str) -> str:
    # JSON text never holds a raw newline inside a string, so re-indenting every line is exact
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", pad)


def encode_at(value: Any, pad: str) -> str:
    """``value`` as ``dumps_indented`` writes it where its lines continue at ``pad`` ("\\n" + spaces)."""
    return _encode(value, pad)


def dumps_indented(value: Any) -> str:
    """Exactly ``json.dumps(value, indent=2, ensure_ascii=False)``."""
    return _encode(value, "\n")


_PIECES = 256  # pieces joined per write (``write_flat``): about 50 KB of status rows
ITEM_SEP = ",\n  "  # between two items of a top-level array (``JsonArrayWriter.write_flat``)


class JsonArrayWriter:
    """Prints exactly what ``click.echo(json.dumps(items, indent=2, ensure_ascii=False))`` prints, a chunk
    of items at a time."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, items: Iterable[dict[str, Any]]) -> None:
        parts = []
        for item in items:
            parts.append(("[\n  " if self.count == 0 else ",\n  ") + _encode(item, "\n  "))
            self.count += 1
        if parts:
            click.echo("".join(parts), nl=False)

    def write_encoded(self, items: Iterable[str]) -> None:
        """As ``write``, for items already encoded at the array's item indentation (``encode_at(item,
        "\\n  ")``)."""
        parts = []
        for text in items:
            parts.append(("[\n  " if self.count == 0 else ",\n  ") + text)
            self.count += 1
        if parts:
            click.echo("".join(parts), nl=False)

    def write_flat(self, parts: list[str], items: int) -> None:
        """As ``write_encoded`` for ``items`` items given as the pieces of their text, each item's first
        piece the separator ``ITEM_SEP`` (joined once for the lot)."""
        if not items:
            return
        if self.count == 0:
            parts[0] = "[\n  "
        self.count += items
        # joined and printed _PIECES at a time: a text of a few dozen KB is allocated where the last one
        # was freed, where one of megabytes was mapped afresh (and its pages faulted in) on every call
        for at in range(0, len(parts), _PIECES):
            click.echo("".join(parts[at : at + _PIECES]), nl=False, color=True)  # JSON escapes ESC: no ANSI

    def close(self) -> None:
        click.echo("[]" if self.count == 0 else "\n]")

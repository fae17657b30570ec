"""Indented JSON output, fast and streamed.

``json.dumps(value, indent=2, ensure_ascii=False)`` is exactly what the commands print, but with an
indent the standard library falls back to its pure-Python encoder: at 100,000 cases ``status --json``
spent half of its time there. ``dumps_indented`` gives the same text, byte for byte: a container with no
nested container goes through the library's C encoder with the line break and indentation as its item
separator (JSON strings never hold a raw line break, so that is exact); a dict with a key that is not a
str is left to the library entirely. ``JsonArrayWriter`` prints a JSON array one chunk of items at a
time, so a list of 100,000 cases is never held as one string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring  # the C escaper when available; ensure_ascii=False's choice
from typing import Any

import click

__all__ = ["JsonArrayWriter", "dumps_indented"]

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
        if _SCALARS.issuperset(map(type, value.values())):
            # The standard library's own (C) encoder, with the line break and indentation as the item
            # separator: the same text as its indenting (pure-Python) encoder, many times faster.
            return "{" + inner + _flat(inner)(value)[1:-1] + pad + "}"
        # Runs of scalar items go through the C encoder together; nested containers recurse.
        parts: list[str] = []
        run: dict[Any, Any] = {}
        for key, item in value.items():
            if type(item) in _SCALARS:
                run[key] = item
                continue
            if type(key) is not str:  # json's key conversions: leave them to it
                return _stdlib(value, pad)
            if run:
                parts.append(_flat(inner)(run)[1:-1])
                run = {}
            parts.append(encode_basestring(key) + ": " + _encode(item, inner))
        if run:
            parts.append(_flat(inner)(run)[1:-1])
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


def dumps_indented(value: Any) -> str:
    """Exactly ``json.dumps(value, indent=2, ensure_ascii=False)``."""
    return _encode(value, "\n")


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

    def close(self) -> None:
        click.echo("[]" if self.count == 0 else "\n]")

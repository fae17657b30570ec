"""cli.jsonout prints exactly what json.dumps(indent=2, ensure_ascii=False) prints, faster."""

from __future__ import annotations

import enum
import json

import click
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from casebridge.cli.jsonout import JsonArrayWriter, dumps_indented

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # any code point: quotes, backslashes, control characters, non-ASCII, lone surrogates
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=25,
)


def stdlib(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@given(values)
def test_same_text_as_the_standard_library(value: object) -> None:
    assert dumps_indented(value) == stdlib(value)


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    ONE = 1


def test_values_it_does_not_know_go_to_the_standard_library() -> None:
    # subclasses, tuples, non-str keys (json writes them as strings): the same text as the stdlib
    value = {"a": [Colour.RED, Level.ONE, (1, "x")], "b": {1: True, None: 2.5, 3.0: []}, "c": {"d": ("\n",)}}
    assert dumps_indented(value) == stdlib(value)
    assert dumps_indented([]) == "[]" and dumps_indented({}) == "{}"
    # as a dict's own values (written item by item): the subclasses are json's to write, bool is not int
    value = {"e": Colour.RED, "i": Level.ONE, "t": True, "f": False, "n": None, "x": 1.0, "s": '\u2028"\x00'}
    assert dumps_indented({"k": value, "l": [value]}) == stdlib({"k": value, "l": [value]})


def test_an_unserialisable_value_still_fails() -> None:
    try:
        dumps_indented({"a": [object()]})
    except TypeError:
        return
    raise AssertionError("an object JSON cannot hold was printed")


@given(st.lists(st.dictionaries(st.text(max_size=4), scalars, max_size=3), max_size=5), st.integers(1, 3))
def test_array_writer_prints_the_whole_list_as_json_dumps_would(items: list, chunk: int) -> None:
    @click.command()
    def show() -> None:
        out = JsonArrayWriter()
        for start in range(0, len(items), chunk):
            out.write(items[start : start + chunk])
        out.write([])  # an empty chunk prints nothing
        out.close()

    result = CliRunner().invoke(show)
    assert result.exit_code == 0, result.output
    assert result.output == stdlib(items) + "\n"

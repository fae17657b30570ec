"""A JQL subset for the fake Jira: enough for what connectors send, strict about quoting.

Grammar (case-insensitive keywords)::

    query   := [or_expr] [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}]
    or_expr := and_expr {OR and_expr}
    and_expr:= not_expr {AND not_expr}
    not_expr:= NOT not_expr | "(" or_expr ")" | clause
    clause  := field op operand
    op      := = | != | ~ | !~ | > | >= | < | <= | IN | NOT IN | IS | IS NOT

Strings are "double" or 'single' quoted with backslash escapes, as in Jira. An unquoted value that is a
reserved word, or a stray quote or backslash, is a syntax error: Jira answers 400 and so do we.
Evaluation lives in the server state (it knows field types); this module only parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Jira refuses these unquoted (a subset of its reserved-word list that matters for injection tests).
RESERVED = frozenset(
    [
        "and",
        "or",
        "not",
        "in",
        "is",
        "empty",
        "null",
        "order",
        "by",
        "asc",
        "desc",
        "was",
        "changed",
        "after",
        "before",
        "during",
        "on",
        "from",
        "to",
        "select",
        "where",
        "update",
        "delete",
        "insert",
        "if",
        "else",
        "then",
        "while",
        "return",
        "true",
        "false",
    ]
)
OPERATORS = ("!=", ">=", "<=", "!~", "=", "~", ">", "<")
_WORD = re.compile(r"[A-Za-z0-9_.\-@/:+*]+")
_CF = re.compile(r"cf\[(\d+)\]", re.IGNORECASE)
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r", " ": " "}


class JqlError(ValueError):
    """The query could not be parsed; the message is what Jira would say."""


@dataclass(frozen=True)
class Token:
    kind: str  # "str" (quoted), "word", "op", "lp", "rp", "comma"
    text: str
    pos: int


@dataclass(frozen=True)
class Clause:
    field: str  # as written (name, id, or "cf[10001]" normalised to customfield_10001)
    op: str  # "=", "!=", "~", "!~", ">", ">=", "<", "<=", "in", "not in", "is", "is not"
    value: str | tuple[str, ...] | None  # None = EMPTY/NULL


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or" | "not"
    args: tuple[Node, ...]


Node = Clause | BoolOp


@dataclass(frozen=True)
class Query:
    where: Node | None
    order_by: tuple[tuple[str, bool], ...] = field(default=())  # (field, descending)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "\"'":
            value, i = _read_string(text, i)
            tokens.append(Token("str", value, i))
        elif ch == "(":
            tokens.append(Token("lp", ch, i))
            i += 1
        elif ch == ")":
            tokens.append(Token("rp", ch, i))
            i += 1
        elif ch == ",":
            tokens.append(Token("comma", ch, i))
            i += 1
        elif op := next((o for o in OPERATORS if text.startswith(o, i)), None):
            tokens.append(Token("op", op, i))
            i += len(op)
        elif m := _CF.match(text, i):
            tokens.append(Token("word", f"customfield_{m.group(1)}", i))
            i = m.end()
        elif m := _WORD.match(text, i):
            tokens.append(Token("word", m.group(0), i))
            i = m.end()
        else:
            raise JqlError(
                f"Error in the JQL Query: The character '{ch}' is a reserved JQL character. "
                "You must enclose it "
                f"in a string or use the escape '\\u{ord(ch):04x}' instead. (line 1, character {i + 1})"
            )
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6] or ""):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise JqlError(
                    f"Error in the JQL Query: '\\{nxt}' is an illegal JQL escape sequence. "
                    f"The valid escape sequences are \\', \\\", \\t, \\n, \\r, \\\\, '\\ ' and \\uXXXX. "
                    f"(line 1, character {i + 1})"
                )
            out.append(_ESCAPES[nxt])
            i += 2
        elif ch == quote:
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise JqlError(f"Error in the JQL Query: The quoted string has not been completed. (line 1, character {start + 1})")


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def is_word(self, word: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok.kind == "word" and tok.text.lower() == word

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise JqlError("Error in the JQL Query: Expecting more input at the end of the query.")
        self.i += 1
        return tok

    def parse(self) -> Query:
        where = None
        if self.peek() is not None and not self.is_word("order"):
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.is_word("order"):
            self.take()
            if not self.is_word("by"):
                raise JqlError("Error in the JQL Query: Expecting 'by' after 'order'.")
            self.take()
            while True:
                name = self.field_name()
                desc = False
                if self.is_word("asc") or self.is_word("desc"):
                    desc = self.take().text.lower() == "desc"
                order.append((name, desc))
                tok = self.peek()
                if tok is None or tok.kind != "comma":
                    break
                self.take()
        tok = self.peek()
        if tok is not None:
            raise JqlError(f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got '{tok.text}'.")
        return Query(where, tuple(order))

    def or_expr(self) -> Node:
        args = [self.and_expr()]
        while self.is_word("or"):
            self.take()
            args.append(self.and_expr())
        return args[0] if len(args) == 1 else BoolOp("or", tuple(args))

    def and_expr(self) -> Node:
        args = [self.not_expr()]
        while self.is_word("and"):
            self.take()
            args.append(self.not_expr())
        return args[0] if len(args) == 1 else BoolOp("and", tuple(args))

    def not_expr(self) -> Node:
        if self.is_word("not"):
            self.take()
            return BoolOp("not", (self.not_expr(),))
        tok = self.peek()
        if tok is not None and tok.kind == "lp":
            self.take()
            inner = self.or_expr()
            if self.take().kind != "rp":
                raise JqlError("Error in the JQL Query: Expecting ')'.")
            return inner
        return self.clause()

    def field_name(self) -> str:
        tok = self.take()
        if tok.kind == "str":
            return tok.text
        if tok.kind == "word" and tok.text.lower() not in RESERVED:
            return tok.text
        raise JqlError(f"Error in the JQL Query: Expecting a field name but got '{tok.text}'.")

    def clause(self) -> Clause:
        name = self.field_name()
        tok = self.take()
        if tok.kind == "op":
            op = tok.text
        elif tok.kind == "word" and tok.text.lower() in ("in", "is"):
            op = tok.text.lower()
            if op == "is" and self.is_word("not"):
                self.take()
                op = "is not"
        elif tok.kind == "word" and tok.text.lower() == "not" and self.is_word("in"):
            self.take()
            op = "not in"
        else:
            raise JqlError(f"Error in the JQL Query: Expecting operator but got '{tok.text}'.")
        if op in ("is", "is not"):
            word = self.take()
            if word.kind != "word" or word.text.lower() not in ("empty", "null"):
                raise JqlError("Error in the JQL Query: Expecting EMPTY or NULL after IS.")
            return Clause(name, op, None)
        if op in ("in", "not in"):
            return Clause(name, op, self.value_list())
        return Clause(name, op, self.value())

    def value(self) -> str | None:
        tok = self.take()
        if tok.kind == "str":
            return tok.text
        if tok.kind == "word":
            if tok.text.lower() in ("empty", "null"):
                return None
            if tok.text.lower() in RESERVED:
                raise JqlError(
                    f"Error in the JQL Query: '{tok.text}' is a reserved JQL word. You must surround it in "
                    "quotation marks to use it in a query."
                )
            return tok.text
        raise JqlError(f"Error in the JQL Query: Expecting a value but got '{tok.text}'.")

    def value_list(self) -> tuple[str, ...]:
        if self.take().kind != "lp":
            raise JqlError("Error in the JQL Query: Expecting '(' after IN.")
        values: list[str] = []
        while True:
            value = self.value()
            if value is not None:
                values.append(value)
            tok = self.take()
            if tok.kind == "rp":
                return tuple(values)
            if tok.kind != "comma":
                raise JqlError("Error in the JQL Query: Expecting ',' or ')'.")


def parse(text: str) -> Query:
    """Parse ``text``; raises JqlError with Jira's wording for what it cannot parse."""
    return _Parser(tokenize(text)).parse()


def text_tokens(text: str) -> list[str]:
    """How the fake indexes text for ``~``: lower-cased runs of letters and digits (Jira's analyser
    likewise splits on punctuation and ignores case)."""
    return re.findall(r"[0-9a-z]+", text.casefold())


def text_matches(haystack: str, needle: str) -> bool:
    """``field ~ needle``: a quoted phrase must appear as consecutive tokens; otherwise every token."""
    words = text_tokens(haystack)
    stripped = needle.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        phrase = text_tokens(stripped[1:-1])
        if not phrase:
            return False
        n = len(phrase)
        return any(words[i : i + n] == phrase for i in range(len(words) - n + 1))
    wanted = text_tokens(stripped)
    return bool(wanted) and all(w in words for w in wanted)

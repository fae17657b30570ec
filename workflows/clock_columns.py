"""Stored rows as columns, for the batch clock path (``workflows.clock_batch``).

The state store keeps a case's status history as ``json.dumps([[iso(at), state], ...])`` and its SLA
fields as ``json.dumps(sla_to_json(...), sort_keys=True)``. Read one datetime at a time, 100,000 cases
cost more than evaluating their clocks; here every row of a pass is read at once with numpy into epoch
microseconds and state codes. Only that exact layout is read this way: a row that differs in any way
(not ASCII, an escaped character, a timestamp not written by ``iso``, unsorted changes) is flagged
``readable=False`` and left to the scalar path, which reads anything ``json`` reads.

numpy is imported by this module only: import it lazily (never from a command's start-up path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.cases import StatusChange

__all__ = ["HeldColumns", "HistoryColumns", "iso_micros"]

ISO_WIDTH = 27  # 2026-01-31T23:59:59.000000Z
_SEPARATORS = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":", 19: b".", 26: b"Z"}
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
G = TypeVar("G", bound=np.generic)
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]


def _window(blob: NDArray[np.uint8], at: Ints, width: int) -> tuple[NDArray[np.uint8], Bools]:
    """The ``width`` bytes at each offset, one row each (a single gather), and whether they exist."""
    ok = (at >= 0) & (at + width <= len(blob))
    if len(blob) < width:
        return np.zeros((len(at), width), np.uint8), ok & False
    rows = np.lib.stride_tricks.sliding_window_view(blob, width)
    return rows[np.where(ok, at, 0)], ok


def iso_micros(blob: NDArray[np.uint8], at: Ints) -> tuple[Ints, Bools]:
    """Epoch microseconds of the ``iso`` timestamps starting at byte offsets ``at`` of ``blob``, and
    whether each one is well formed (digits and separators in place, a real date and time)."""
    m, ok = _window(blob, at, ISO_WIDTH)
    by_byte = np.ascontiguousarray(m.T)  # one contiguous row per byte position: fast column arithmetic
    for i, sep in _SEPARATORS.items():
        ok &= by_byte[i] == sep[0]
    d = by_byte - np.uint8(48)  # wraps below "0": one unsigned test

    def number(first: int, width: int) -> Ints:
        nonlocal ok
        out = np.zeros(len(at), np.int64)
        for i in range(first, first + width):
            ok &= d[i] <= 9
            out = out * 10 + d[i]
        return out

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second, micro = number(11, 2), number(14, 2), number(17, 2), number(20, 6)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    last = _MONTH_DAYS[np.where(month_ok, month, 1)] + (leap & (month == 2))
    ok &= (year >= 1) & month_ok & (day >= 1) & (day <= last) & (hour < 24) & (minute < 60) & (second < 60)
    # days from civil (H. Hinnant's algorithm), year >= 1
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return (days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000 + micro, ok


def seconds_of(micros: Ints) -> NDArray[np.float64]:
    """Epoch seconds exactly as ``datetime.timestamp()`` gives them (integer microseconds / 10**6,
    correctly rounded)."""
    return micros / 1e6


def _blob(texts: Sequence[str | None]) -> tuple[NDArray[np.uint8], Ints, Ints, Bools]:
    """All texts in one ASCII byte array: (bytes, start of each text, end of each text, readable)."""
    n = len(texts)
    try:
        joined = "\n".join(texts)  # type: ignore[arg-type]  # a None is caught below
        fine = joined.isascii()
    except TypeError:  # a row without text
        fine = False
    if fine:
        readable = np.ones(n, np.bool_)
        parts: Sequence[str] = texts  # type: ignore[assignment]  # the join above proved no None
    else:
        readable = np.fromiter((t is not None and t.isascii() for t in texts), np.bool_, n)
        parts = [t if t is not None and ok else "" for t, ok in zip(texts, readable.tolist(), strict=True)]
        joined = "\n".join(parts)
    lens = np.fromiter(map(len, parts), np.int64, n)
    ends = np.cumsum(lens + 1) - 1
    blob = np.frombuffer((joined + "\n").encode("ascii"), np.uint8)
    return blob, ends - lens, ends, readable


def _strings(blob: NDArray[np.uint8], s: Ints, names: Sequence[str], closing: bytes) -> tuple[Ints, Ints]:
    """Which of ``names`` each JSON string starting at ``s`` is, read as the name followed by ``closing``
    (which starts with the closing quote): (index in names, or len(names) for anything else; offset of
    the closing quote). A name that JSON would escape never matches: such a row goes the scalar way."""
    code = np.full(len(s), len(names), np.int64)
    end = s.copy()
    first = blob[np.clip(s, 0, len(blob) - 1)]
    for i, name in enumerate(names):
        if not name or not name.isascii() or not name.isprintable() or '"' in name or "\\" in name:
            continue
        raw = name.encode()
        sel = np.flatnonzero((first == raw[0]) & (code == len(names)))
        sel = sel[_matches(blob, s[sel], raw + closing)]
        code[sel], end[sel] = i, s[sel] + len(raw)
    return code, end


@dataclass
class HistoryColumns:
    """Every row's status history: row i's changes are ``times[starts[i]:starts[i + 1]]`` (epoch seconds)
    and ``codes[...]`` (index in ``states``; len(states) for a state the workflow does not name)."""

    times: NDArray[np.float64]
    micros: Ints
    codes: Ints
    starts: Ints
    readable: Bools
    states: tuple[str, ...]

    @classmethod
    def from_texts(cls, texts: Sequence[str | None], states: Sequence[str]) -> HistoryColumns:
        blob, row_start, row_end, readable = _blob(texts)
        p = _entries(blob)
        micros, ok = iso_micros(blob, p + 2)
        ok &= _matches(blob, p + 29, b'", "')
        p, micros = p[ok], micros[ok]
        codes, e = _strings(blob, p + 33, states, b'"]')
        clean = codes < len(states)  # a state the workflow does not name: the row goes the scalar way
        row = np.searchsorted(row_start, p, "right") - 1
        size = e + 2 - p  # ["<iso>", "<state>"]
        n = np.bincount(row, minlength=len(texts))
        starts = np.concatenate(([0], np.cumsum(n)))
        # exactly casebridge's layout: "[" entries joined by ", " "]", each entry "]"-closed, in order
        first = np.zeros(len(p), np.bool_)
        first[starts[:-1][n > 0]] = True
        prev_end = np.concatenate(([0], p[:-1] + size[:-1]))
        ok = clean.copy()
        ok &= np.where(first, p == row_start[row] + 1, p == prev_end + 2)
        ok &= np.concatenate(([True], (micros[1:] >= micros[:-1]) | first[1:]))  # sorted within the row
        bad_rows = np.bincount(row[~ok], minlength=len(texts)) > 0
        ends = p + size if len(p) else np.zeros(1, np.int64)
        last_end = np.where(n > 0, ends[np.clip(starts[1:] - 1, 0, len(ends) - 1)], row_start + 1)
        shape = np.where(n > 0, last_end + 1 == row_end, row_end - row_start == 2)
        readable &= ~bad_rows & shape & (blob[row_start] == ord("["))
        return cls(seconds_of(micros), micros, codes, starts, readable, tuple(states))

    @classmethod
    def from_changes(cls, histories: Sequence[Sequence[StatusChange]], states: Sequence[str]) -> HistoryColumns:
        """The same columns from histories already read (``StatusChange`` lists)."""
        code = {name: i for i, name in enumerate(states)}
        flat = [change for history in histories for change in history]
        micros = np.fromiter(((c.at - _EPOCH) // _US for c in flat), np.int64, len(flat))
        codes = np.fromiter((code.get(c.state, len(states)) for c in flat), np.int64, len(flat))
        n = np.fromiter(map(len, histories), np.int64, len(histories))
        starts = np.concatenate(([0], np.cumsum(n)))
        first = np.zeros(len(flat), np.bool_)
        first[starts[:-1][n > 0]] = True
        unsorted = ~np.concatenate(([True], (micros[1:] >= micros[:-1]) | first[1:])) if len(flat) else first
        row = np.repeat(np.arange(len(histories)), n)
        readable = ~(np.bincount(row[unsorted], minlength=len(histories)) > 0)
        return cls(seconds_of(micros), micros, codes, starts, readable, tuple(states))


@dataclass
class HeldColumns:
    """The SLA fields each row holds, per clock: present, due/warn (epoch microseconds; ``-1`` for null
    with ``due_null``/``warn_null``), state code (index in ``states``); and the escalation level."""

    present: dict[str, Bools]
    due: dict[str, Ints]
    due_null: dict[str, Bools]
    warn: dict[str, Ints]
    warn_null: dict[str, Bools]
    state: dict[str, Ints]
    level: Ints
    readable: Bools

    @classmethod
    def from_texts(cls, texts: Sequence[str], clocks: Sequence[str], states: Sequence[str]) -> HeldColumns:
        blob, row_start, row_end, readable = _blob(texts)
        level, ok = _level(blob, row_end)
        readable &= ok & (blob[row_start] == ord("{"))
        out = cls({}, {}, {}, {}, {}, {}, level, readable)
        due_keys = _find(blob, b'"due_at": ')  # each clock's fields start with its due_at
        for name in clocks:
            prefix = f'"{name}": {{'.encode()
            at = due_keys[_matches(blob, due_keys - len(prefix), prefix)] + 10
            row = np.searchsorted(row_start, at, "right") - 1
            due, due_null, after_due, ok1 = _value(blob, at)
            ok1 &= _matches(blob, after_due, b', "state": "')
            state, e = _strings(blob, after_due + 12, states, b'", "warn_at": ')
            ok1 &= state < len(states)
            warn_at = e + 14
            warn, warn_null, after_warn, ok2 = _value(blob, warn_at)
            ok1 &= ok2 & (blob[np.minimum(after_warn, len(blob) - 1)] == ord("}"))
            counts = np.bincount(row, minlength=len(texts))
            readable &= (counts <= 1) & ~(np.bincount(row[~ok1], minlength=len(texts)) > 0)
            n = len(texts)
            out.present[name] = counts == 1
            out.due[name], out.due_null[name] = _scatter(n, row, due, -1), _scatter(n, row, due_null, True)
            out.warn[name], out.warn_null[name] = _scatter(n, row, warn, -1), _scatter(n, row, warn_null, True)
            out.state[name] = _scatter(n, row, state, len(states))
        return out


def _matches(blob: NDArray[np.uint8], at: Ints, literal: bytes) -> Bools:
    """Whether ``literal`` is at each offset of ``at`` (compared as one fixed-width string per row)."""
    m, ok = _window(blob, at, len(literal))
    hit: Bools = ok & (np.ascontiguousarray(m).view(f"S{len(literal)}").ravel() == literal)
    return hit


def _raw(blob: NDArray[np.uint8]) -> bytes:
    """The bytes behind a blob of ``_blob`` (no copy), else a copy."""
    return blob.base if isinstance(blob.base, bytes) else blob.tobytes()


def _find(blob: NDArray[np.uint8], pattern: bytes) -> Ints:
    """Offsets of ``pattern`` (4 bytes or more) in blob, in order: its first four bytes are searched as
    one 32-bit word at each of the four alignments, the rest checked at the candidates."""
    head = int(np.frombuffer(pattern[:4], np.uint32)[0])
    found = []
    raw = _raw(blob)
    for o in range(4):
        words = np.frombuffer(raw, np.uint32, (len(raw) - o) // 4, o)
        found.append(np.flatnonzero(words == head) * 4 + o)
    at = np.sort(np.concatenate(found))
    return at[_matches(blob, at, pattern)]


def _entries(blob: NDArray[np.uint8]) -> Ints:
    """Offsets of '["' (an entry of a history list, or not: checked by the caller)."""
    raw = _raw(blob)
    head = int(np.frombuffer(b'["', np.uint16)[0])
    found = [np.flatnonzero(np.frombuffer(raw, np.uint16, (len(raw) - o) // 2, o) == head) * 2 + o for o in (0, 1)]
    return np.sort(np.concatenate(found))


def _value(blob: NDArray[np.uint8], at: Ints) -> tuple[Ints, Bools, Ints, Bools]:
    """An ``iso`` string or null at ``at``: (micros, is null, offset after it, well formed)."""
    null = _matches(blob, at, b"null")
    micros, ok = iso_micros(blob, at + 1)
    quoted = (blob[np.minimum(at, len(blob) - 1)] == ord('"')) & (blob[np.minimum(at + 28, len(blob) - 1)] == ord('"'))
    return micros, null, np.where(null, at + 4, at + 29), null | (ok & quoted)


def _level(blob: NDArray[np.uint8], row_end: Ints) -> tuple[Ints, Bools]:
    """The escalation level closing each row (``"escalation_level": N}``, N of one or two digits)."""
    key = b'"escalation_level": '
    closed = blob[np.maximum(row_end - 1, 0)] == ord("}")
    last = blob[np.maximum(row_end - 2, 0)] - np.uint8(48)  # wraps below "0"
    tens = blob[np.maximum(row_end - 3, 0)] - np.uint8(48)
    one = closed & (last <= 9) & _matches(blob, row_end - 2 - len(key), key)
    two = closed & (last <= 9) & (tens <= 9) & _matches(blob, row_end - 3 - len(key), key)
    value = np.where(two, tens.astype(np.int64) * 10 + last, np.where(one, last.astype(np.int64), 0))
    return value, one | two


def _scatter(n: int, row: Ints, values: NDArray[G], fill: object) -> NDArray[G]:
    out = np.full(n, fill, dtype=values.dtype)
    out[row] = values
    return out

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

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["HeldColumns", "HistoryColumns", "iso_micros"]

ISO_WIDTH = 27  # 2026-01-31T23:59:59.000000Z
_SEPARATORS = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":", 19: b".", 26: b"Z"}
_DIGITS = [i for i in range(ISO_WIDTH) if i not in _SEPARATORS]
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)

Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]


def _number(d: Ints, first: int, width: int) -> Ints:
    out = d[:, first]
    for i in range(first + 1, first + width):
        out = out * 10 + d[:, i]
    return out


def iso_micros(blob: NDArray[np.uint8], at: Ints) -> tuple[Ints, Bools]:
    """Epoch microseconds of the ``iso`` timestamps starting at byte offsets ``at`` of ``blob``, and
    whether each one is well formed (digits and separators in place, a real date and time)."""
    if len(at) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.bool_)
    m = blob[np.minimum(at, len(blob) - ISO_WIDTH)[:, None] + np.arange(ISO_WIDTH)]
    ok = at + ISO_WIDTH <= len(blob)
    for i, sep in _SEPARATORS.items():
        ok &= m[:, i] == sep[0]
    d = m.astype(np.int64) - 48
    ok &= ((d[:, _DIGITS] >= 0) & (d[:, _DIGITS] <= 9)).all(axis=1)
    year, month, day = _number(d, 0, 4), _number(d, 5, 2), _number(d, 8, 2)
    hour, minute, second, micro = _number(d, 11, 2), _number(d, 14, 2), _number(d, 17, 2), _number(d, 20, 6)
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
    ascii_ok = np.fromiter((t is not None and t.isascii() for t in texts), np.bool_, len(texts))
    parts = [t if ok else "" for t, ok in zip(texts, ascii_ok.tolist(), strict=True)]  # type: ignore[misc]
    lens = np.fromiter(map(len, parts), np.int64, len(parts))
    ends = np.cumsum(lens + 1) - 1
    blob = np.frombuffer(("\n".join(parts) + "\n").encode("ascii"), np.uint8)
    return blob, ends - lens, ends, ascii_ok


def _codes(blob: NDArray[np.uint8], s: Ints, e: Ints, names: Sequence[str]) -> Ints:
    """Index in ``names`` of each string blob[s:e] (no escapes); len(names) for any other string."""
    known = sorted((n.encode(), i) for i, n in enumerate(names) if n.isascii() and n)
    other = np.full(len(s), len(names), np.int64)
    if not known or len(s) == 0:
        return other
    width = max(len(k) for k, _i in known)
    fits = (e - s) <= width
    cols = np.arange(width)
    m = blob[np.minimum(s[:, None] + cols, len(blob) - 1)]
    m = np.where(cols < (e - s)[:, None], m, 0).astype(np.uint8)
    words = np.ascontiguousarray(m).view(f"S{width}").ravel()
    table = np.array([k for k, _i in known], dtype=f"S{width}")
    at = np.minimum(np.searchsorted(table, words), len(table) - 1)
    hit = fits & (table[at] == words)
    return np.where(hit, np.array([i for _k, i in known], np.int64)[at], other)


def _string_ends(blob: NDArray[np.uint8], s: Ints) -> tuple[Ints, Bools]:
    """End (the closing quote) of the JSON strings starting at ``s``, and whether none has an escape."""
    quotes = np.flatnonzero(blob == ord('"'))
    k = np.searchsorted(quotes, s)
    found = k < len(quotes)
    e = np.where(found, quotes[np.minimum(k, len(quotes) - 1)], s)
    slashes = np.concatenate(([0], np.cumsum(blob == ord("\\"))))
    return e, found & (slashes[e] == slashes[s])


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
        p = np.flatnonzero((blob[:-1] == ord("[")) & (blob[1:] == ord('"')))
        micros, ok = iso_micros(blob, p + 2)
        tail = np.minimum(p + 29, len(blob) - 4)[:, None] + np.arange(4)
        ok &= (blob[tail] == np.frombuffer(b'", "', np.uint8)).all(axis=1)
        p, micros = p[ok], micros[ok]
        e, clean = _string_ends(blob, p + 33)
        row = np.searchsorted(row_start, p, "right") - 1
        size = e + 2 - p  # ["<iso>", "<state>"]
        n = np.bincount(row, minlength=len(texts))
        starts = np.concatenate(([0], np.cumsum(n)))
        # exactly casebridge's layout: "[" entries joined by ", " "]", each entry "]"-closed, in order
        first = np.zeros(len(p), np.bool_)
        first[starts[:-1][n > 0]] = True
        prev_end = np.concatenate(([0], p[:-1] + size[:-1]))
        ok = clean & (blob[np.minimum(e + 1, len(blob) - 1)] == ord("]"))
        ok &= np.where(first, p == row_start[row] + 1, p == prev_end + 2)
        ok &= np.concatenate(([True], (micros[1:] >= micros[:-1]) | first[1:]))  # sorted within the row
        bad_rows = np.bincount(row[~ok], minlength=len(texts)) > 0
        ends = p + size if len(p) else np.zeros(1, np.int64)
        last_end = np.where(n > 0, ends[np.clip(starts[1:] - 1, 0, len(ends) - 1)], row_start + 1)
        shape = np.where(n > 0, last_end + 1 == row_end, row_end - row_start == 2)
        readable &= ~bad_rows & shape & (blob[row_start] == ord("["))
        codes = _codes(blob, p + 33, e, states)
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
        joined = blob.tobytes()
        level, ok = _level(blob, row_end)
        readable &= ok & (blob[row_start] == ord("{"))
        out = cls({}, {}, {}, {}, {}, {}, level, readable)
        for name in clocks:
            key = re.escape(f'"{name}": {{"due_at": '.encode())
            at = np.fromiter((m.end() for m in re.finditer(key, joined)), np.int64)
            row = np.searchsorted(row_start, at, "right") - 1
            due, due_null, after_due, ok1 = _value(blob, at)
            ok1 &= (blob[np.minimum(after_due[:, None] + np.arange(12), len(blob) - 1)] == _STATE_KEY).all(axis=1)
            e, clean = _string_ends(blob, after_due + 12)
            warn_at = e + 14
            ok1 &= clean & (blob[np.minimum(e[:, None] + np.arange(14), len(blob) - 1)] == _WARN_KEY).all(axis=1)
            warn, warn_null, after_warn, ok2 = _value(blob, warn_at)
            ok1 &= ok2 & (blob[np.minimum(after_warn, len(blob) - 1)] == ord("}"))
            counts = np.bincount(row, minlength=len(texts))
            readable &= (counts <= 1) & ~(np.bincount(row[~ok1], minlength=len(texts)) > 0)
            n = len(texts)
            out.present[name] = counts == 1
            out.due[name], out.due_null[name] = _scatter(n, row, due, -1), _scatter(n, row, due_null, True)
            out.warn[name], out.warn_null[name] = _scatter(n, row, warn, -1), _scatter(n, row, warn_null, True)
            out.state[name] = _scatter(n, row, _codes(blob, after_due + 12, e, states), len(states))
        return out


_STATE_KEY = np.frombuffer(b', "state": "', np.uint8)
_WARN_KEY = np.frombuffer(b'", "warn_at": ', np.uint8)
_NULL = np.frombuffer(b"null", np.uint8)


def _value(blob: NDArray[np.uint8], at: Ints) -> tuple[Ints, Bools, Ints, Bools]:
    """An ``iso`` string or null at ``at``: (micros, is null, offset after it, well formed)."""
    null = (blob[np.minimum(at[:, None] + np.arange(4), len(blob) - 1)] == _NULL).all(axis=1)
    micros, ok = iso_micros(blob, at + 1)
    quoted = (blob[np.minimum(at, len(blob) - 1)] == ord('"')) & (
        blob[np.minimum(at + 28, len(blob) - 1)] == ord('"')
    )
    return micros, null, np.where(null, at + 4, at + 29), null | (ok & quoted)


def _level(blob: NDArray[np.uint8], row_end: Ints) -> tuple[Ints, Bools]:
    """The escalation level closing each row (``"escalation_level": N}``, N of one or two digits)."""
    key = np.frombuffer(b'"escalation_level": ', np.uint8)
    out = np.zeros(len(row_end), np.int64)
    ok = np.zeros(len(row_end), np.bool_)
    for width in (1, 2):
        start = row_end - 1 - width
        d = blob[np.maximum(start[:, None] + np.arange(width), 0)].astype(np.int64) - 48
        digits = ((d >= 0) & (d <= 9)).all(axis=1) & (blob[row_end - 1] == ord("}"))
        before = blob[np.maximum(start[:, None] - len(key) + np.arange(len(key)), 0)]
        here = digits & (before == key).all(axis=1) & (start - len(key) >= 0)
        value = d[:, 0] if width == 1 else d[:, 0] * 10 + d[:, 1]
        out, ok = np.where(here, value, out), ok | here
    return out, ok


def _scatter(n: int, row: Ints, values: NDArray[np.generic], fill: object) -> NDArray[np.generic]:
    out = np.full(n, fill, dtype=values.dtype)
    out[row] = values
    return out

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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.cases import StatusChange
from casebridge.workflows.clock_text import Blob, _word, find, iso_micros, matches, which

__all__ = ["HeldColumns", "HistoryColumns", "iso_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
G = TypeVar("G", bound=np.generic)
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]


def seconds_of(micros: Ints) -> NDArray[np.float64]:
    """Epoch seconds exactly as ``datetime.timestamp()`` gives them (integer microseconds / 10**6,
    correctly rounded)."""
    return micros / 1e6


def _strings(blob: Blob, s: Ints, names: Sequence[str], closing: bytes) -> tuple[Ints, Ints]:
    """Which of ``names`` each JSON string starting at ``s`` is, read as the name followed by ``closing``
    (which starts with the closing quote): (index in names, or len(names) for anything else; offset of
    the closing quote). A name that JSON would escape never matches: such a row goes the scalar way."""
    usable = [i for i, name in enumerate(names) if name and name.isascii() and name.isprintable()
              and '"' not in name and "\\" not in name]  # fmt: skip
    found = which(blob, s, [names[i].encode() + closing for i in usable])
    code = np.where(found >= 0, np.array([*usable, len(names)], np.int64)[found], len(names))
    sizes = np.array([*(len(names[i]) for i in usable), 0], np.int64)
    end = s + sizes[found]
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
    derived: dict[bytes, Ints] = field(default_factory=dict, repr=False, compare=False)  # per state set: counts

    def running_count(self, states: Bools) -> Ints:
        """How many changes before each position are to a state in ``states`` (a mask over the codes):
        ``count[j] - count[i]`` is how many of changes i..j-1 are; kept for clocks with the same mask."""
        key = states.tobytes()
        if key not in self.derived:
            self.derived[key] = (
                np.concatenate(([0], np.cumsum(states[self.codes]))) if len(self.codes) else np.zeros(1, np.int64)
            )
        return self.derived[key]

    @classmethod
    def from_texts(cls, texts: Sequence[str | None], states: Sequence[str]) -> HistoryColumns:
        blob = Blob.of(texts)
        row_start, row_end, readable = blob.start, blob.end, blob.readable
        p = find(blob, b'["')
        micros, ok = iso_micros(blob, p + 2, b'", "')  # ["<iso>", "<state>"]
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
        ok &= np.where(first, p == row_start[row] + 1, (p == prev_end + 2) & matches(blob, p - 2, b", "))
        ok &= np.concatenate(([True], (micros[1:] >= micros[:-1]) | first[1:]))  # sorted within the row
        bad_rows = np.bincount(row[~ok], minlength=len(texts)) > 0
        ends = p + size if len(p) else np.zeros(1, np.int64)
        last_end = np.where(n > 0, ends[np.clip(starts[1:] - 1, 0, len(ends) - 1)], row_start + 1)
        shape = np.where(n > 0, last_end + 1 == row_end, row_end - row_start == 2) & (
            blob.byte(row_end - 1) == ord("]")
        )
        readable &= ~bad_rows & shape & (blob.byte(row_start) == ord("["))
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
        blob, n = Blob.of(texts), len(texts)
        level, ok = _level(blob)
        readable = blob.readable & ok & (blob.byte(blob.start) == ord("{"))
        out = cls({}, {}, {}, {}, {}, {}, level, readable)
        at = find(blob, b'"due_at": ')  # each clock's fields start with its due_at: all read at once
        row = np.searchsorted(blob.start, at, "right") - 1
        due, due_null, after_due, ok = _value(blob, at + 10, b", ")
        ok &= matches(blob, after_due, b'"state": "')
        state, e = _strings(blob, after_due + 10, states, b'", "warn_at": ')
        ok &= state < len(states)
        warn, warn_null, _after, ok_warn = _value(blob, e + 14, b"}")
        ok &= ok_warn
        tail = blob.word(at - 8)  # the last 8 bytes of the clock's key before it: '"name": {'
        for name in clocks:
            prefix = f'"{name}": {{'.encode()
            if len(prefix) >= 8:
                mine = np.flatnonzero(tail == _word(prefix[-8:]))
                mine = mine[matches(blob, at[mine] - len(prefix), prefix[:-8])]
            else:
                mine = np.flatnonzero(matches(blob, at - len(prefix), prefix))
            r = row[mine]
            counts = np.bincount(r, minlength=n)
            readable &= (counts <= 1) & ~(np.bincount(r[~ok[mine]], minlength=n) > 0)
            out.present[name] = counts == 1
            out.due[name], out.due_null[name] = _scatter(n, r, due[mine], -1), _scatter(n, r, due_null[mine], True)
            out.warn[name] = _scatter(n, r, warn[mine], -1)
            out.warn_null[name] = _scatter(n, r, warn_null[mine], True)
            out.state[name] = _scatter(n, r, state[mine], len(states))
        return out


def _value(blob: Blob, at: Ints, after: bytes) -> tuple[Ints, Bools, Ints, Bools]:
    """An ``iso`` string or null at ``at``, followed by ``after``: (micros, is null, offset after the
    value and ``after``, well formed)."""
    micros, ok = iso_micros(blob, at + 1, b'"' + after)
    ok &= blob.byte(at) == ord('"')
    null = np.zeros(len(at), np.bool_)
    maybe = np.flatnonzero(~ok)
    null[maybe] = matches(blob, at[maybe], b"null" + after)
    return micros, null, np.where(null, at + 4, at + 29) + len(after), null | ok


def _level(blob: Blob) -> tuple[Ints, Bools]:
    """The escalation level closing each row (``"escalation_level": N}``, N of one or two digits): the
    row's last 24 bytes as three words."""
    at = blob.end - 24
    inside = at >= blob.start
    w0, w1, w2 = blob.word(at), blob.word(at + 8), blob.word(at + 16)
    tens, last = (w2 >> np.uint64(40)) & np.uint64(0xFF), (w2 >> np.uint64(48)) & np.uint64(0xFF)
    digit = last - np.uint64(48) <= np.uint64(9)
    one = inside & digit & (w0 == _word(b', "escal')) & (w1 == _word(b"ation_le"))
    one &= (w2 & ~np.uint64(0xFF << 48)) == _word(b'vel": \0}')
    two = inside & digit & (tens - np.uint64(48) <= np.uint64(9))
    two &= (w0 == _word(b' "escala')) & (w1 == _word(b"tion_lev"))
    two &= (w2 & ~np.uint64(0xFFFF << 40)) == _word(b'el": \0\0}')
    units = last.astype(np.int64) - 48
    value = np.where(two, (tens.astype(np.int64) - 48) * 10 + units, np.where(one, units, 0))
    return value, one | two


def _scatter(n: int, row: Ints, values: NDArray[G], fill: object) -> NDArray[G]:
    out = np.full(n, fill, dtype=values.dtype)
    out[row] = values
    return out

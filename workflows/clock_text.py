"""Byte-level reading of many stored JSON texts at once, for ``workflows.clock_columns``.

Every row of a pass is joined into one ASCII buffer (``Blob``); a field is then read at a byte offset
per row by gathering the 8 bytes at that offset as one little-endian 64-bit word (an unaligned view of
the buffer: one gather per 8 bytes instead of one per byte) and testing or decoding the words with
word-wide arithmetic. Only exact layouts are read; whatever does not match is reported as not read, and
the caller leaves that row to the scalar path. numpy: import this module lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["ISO_WIDTH", "Blob", "find", "iso_micros", "matches", "which"]

Ints = NDArray[np.int64]
Words = NDArray[np.uint64]
Bools = NDArray[np.bool_]

ISO_WIDTH = 27  # 2026-01-31T23:59:59.000000Z
_PAD = 32  # zero bytes after the texts: every word gathered at an offset inside the texts exists
_DAYS_BEFORE = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], np.int64)  # non-leap
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
_HIGH = np.uint64(0x8080808080808080)
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)


def _word(text: bytes) -> np.uint64:
    return np.uint64(int.from_bytes(text.ljust(8, b"\0"), "little"))


_ISO_TEXT = b"0000-00-00T00:00:00.000000Z"
_ISO_WORDS: dict[bytes, tuple[Words, Words, Words]] = {}


def _words32(text: bytes) -> Words:
    out: Words = np.frombuffer(text.ljust(32, b"\0"), np.uint64)
    return out


def _iso_words(after: bytes) -> tuple[Words, Words, Words]:
    """The 32 bytes from an ISO timestamp's first (the timestamp, then ``after``), as four words:
    (template, addend, mask). A byte XOR the template is 0..9 at a digit and 0 at any other byte of the
    template; adding the addend to its low seven bits sets the high bit exactly for any other value;
    the bytes past the template are masked out."""
    if after not in _ISO_WORDS:
        text = _ISO_TEXT + after
        if len(text) > 32:
            raise ValueError(f"{after!r}: at most {32 - len(_ISO_TEXT)} bytes after a timestamp")
        addend = bytes(0x76 if i < len(_ISO_TEXT) and c == ord("0") else 0x7F for i, c in enumerate(text))
        mask = b"\xff" * len(text)
        _ISO_WORDS[after] = (_words32(text), _words32(addend), _words32(mask))
    return _ISO_WORDS[after]


@dataclass
class Blob:
    """Texts joined by newlines: ``u8`` its bytes, ``words`` the 8 bytes starting at each offset (as
    little-endian uint64; zero-padded past the end), ``start``/``end`` each text's bounds (``end`` is the
    offset of its newline), ``readable`` whether the text is there and ASCII."""

    raw: bytes
    u8: NDArray[np.uint8]
    words: Words
    rows: NDArray[np.uint8]  # the 32 bytes at each offset
    start: Ints
    end: Ints
    readable: Bools

    @classmethod
    def of(cls, texts: Sequence[str | None]) -> Blob:
        n, pad = len(texts), "\0" * _PAD
        try:
            joined = "\n".join([*texts, pad])  # type: ignore[list-item]  # a None is caught below
            fine = joined.isascii()
        except TypeError:  # a row without text
            fine = False
        if fine:
            readable = np.ones(n, np.bool_)
            parts: Sequence[str] = texts  # type: ignore[assignment]  # the join above proved no None
        else:
            readable = np.fromiter((t is not None and t.isascii() for t in texts), np.bool_, n)
            parts = [t if t is not None and ok else "" for t, ok in zip(texts, readable.tolist(), strict=True)]
            joined = "\n".join([*parts, pad])
        raw = joined.encode("ascii")
        u8 = np.frombuffer(raw, np.uint8, len(raw) - _PAD)
        end = np.flatnonzero(u8 == 10)
        if len(end) != n:  # a text with a newline of its own
            end = np.cumsum(np.fromiter(map(len, parts), np.int64, n) + 1) - 1
        start = np.concatenate(([0], end[:-1] + 1)) if n else np.zeros(0, np.int64)
        words = np.ndarray((len(u8),), "<u8", raw, 0, (1,))
        rows = np.lib.stride_tricks.sliding_window_view(np.frombuffer(raw, np.uint8), 32)[: len(u8)]
        return cls(raw, u8, words, rows, start, end, readable)

    def word(self, at: Ints) -> Words:
        """The 8 bytes at each offset (an offset outside the texts reads the nearest one: callers check
        bounds)."""
        out: Words = self.words[np.clip(at, 0, len(self.words) - 1)]
        return out

    def byte(self, at: Ints) -> NDArray[np.uint8]:
        """The byte at each offset (0 outside the texts)."""
        if not len(self.u8):
            return np.zeros(len(at), np.uint8)
        return np.where((at >= 0) & (at < len(self.u8)), self.u8[np.clip(at, 0, len(self.u8) - 1)], np.uint8(0))


def matches(blob: Blob, at: Ints, literal: bytes) -> Bools:
    """Whether ``literal`` is at each offset of ``at`` (inside the texts): one word compare per 8 bytes."""
    size = len(literal)
    hit = (at >= 0) & (at + size <= len(blob.u8))
    if size < 8:
        mask = np.uint64((1 << (8 * size)) - 1)
        short: Bools = hit & ((blob.word(at) & mask) == _word(literal))
        return short
    for o in (*range(0, size - 7, 8), size - 8):
        hit &= blob.word(at + o) == _word(literal[o : o + 8])
    return hit


def which(blob: Blob, at: Ints, literals: Sequence[bytes]) -> Ints:
    """Which of ``literals`` (none a prefix of another) is at each offset: its index, else -1. Literals
    of up to 32 bytes whose first bytes tell them apart are told by one 32-byte gather per offset: the
    first bytes pick the one literal it can be, then all its bytes are compared at once."""
    out = np.full(len(at), -1, np.int64)
    short = [i for i, t in enumerate(literals) if 0 < len(t) <= 32]
    head = min((len(literals[i]) for i in short), default=8)
    keys = [int.from_bytes(literals[i][: min(head, 8)], "little") for i in short]
    if short and len(set(keys)) == len(keys):
        by_key = np.argsort(np.array(keys, np.uint64))
        sorted_keys = np.array(keys, np.uint64)[by_key]
        table = np.array([np.frombuffer(literals[short[k]].ljust(32, b"\0"), np.uint64) for k in by_key])
        masks = np.array(
            [np.frombuffer((b"\xff" * len(literals[short[k]])).ljust(32, b"\0"), np.uint64) for k in by_key]
        )
        sizes = np.array([len(literals[short[k]]) for k in by_key], np.int64)
        words = np.ascontiguousarray(blob.rows[np.clip(at, 0, len(blob.u8) - 1)].view(np.uint64).T)
        first = words[0] & np.uint64((1 << (8 * min(head, 8))) - 1)
        k = np.minimum(np.searchsorted(sorted_keys, first), len(short) - 1)
        hit = (sorted_keys[k] == first) & (at >= 0) & (at + sizes[k] <= len(blob.u8))
        words ^= np.take(table.T, k, axis=1)
        words &= np.take(masks.T, k, axis=1)
        hit &= (words[0] | words[1] | words[2] | words[3]) == 0
        out[hit] = np.array(short, np.int64)[by_key][k[hit]]
        rest = [i for i, t in enumerate(literals) if len(t) > 32]
    else:
        rest = list(range(len(literals)))
    for i in rest:
        sel = np.flatnonzero(out < 0)
        out[sel[matches(blob, at[sel], literals[i])]] = i
    return out


def find(blob: Blob, pattern: bytes) -> Ints:
    """Offsets of ``pattern`` (2 bytes or more) in the texts, in order: its first two bytes are searched
    as one 16-bit word at both alignments (two passes over the buffer), the rest checked at the
    candidates."""
    head = np.frombuffer(pattern[:2], np.uint16)[0]
    size = len(blob.u8)
    found = [np.zeros(0, np.int64)]
    found += [np.flatnonzero(np.frombuffer(blob.raw, np.uint16, (size - o) // 2, o) == head) * 2 + o
              for o in (0, 1) if size - o >= 2]  # fmt: skip
    at = np.sort(np.concatenate(found), kind="stable")  # sorted runs: a merge
    return at if len(pattern) == 2 else at[matches(blob, at, pattern)]


def _calendar() -> tuple[Ints, NDArray[np.uint8]]:
    """Per ``year * 13 + month`` (years 0-9999): days from 1970-01-01 to the month's first day, and
    the month's length (0 for month 0 and year 0)."""
    year = np.repeat(np.arange(10_000, dtype=np.int64), 13)
    month = np.tile(np.arange(13, dtype=np.int64), 10_000)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    m = np.maximum(month, 1)
    y = np.maximum(year, 1) - 1
    days = y * 365 + y // 4 - y // 100 + y // 400 + _DAYS_BEFORE[m] + (leap & (m > 2)) - 719163
    length = np.where((month >= 1) & (year >= 1), _MONTH_DAYS[m] + (leap & (m == 2)), 0)
    return days, length.astype(np.uint8)


_CALENDAR: list[tuple[Ints, NDArray[np.uint8]]] = []


def iso_micros(blob: Blob, at: Ints, after: bytes = b"") -> tuple[Ints, Bools]:
    """Epoch microseconds of the ``iso`` timestamps starting at byte offsets ``at`` and whether each one
    is well formed (digits and separators in place, a real date and time) and followed by ``after`` (at
    most 5 bytes): one 32-byte gather per timestamp."""
    template, addend, mask = _iso_words(after)
    if not _CALENDAR:
        _CALENDAR.append(_calendar())
    month_days, month_length = _CALENDAR[0]
    ok = (at >= 0) & (at + ISO_WIDTH + len(after) <= len(blob.u8))
    # one row per word (long rows: numpy's fast loops), one column per timestamp
    x = np.ascontiguousarray(blob.rows[np.clip(at, 0, len(blob.u8) - 1)].view(np.uint64).T)
    x ^= template[:, None]
    x &= mask[:, None]
    bad = (x & _LOW7) + addend[:, None]
    bad |= x
    bad &= _HIGH
    ok &= (bad[0] | bad[1] | bad[2] | bad[3]) == 0
    pairs = x * np.uint64(10)
    pairs += x >> np.uint64(8)  # at each byte: that digit * 10 + the next one
    b = pairs.view(np.uint8)  # row i: the bytes of word i; pairs that are not digits: garbage, not ok

    def two(k: int) -> NDArray[np.uint8]:  # the pair at byte k of each timestamp (a strided view)
        return b[k // 8, k % 8 :: 8]

    month, day, hour, minute, second = two(5), two(8), two(11), two(14), two(17)
    ok &= (month <= 12) & (day >= 1) & (hour < 24) & (minute < 60) & (second < 60)
    ym = np.minimum(two(0).astype(np.int32) * 100 + two(2), 9999) * 13 + np.minimum(month, 12)
    ok &= day <= month_length[ym]
    in_day = hour.astype(np.int32) * 3600 + minute.astype(np.int32) * 60 + second
    micro = two(20).astype(np.int32) * 10_000 + two(22).astype(np.int32) * 100 + two(24)
    return ((month_days[ym] + day) * 86400 + in_day) * 1_000_000 + micro, ok

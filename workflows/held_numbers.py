"""Held SLA fields from the state store's numbers (``workflows.sla_numbers``) as ``HeldColumns``.

The same columns ``HeldColumns.from_texts`` reads from the JSON text, for a fraction of the cost: the
chunk's numbers are joined and read with one ``numpy.frombuffer``; every clock record is matched to the
workflow's clocks by its name key. A row without numbers (NULL: a state the numbers cannot hold), in
another format or of the wrong length is flagged ``readable=False``: the comparison then reads its text
(``clock_compare.changed_cases``), as for a text row it cannot read. A clock the workflow does not name
is ignored, as the text reader ignores it. numpy: import this module lazily.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from casebridge.workflows.clock_columns import HeldColumns, _scatter
from casebridge.workflows.sla_numbers import FORMAT, NULL, STATE_ORDER, name_key

__all__ = ["held_from_numbers"]

_NONE = bytes(24)  # three zero words: format 0, read as unreadable


def held_from_numbers(blobs: Sequence[bytes | None], clocks: Sequence[str]) -> HeldColumns:
    """The held fields of each row for these clocks; state codes index ``sla_numbers.STATE_ORDER``
    (``clock_batch.STATES``' order)."""
    n = len(blobs)
    usable = [b if b is not None and len(b) >= 24 and len(b) % 8 == 0 else _NONE for b in blobs]
    words = np.fromiter(map(len, usable), np.int64, n) // 8
    data = np.frombuffer(b"".join(usable), "<i8").astype(np.int64)
    start = np.cumsum(words) - words
    fmt, level, count = data[start], data[start + 1], data[start + 2]
    readable = (fmt == FORMAT) & (count >= 0) & (words == 3 + 4 * count)
    count = np.where(readable, count, 0)
    row = np.repeat(np.arange(n), count)
    first = np.repeat(np.cumsum(count) - count, count)
    rec = np.repeat(start + 3, count) + 4 * (np.arange(len(row)) - first)
    key, due, warn, state = data[rec], data[rec + 1], data[rec + 2], data[rec + 3]
    readable &= ~(np.bincount(row[(state < 0) | (state >= len(STATE_ORDER))], minlength=n) > 0)
    keys = [name_key(name) for name in clocks]
    if len(set(keys)) < len(keys):  # two clock names with one key: only the text tells them apart
        readable[:] = False
    out = HeldColumns({}, {}, {}, {}, {}, {}, np.where(readable, level, 0), readable)
    for name, k in zip(clocks, keys, strict=True):
        mine = np.flatnonzero(key == k)
        r = row[mine]
        counts = np.bincount(r, minlength=n)
        out.readable &= counts <= 1
        out.present[name] = counts == 1
        d, w = due[mine], warn[mine]  # a null instant keeps NULL: its *_null flag says not to read it
        out.due[name], out.due_null[name] = _scatter(n, r, d, NULL), _scatter(n, r, d == NULL, True)
        out.warn[name], out.warn_null[name] = _scatter(n, r, w, NULL), _scatter(n, r, w == NULL, True)
        out.state[name] = _scatter(n, r, state[mine], len(STATE_ORDER))
    return out

"""SLA fields as numbers: the state store's second copy of what the tracker holds, for the batch path.

A sync pass compares every open case's computed SLA fields with the ones the tracker holds. Read from
their JSON text, 100,000 cases' held fields cost more than evaluating their clocks; kept beside the text
as little-endian 64-bit integers, they are read with one ``numpy.frombuffer`` for a whole chunk
(``clock_columns.HeldColumns.from_numbers``). The text stays the reference: this copy is written from
the same ``SlaFields`` by every store write, and anything it cannot hold (a state that is not a clock
state) is stored as NULL, which sends that row the text way.

Layout: ``FORMAT, escalation_level, n`` then per clock, in name order, ``key, due, warn, state``: ``key``
is the clock name's 64-bit BLAKE2b digest (``name_key``), ``due``/``warn`` epoch microseconds or
``NULL``, ``state`` the index in ``ClockState``'s order.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from casebridge.workflows.cases import SlaFields
from casebridge.workflows.model import ClockState

__all__ = ["FORMAT", "NULL", "STATE_ORDER", "name_key", "sla_numbers"]

FORMAT = 1
NULL = -(2**63)  # a due or warn instant that is not set
STATE_ORDER = tuple(str(s) for s in ClockState)
_CODE = {name: i for i, name in enumerate(STATE_ORDER)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@lru_cache(maxsize=256)
def name_key(name: str) -> int:
    """A clock name as a signed 64-bit integer (its BLAKE2b-64 digest): two names of one workflow that
    collide are refused by the reader, which then reads the text."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def _micros(moment: datetime | None) -> int:
    return NULL if moment is None else (moment - _EPOCH) // _US


def sla_numbers(sla: SlaFields) -> bytes | None:
    """``sla`` in the layout above; None when a clock's state is not a clock state (the text holds it)."""
    values = [FORMAT, sla.escalation_level, len(sla.clocks)]
    for name, fields in sorted(sla.clocks.items()):
        code = _CODE.get(fields.state)
        if code is None:
            return None
        values += (name_key(name), _micros(fields.due_at), _micros(fields.warn_at), code)
    try:
        return struct.pack(f"<{len(values)}q", *values)
    except struct.error:  # a level or an instant outside 64 bits: only the text can hold it
        return None

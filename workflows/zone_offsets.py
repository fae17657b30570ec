"""UTC offsets of many instants in one time zone at once, for the columnar paths (``status``, ``report``).

``datetime.fromtimestamp(s, zone)`` per instant costs about a microsecond each; here a zone's offset is
looked up once per distinct UTC hour, and again per instant only inside an hour that holds a transition
(every offset in use changes on a whole minute, so an hour whose first and last second agree has one
offset throughout: no zone changes twice within an hour).

numpy is imported here: import this module lazily.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

__all__ = ["utc_offsets"]

I = NDArray[np.int64]  # noqa: E741


def _offset(zone: ZoneInfo, second: int) -> int:
    delta = datetime.fromtimestamp(second, zone).utcoffset()
    return 0 if delta is None else int(delta.total_seconds())


def utc_offsets(second: I, zone: ZoneInfo) -> I:
    """The UTC offset (seconds) of ``zone`` at each epoch second: local time = ``second + offset``.
    Instants must be within ``datetime``'s range in that zone (the caller checks)."""
    if not len(second):
        return np.zeros(0, np.int64)
    hours, inverse = np.unique(second // 3600, return_inverse=True)
    inverse = inverse.ravel()
    first = np.array([_offset(zone, h * 3600) for h in hours.tolist()], np.int64)
    last = np.array([_offset(zone, h * 3600 + 3599) for h in hours.tolist()], np.int64)
    offset = first[inverse]
    for k in np.flatnonzero((first != last)[inverse]).tolist():  # an hour with a transition in it
        offset[k] = _offset(zone, int(second[k]))
    return offset

"""Per-case inputs of the batch clock path (``workflows.clock_batch``), read from the cases once per pass,
and the law-counted step (Reg. 1182/71 periods) over columns.

Everything per case that the batch needs is read here in one pass over the cases (C-level ``map`` of
``attrgetter``, no per-case Python frames): the policy group of each case (its request type and legal
basis), the extensions, the start instants. The law's due instants are looked up per distinct (place,
extensions, 15-minute start bucket) and kept across passes. numpy: import this module lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from operator import attrgetter

import numpy as np
from numpy.typing import NDArray

from casebridge.workflows.cases import Case
from casebridge.workflows.clock_eval import NAN
from casebridge.workflows.counting import _BUCKET, Establishments, _law_due, counted_place
from casebridge.workflows.legal_periods import ELAPSED, Place
from casebridge.workflows.model import ClockTarget

__all__ = ["CaseColumns", "Law", "law_targets"]

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741
B = NDArray[np.bool_]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DUES: dict[tuple[str, str, str, int, Place], dict[int, int]] = {}  # law due (epoch micros) per bucket
_DUES_MAX = 1 << 17  # buckets cached in all (about 15 MB at most) before the cache starts afresh


def codes(values: list[Hashable]) -> tuple[I, list[Hashable]]:
    """(per value its index among the distinct values, the distinct values in first-seen order). Enum
    members are grouped by identity first (they hash in Python code), anything else by value."""
    keys: list[Hashable] = list(map(id, values)) if values and isinstance(values[0], Enum) else values
    first = dict(zip(keys, values, strict=True))
    index: dict[Hashable, int] = {}
    of_key = {k: index.setdefault(v, len(index)) for k, v in first.items()}
    return np.fromiter(map(of_key.__getitem__, keys), np.int64, len(keys)), list(index)


def pairs(a: I, b: I) -> tuple[I, list[tuple[int, int]]]:
    """(per row the index of its (a, b) pair among the distinct pairs, the distinct pairs)."""
    span = int(b.max()) + 1 if len(b) else 1
    keys, inverse = np.unique(a * span + b, return_inverse=True)
    return inverse.ravel().astype(np.int64), [divmod(k, span) for k in keys.tolist()]


_CHUNK = 2048  # cases read per block: every attribute of a block while its objects are in cache


class CaseColumns:
    """The cases' inputs as columns: ``group`` indexes ``kinds`` ((request type, legal basis)),
    ``used`` the extensions granted before tracking, ``recorded`` whether per-clock extensions exist,
    and the instants of the ``fields`` named (the clocks' start fields). Read in blocks of cases, every
    attribute of a block at once: 100,000 case objects are scattered in memory, and one pass over them per
    attribute costs a cache miss per case and attribute."""

    def __init__(self, cases: Sequence[Case], fields: Sequence[str] = ()) -> None:
        self.cases = cases
        fields = list(dict.fromkeys(fields))
        names = ("request_type", "legal_basis", "extensions_used", "extensions", *fields)
        read = attrgetter(*names)
        columns: list[list[object]] = [[] for _ in names]
        for lo in range(0, len(cases), _CHUNK):
            for column, values in zip(columns, zip(*map(read, cases[lo : lo + _CHUNK]), strict=True), strict=True):
                column += values
        rt, rt_values = codes(columns[0])
        lb, lb_values = codes(columns[1])
        self.group, kinds = pairs(rt, lb)
        self.kinds: list[tuple[Hashable, Hashable]] = [(rt_values[a], lb_values[b]) for a, b in kinds]
        self.used = np.array(columns[2], np.int64)
        self.recorded = np.fromiter(map(bool, columns[3]), np.bool_, len(cases))
        starts = zip(fields, columns[4:], strict=True)
        self._moments = {name: _moments(values) for name, values in starts}  # type: ignore[arg-type]  # datetimes or None

    def moments(self, name: str | None, rows: I) -> tuple[F, I]:
        """The rows' ``name`` instants: epoch seconds (NaN when unset) and epoch microseconds."""
        if name is None:
            return np.full(len(rows), NAN), np.zeros(len(rows), np.int64)
        if name not in self._moments:
            self._moments[name] = _moments(list(map(attrgetter(name), self.cases)))
        seconds, micros = self._moments[name]
        return seconds[rows], micros[rows]


def _moments(values: list[datetime | None]) -> tuple[F, I]:
    n = len(values)
    seconds = np.array([NAN if v is None else v.timestamp() for v in values], np.float64) if n else np.zeros(0)
    known = ~np.isnan(seconds)
    micros = np.rint(np.where(known, seconds, 0.0) * 1e6).astype(np.int64)
    # seconds = micros / 10**6 correctly rounded; below 2**32 s the float resolves every microsecond
    exact = ~known | ((np.abs(seconds) < 2.0**32) & (micros / 1e6 == seconds))
    for k in np.flatnonzero(~exact).tolist():
        micros[k] = (values[k] - _EPOCH) // _US  # type: ignore[operator]  # known: not None
    return seconds, micros


Law = Callable[[I, B, F, I, F], tuple[I, F, F]]  # (group, started, start, start_us, target) -> changes


def law_targets(policy: list[ClockTarget | None], rows: I, inputs: CaseColumns,
                establishments: Establishments | None) -> Law | None:  # fmt: skip
    """Started law-counted periods take the target ending at the law's due instant (``clocks._counted``
    with ``counting.law_target``): the due instant depends only on the counted place, the extensions and
    the start's 15-minute bucket (``counting.law_due``), so the law is asked once per distinct triple
    (and remembered across passes). The returned function gives, from the rows' starts, the positions
    whose target changes, their target and warning seconds (None: no law-counted policy here)."""
    law_groups = [g for g, t in enumerate(policy) if t is not None and t.counting != ELAPSED and t.period]
    if not law_groups:
        return None

    def law(group: I, started: B, start: F, start_us: I, target_s: F) -> tuple[I, F, F]:
        js = np.flatnonzero(np.isin(group, law_groups) & started)
        if not len(js):
            return js, np.zeros(0), np.zeros(0)
        seconds, warn = _law_seconds(policy, law_groups, rows[js], group[js], start[js], start_us[js], inputs,
                                     establishments)  # fmt: skip
        changed = seconds != target_s[js]
        return js[changed], seconds[changed], warn[changed] + 0.0

    return law


def _law_seconds(policy: list[ClockTarget | None], law_groups: list[int], rows: I, group: I, start: F, start_us: I,
                 inputs: CaseColumns, establishments: Establishments | None) -> tuple[F, F]:  # fmt: skip
    cases = inputs.cases
    # the counted place: per policy group (legal basis included) and provider; the provider matters only
    # where the policy names no country and a provider directory is attached
    law = [t for g in law_groups if (t := policy[g]) is not None]
    if establishments is not None and any(not t.counting_country for t in law):
        provider, providers = codes(list(map(attrgetter("provider"), map(cases.__getitem__, rows.tolist()))))
    else:
        provider, providers = np.zeros(len(rows), np.int64), [None]
    place_key, place_pairs = pairs(group, provider)
    targets = {g: t for g in law_groups if (t := policy[g]) is not None}  # every law group has a target
    places = []
    for g, p in place_pairs:
        target = targets[g]
        basis = str(inputs.kinds[g][1])
        provider_name = None if providers[p] is None else str(providers[p])
        places.append((target, counted_place(target, provider_name, basis, establishments).place))
    maxe = np.array([t.max_extensions if t else 0 for t in policy], np.int64)[group]
    used = np.where(maxe > 0, np.minimum(inputs.used[rows], maxe), 0)
    bucket = np.floor_divide(start, _BUCKET).astype(np.int64)
    dues = np.empty(len(rows), np.int64)
    for (pid, n_used), at in _split(place_key, used).items():
        target, place = places[pid]
        key = (target.counting, target.period, target.extension_label, n_used, place)
        if sum(map(len, _DUES.values())) > _DUES_MAX:
            _DUES.clear()
        table = _DUES.setdefault(key, {})
        buckets, inverse = np.unique(bucket[at], return_inverse=True)
        wanted = buckets.tolist()
        for b in [b for b, d in zip(wanted, map(table.get, wanted), strict=True) if d is None]:
            due = _law_due(target.counting, b, target.period, n_used, target.extension_label, place)
            table[b] = (due - _EPOCH) // _US
        dues[at] = np.fromiter(map(table.__getitem__, wanted), np.int64, len(wanted))[inverse.ravel()]
    seconds = (dues - start_us) / 10**6
    warn0 = np.array([t.warn if t else 0.0 for t in policy])[group]
    ext = np.array([t.extension if t else 0.0 for t in policy])[group]
    return seconds, np.minimum(warn0 + used * ext, seconds)


def _split(place: I, used: I) -> dict[tuple[int, int], I]:
    """Positions per distinct (place, extensions) pair."""
    span = int(used.max()) + 1
    key = place * span + used
    order = np.argsort(key, kind="stable")
    values, first = np.unique(key[order], return_index=True)
    parts = np.split(order, first[1:])
    return {divmod(int(v), span): part for v, part in zip(values.tolist(), parts, strict=True)}

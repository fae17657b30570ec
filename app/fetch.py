"""The incremental fetch: what changed in the tracker since the watermark, with history only for those.

A listed case whose ``updated_at`` equals the one the cached history was read for reuses the cache (the
overlap re-lists recent cases every pass, and our own SLA writes bump ``updated_at``: both cost no
history request). Cases not listed come from the store as they were. A case whose history cannot be read
is left out of the pass (never plan a write from half-read data) and keeps its old cache entry, so the
next pass retries it.
"""

from __future__ import annotations

import heapq
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TypeVar

from casebridge.connectors import Connector
from casebridge.connectors.retry import RetryPolicy
from casebridge.errors import SafetyValveError, TrackerError
from casebridge.state.store import CachedCase, StateStore
from casebridge.workflows.cases import StatusChange, TrackedCase
from casebridge.workflows.sla import iso

log = logging.getLogger(__name__)

T = TypeVar("T")
# Fetching every history in one bulk call pays off above this many (embedded tracker only).
BULK_HISTORY_THRESHOLD = 50


@dataclass
class Snapshot:
    """Every case the pass can evaluate, with its history."""

    cases: dict[str, TrackedCase] = field(default_factory=dict)  # by tracker key
    listed: set[str] = field(default_factory=set)  # keys the tracker reported changed this pass
    failures: dict[str, TrackerError] = field(default_factory=dict)  # reference -> why no history
    newest: datetime | None = None  # newest updated_at listed (the next watermark)
    history_reads: int = 0
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # reference -> keys (full pass only)
    # with ``refresh(stream=True)``: ``cases`` holds only the listed (and re-read) cases, and this yields the
    # store's other cases in reference order, one at a time
    stored: Callable[[], Iterator[TrackedCase]] = field(default=lambda: iter(()))

    def in_reference_order(self) -> Iterator[TrackedCase]:
        """Every case of the pass, by reference: ``cases`` merged with the streamed ``stored`` ones."""
        held = sorted(self.cases.values(), key=_reference)
        return heapq.merge(held, self.stored(), key=_reference)


def _reference(tracked: TrackedCase) -> str:
    return tracked.case.reference


def refresh(
    tracker: Connector,
    store: StateStore,
    *,
    since: datetime | None,
    full: bool,
    safety_valve: int,
    force: bool,
    retry: RetryPolicy,
    dry_run: bool = False,
    stream: bool = False,
) -> Snapshot:
    """List what changed, read the histories that are not cached, update the store; raises
    SafetyValveError on a suspicious empty full listing, TrackerError when listing fails. With ``stream``
    the cases not listed are not loaded here: ``Snapshot.stored`` streams them from the store."""
    listed = retry.call(lambda: list(tracker.list_cases(updated_since=since)))
    known = store.count()
    if since is None and not listed and known >= safety_valve and not force:
        raise SafetyValveError(
            f"the tracker returned no cases but the state store {store.path} knows {known}; "
            "if the tracker really is empty, run again with --force"
        )
    if full and not dry_run:
        store.reset()
    snap = Snapshot(listed={t.key for t in listed})
    if full:
        cached: dict[str, CachedCase] = {}
    elif stream:
        cached = store.cached(snap.listed)
        cached.update((t.key, CachedCase(None, "", t)) for t in store.stale() if t.key not in snap.listed)
    else:
        cached = store.load(light=snap.listed)
    need: list[TrackedCase] = []
    for tracked in listed:
        entry = cached.get(tracked.key)
        if tracked.history is not None:
            pass  # listed with its history (Jira: the changelog comes with the search): no request
        elif (held := _cached_history(entry, tracked)) is not None:
            tracked.history = held
        else:
            need.append(tracked)
        if snap.newest is None or tracked.updated_at > snap.newest:
            snap.newest = tracked.updated_at
    # cached cases not listed whose history went stale (post-write updated_at unknown) are read again
    need.extend(e.tracked for k, e in cached.items() if k not in snap.listed and e.history is None and e.tracked)
    _read_histories(tracker, need, snap, retry)
    if not dry_run:
        # every listed case, cache hits too: the listing is the truth for fields and SLA values, and a
        # write stamped in the same instant (whole seconds in Redmine) leaves updated_at unchanged
        store.save({t.key: t for t in [*listed, *need] if t.history is not None}.values())
    for key, entry in cached.items():
        if key not in snap.listed and entry.history is not None and entry.tracked is not None:
            snap.cases[key] = entry.tracked
    for tracked in [*need, *listed]:
        if tracked.history is not None:
            snap.cases[tracked.key] = tracked
    if full:
        snap.duplicates = _duplicates(listed)
    if stream and not full:
        skip = frozenset(snap.cases) | frozenset(snap.listed)
        snap.stored = lambda: store.stream_stored(skip)
    return snap


def _cached_history(entry: CachedCase | None, tracked: TrackedCase) -> list[StatusChange] | None:
    """The cached history when it is the tracker's: read for this very updated_at, and ending in the state
    the tracker reports now (else None). The second test catches a status change stamped with the same
    updated_at as our own write (Redmine keeps whole seconds; a person can move the case within the second
    we wrote)."""
    if entry is None or entry.history is None or entry.history_for != iso(tracked.updated_at):
        return None
    history = entry.history
    return history if history and history[-1].state == tracked.state else None


def _read_histories(tracker: Connector, need: list[TrackedCase], snap: Snapshot, retry: RetryPolicy) -> None:
    bulk: dict[str, list[StatusChange]] = {}
    if tracker.bulk_history and len(need) >= BULK_HISTORY_THRESHOLD:
        try:
            bulk = retry.call(tracker.read_all_histories)
            snap.history_reads += 1
        except TrackerError as exc:
            log.info("bulk history read failed (%s); reading per case", exc)
    for tracked in need:
        if tracked.key in bulk:
            tracked.history = bulk[tracked.key]
            continue
        try:
            snap.history_reads += 1
            tracked.history = retry.call(partial(tracker.read_history, tracked.key))
        except TrackerError as exc:
            log.warning("%s: history not read: %s", tracked.case.reference, exc)
            tracked.history = None
            snap.failures[tracked.case.reference] = exc


def _duplicates(listed: list[TrackedCase]) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = defaultdict(list)
    for tracked in listed:
        keys[tracked.case.reference].append(tracked.key)
    return {ref: sorted(ks) for ref, ks in sorted(keys.items()) if len(ks) > 1}

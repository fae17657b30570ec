"""Read what a report needs: every case and its status history, from the sync job's cache when it can.

A case the state store holds with a history read for the very ``updated_at`` and state the tracker lists
now costs no request (the same rule the sync job uses, ``app.fetch``), so a report over 10,000 cases
lists the tracker once and reads only the histories that changed. The report never writes: not to the
tracker, not to the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from casebridge.app.fetch import refresh
from casebridge.app.sync_plan import history_reader
from casebridge.connectors import Connector
from casebridge.connectors.retry import RetryPolicy
from casebridge.state.store import StateStore
from casebridge.workflows.cases import Case, StatusChange, TrackedCase
from casebridge.workflows.model import Workflow
from casebridge.workflows.report import Report, build_report

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    # a list from the store's snapshot; without a store, a stream (read while the report counts them, so
    # 100,000 cases are never held at once; the counters below are final once it has been read)
    cases: Iterable[tuple[TrackedCase, list[StatusChange]]]
    history_reads: int
    from_cache: int
    failed: dict[str, str]  # reference -> why its history could not be read (left out)


def load_cases(tracker: Connector, state_path: Path | None) -> Loaded:
    """Every case with its history. Uses the state store at ``state_path`` when that file exists, unless the
    tracker reads every history in one query anyway (``bulk_history``, the embedded tracker): its cases are
    then streamed as without a store (100,000 cases: the store's copy and the tracker's of each held at once
    took 665 MB)."""
    if state_path is not None and state_path.is_file() and not tracker.bulk_history:
        store = StateStore(state_path)
        try:
            snap = refresh(
                tracker, store, since=None, full=False, safety_valve=1, force=True, retry=RetryPolicy(), dry_run=True
            )
        finally:
            store.close()
        cases = [(t, t.history or []) for t in snap.cases.values()]
        reads = snap.history_reads
        failed = {ref: str(exc) for ref, exc in snap.failures.items()}
        return Loaded(cases, reads, len(cases) - reads, failed)
    loaded = Loaded((), 0, 0, {})
    loaded.cases = _streamed(tracker, loaded)
    return loaded


def _streamed(tracker: Connector, loaded: Loaded) -> Iterator[tuple[TrackedCase, list[StatusChange]]]:
    read = history_reader(tracker)
    for tracked in tracker.list_cases():
        if tracked.history is None:  # listed without it: one read (the embedded tracker: one bulk read)
            loaded.history_reads = 1 if tracker.bulk_history else loaded.history_reads + 1
        yield tracked, read(tracked)


def make_report(
    tracker: Connector,
    workflow: Workflow,
    now: datetime,
    *,
    state_path: Path | None,
    by: Sequence[str],
    date_from: date | None,
    date_to: date | None,
    aggregate: bool,
    min_count: int,
    provider_of: Callable[[Case], str] | None = None,
) -> tuple[Report, Loaded]:
    loaded = load_cases(tracker, state_path)
    for reference, why in sorted(loaded.failed.items()):
        log.warning("%s: left out of the report: history not read: %s", reference, why)
    report = build_report(
        loaded.cases,
        workflow,
        now,
        by=by,
        date_from=date_from,
        date_to=date_to,
        aggregate=aggregate,
        min_count=min_count,
        provider_of=provider_of,
    )
    return report, loaded

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
from typing import TYPE_CHECKING

from casebridge.app import status_batch
from casebridge.connectors import Connector
from casebridge.connectors.case_text import CaseTexts
from casebridge.workflows.cases import Case, StatusChange, TrackedCase
from casebridge.workflows.model import Workflow
from casebridge.workflows.report import BATCH_SIZE, MIN_BATCH, Report, build_report

if TYPE_CHECKING:
    from casebridge.workflows.report_columns import ReportColumns

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
    # the sync job's modules, imported here: a report from the tracker's text (``_from_texts``) needs none
    from casebridge.app.fetch import refresh
    from casebridge.connectors.retry import RetryPolicy
    from casebridge.state.store import StateStore

    store_path = _store_path(tracker, state_path)
    if store_path is not None:
        store = StateStore(store_path)
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


def _from_texts(
    tracker: Connector, workflow: Workflow, now: datetime, options: _Options, loaded: Loaded
) -> Report | None:
    """The report read from the tracker's stored text a chunk at a time (``case_text_chunks``: the embedded
    tracker), counted over columns (``report_columns``) as ``status`` reads its cases; None when the
    tracker has no such text, lists too few cases for the batch, or anything does not read cleanly (the
    ordinary path then builds the report, and reports a bad row as it always did)."""
    chunks = tracker.case_text_chunks(BATCH_SIZE)
    if chunks is None:
        return None
    from casebridge.workflows.report_columns import ReportColumns  # numpy: only for a tracker with texts

    columns = ReportColumns(workflow, now, date_from=options.date_from, date_to=options.date_to,
                            aggregate=options.aggregate, provider_of=options.provider_of)  # fmt: skip
    read = 0
    for texts in chunks:
        if read == 0 and len(texts) < MIN_BATCH:  # numpy's set-up would not pay
            return None
        cases = status_batch.read_cases(texts)
        if cases is None:
            return None
        try:
            loaded.history_reads += _count_chunk(columns, tracker, texts, cases, workflow, now)
        except Exception:  # as status: the ordinary path evaluates and reports the case alone
            log.info("report: the columns could not count a chunk; reading every case the ordinary way")
            log.debug("columns failure", exc_info=True)
            return None
        read += len(texts)
    return None if read == 0 else columns.report(by=options.by, min_count=options.min_count)


def _count_chunk(
    columns: ReportColumns,
    tracker: Connector,
    texts: CaseTexts,
    cases: list[Case],
    workflow: Workflow,
    now: datetime,
) -> int:
    """Counts one chunk into ``columns``; returns how many histories were read one by one (those the
    columns could not read)."""
    read: dict[int, list[StatusChange]] = {}

    def history_of(i: int) -> list[StatusChange]:
        if i not in read:
            read[i] = tracker.read_history(texts.keys[i])
        return read[i]

    def listed_as(i: int) -> tuple[str, str | None]:
        return texts.states[i], None  # the embedded tracker's cases have no web page

    hist, batch = status_batch.evaluate_texts(cases, texts.histories, history_of, workflow, now)
    columns.add(cases, listed_as, hist, batch, history_of)
    return len(read)


def _store_path(tracker: Connector, state_path: Path | None) -> Path | None:
    """The state store to read the cases from: none when the file does not exist, or when the tracker
    reads every history in one query anyway (``bulk_history``)."""
    return state_path if state_path is not None and state_path.is_file() and not tracker.bulk_history else None


def _streamed(tracker: Connector, loaded: Loaded) -> Iterator[tuple[TrackedCase, list[StatusChange]]]:
    from casebridge.app.sync_plan import history_reader

    read = history_reader(tracker)
    for tracked in tracker.list_cases():
        if tracked.history is None:  # listed without it: one read (the embedded tracker: one bulk read)
            loaded.history_reads = 1 if tracker.bulk_history else loaded.history_reads + 1
        yield tracked, read(tracked)


@dataclass(frozen=True)
class _Options:
    by: Sequence[str]
    date_from: date | None
    date_to: date | None
    aggregate: bool
    min_count: int
    provider_of: Callable[[Case], str] | None


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
    options = _Options(by, date_from, date_to, aggregate, min_count, provider_of)
    if _store_path(tracker, state_path) is None:
        loaded = Loaded((), 1, 0, {})  # one listing with every history in it, and any read one by one
        report = _from_texts(tracker, workflow, now, options, loaded)
        if report is not None:
            return report, loaded
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

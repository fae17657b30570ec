"""Applying an intake: compare validated rows with the tracker, then create and update cases.

Writing is cheap on purpose (issue 3: the first sync of 1,000 cases within 15% of a bare loop creating
them): the plan uses the connector's bulk lookup (``find_cases``), creation its bulk create
(``create_cases``), each new case is created with its SLA fields already evaluated, and the sync job's
state store is seeded with each created case's history, so the first sync reads no history and, when
time has not moved a clock across a threshold, writes nothing. Connectors that cannot do better get the
contract's defaults (one call per case).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from casebridge.app.intake_intents import announce, announce_creates, forget, record, record_create, recover_creates
from casebridge.app.intents import intent_data
from casebridge.connectors import Connector
from casebridge.errors import TrackerError
from casebridge.state.store import StateStore
from casebridge.workflows.cases import SlaFields, TrackedCase
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.intake import (
    SET_FIELDS,
    UPDATE,
    FieldsAtCreation,
    IntakeAction,
    IntakeRow,
)
from casebridge.workflows.sla import computed_sla, sla_changes, sla_to_json

log = logging.getLogger(__name__)


def plan_intake(rows: list[IntakeRow], tracker: Connector) -> list[IntakeAction]:
    """Compare each row with the tracker (found by reference). Reads only: one bulk lookup when the
    connector offers ``find_cases(references)`` (Redmine: one request per 100 rows), else one per row."""
    found = tracker.find_cases([row.case.reference for row in rows])
    actions = []
    for row in rows:
        existing = found.get(row.case.reference)
        if existing is None:
            actions.append(IntakeAction("create", row))
        elif existing.case != row.case:
            actions.append(IntakeAction("update", row, existing))
        else:
            actions.append(IntakeAction("unchanged", row, existing))
    return actions


def apply_intake(
    actions: list[IntakeAction],
    tracker: Connector,
    audit: Any = None,
    *,
    now: datetime | None = None,
    store: StateStore | None = None,
) -> list[TrackedCase]:
    """Execute creates and updates; returns the cases written. ``audit`` (optional) gets one record per
    write (``append(kind, data)``) once the tracker confirmed it.

    A new case gets its SLA fields evaluated at ``now`` (default: the tracker's clock, else the real
    time): in the creating request when the connector takes ``sla=``, else in one write right after.
    ``store`` (optional, the sync job's state store) is seeded with every created case whose history
    is known (reported by the connector, or read once), so the next sync reads no history for them."""
    moment = now or tracker.now()
    if audit is not None:  # a killed intake's creations: their records are completed first
        recover_creates(tracker, audit)
    creator = _Creator(tracker, audit, moment)
    written: list[TrackedCase] = []
    try:
        written += creator.create([a for a in actions if a.kind == "create"])
        for action in actions:
            if action.kind == "update" and action.existing is not None:
                tracked = tracker.update_case(action.existing.key, action.row.case)
                written.append(tracked)
                _audit(audit, UPDATE, {"reference": action.row.case.reference, "key": tracked.key})
    finally:
        # what was created before a failure is seeded too; a store that cannot take it only costs speed
        if store is not None and creator.seeds:
            seeded = store.seed(creator.seeds)
            log.info("state store: seeded %d of %d created cases", seeded, len(creator.seeds))
    return written


def _audit(audit: Any, kind: str, data: dict[str, Any]) -> None:
    if audit is not None:
        audit.append(kind, data)


class _Creator:
    """Creates the new cases with their SLA fields and collects what the state store may be seeded with."""

    def __init__(self, tracker: Connector, audit: Any, now: datetime) -> None:
        self.tracker = tracker
        self.workflow = tracker.workflow
        self.audit = audit
        self.now = now
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # what a tracker stamps creations with
        self.seeds: list[TrackedCase] = []

    def create(self, creates: list[IntakeAction]) -> list[TrackedCase]:
        written = []
        intents = announce_creates(self.audit, [a.row.case.reference for a in creates])
        for action, tracked, sent in self._created(creates):
            data: dict[str, Any] = {"reference": action.row.case.reference, "key": tracked.key}
            if sent is not None:
                data["fields"] = sla_to_json(sent)
            record_create(self.audit, intents.get(data["reference"]), data)
            written.append(tracked)
            seed = self._settle(tracked, sent)
            if seed is not None:
                self.seeds.append(seed)
        return written

    def _created(self, creates: list[IntakeAction]) -> Iterator[tuple[IntakeAction, TrackedCase, SlaFields | None]]:
        """(action, tracked, SLA fields sent with the create or None), in the tracker's order."""
        if not creates:
            return
        tracker, wf = self.tracker, self.workflow
        by_ref = {a.row.case.reference: a for a in creates}
        ignored = 0 if tracker.back_dates else sum(1 for a in creates if a.row.state_since is not None)
        if ignored:
            log.warning("%s cannot back-date: state_since ignored for %d new cases", tracker.name, ignored)
        sla = None
        if tracker.creates_with_sla:
            # a tracker that stamps its own time starts the history at each case's own creation
            created_at = None if tracker.back_dates else self.clock
            sla = FieldsAtCreation({ref: a.row for ref, a in by_ref.items()}, wf, self.now, created_at)
        states = {ref: a.row.state or wf.initial for ref, a in by_ref.items()}
        at = {ref: a.row.state_since for ref, a in by_ref.items()}
        for tracked in tracker.create_cases([a.row.case for a in creates], states=states, at=at, sla=sla):
            ref = tracked.case.reference
            yield by_ref[ref], tracked, sla[ref] if sla is not None else None

    def _settle(self, tracked: TrackedCase, sent: SlaFields | None) -> TrackedCase | None:
        """The case as the store may remember it (with history), after writing its SLA fields if the
        create could not; None when its history is unknown (the next sync then reads it)."""
        if sent is not None:
            # connectors that take sla= report the history of what they created; an item that already
            # existed comes back without: its history is the tracker's to tell
            return tracked if tracked.history is not None else None
        try:
            history = tracked.history or self.tracker.read_history(tracked.key)
        except TrackerError as exc:
            log.warning("%s: history not read after creation (%s); the next sync reads it", tracked.key, exc)
            return None
        tracked.history = history
        return self._write_sla(tracked)

    def _write_sla(self, tracked: TrackedCase) -> TrackedCase | None:
        """One SLA write for a connector whose create takes no fields. Returns the case re-read (its new
        ``updated_at``), or None when that is unknown."""
        history = tracked.history or []
        computed = computed_sla(evaluate_case(tracked.case, history, self.workflow, self.now))
        change = sla_changes(computed, tracked.sla)
        if change is None:
            return tracked
        ref = tracked.case.reference
        data = intent_data(tracked.key, ref, change, self.now)
        intent = announce(self.audit, SET_FIELDS, data)
        try:
            self.tracker.set_sla_fields(tracked.key, change)
        except TrackerError as exc:
            forget(self.audit, intent)
            log.warning("%s: SLA fields not written at intake (%s); the next sync writes them", ref, exc)
            return None
        record(self.audit, intent, SET_FIELDS, data)
        try:
            after = self.tracker.get_case(tracked.key, ref)
        except TrackerError as exc:
            log.info("%s: updated_at after the SLA write unknown (%s); the next sync reads history", ref, exc)
            return None
        if after is None or after.key != tracked.key or after.state != history[-1].state:
            return None
        after.history = history
        return after

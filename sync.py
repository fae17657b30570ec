"""The sync job: plan a pass, then apply it.

Plan (reads only): ask the tracker what changed since the watermark (minus an overlap), read history only
for those (``app.fetch``; the rest comes from the state store), evaluate every open case's clocks at
``now`` (pure code in ``workflows.clocks``; unchanged cases too, since time passing crosses thresholds),
and compare the SLA fields the engine computes with what the tracker holds. Apply: write only the
differences, one small action per case, each announced and then audited exactly once
(``app.intents``); one failing case never stops the others. The watermark advances only when every
case succeeded. ``--dry-run`` prints the plan and writes nothing (tracker, store and audit log alike).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from casebridge.app.fetch import refresh
from casebridge.app.intents import SET_FIELDS, Recovery, intent_data, merged, recover
from casebridge.app.provider_field import ProviderWrite, noting_drift, provider_namer, write_providers
from casebridge.app.remind import ReminderOutcome, ReminderRecovery, apply_reminders, recover_reminders
from casebridge.app.sync_plan import (
    SetFields,
    SyncPlan,
    SyncResult,
    plan_pass,
)
from casebridge.connectors import Connector
from casebridge.connectors.retry import RetryPolicy
from casebridge.errors import EXIT_CASES_FAILED, EXIT_OK, NotFoundError, TrackerError, redact
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.workflows.case_index import LinkPair, LinkWatch
from casebridge.workflows.cases import TrackedCase
from casebridge.workflows.directory import Directory
from casebridge.workflows.model import Workflow
from casebridge.workflows.reminders import PlannedReminder

log = logging.getLogger(__name__)


@dataclass
class SyncOptions:
    dry_run: bool = False
    full: bool = False  # rebuild the store from the tracker and reconcile every case
    force: bool = False  # accept an empty tracker despite the safety valve
    overlap: timedelta = timedelta(minutes=2)
    safety_valve: int = 20
    # 3 attempts, Retry-After within 1-60 s. Writes set fields to values, so a retry after a lost answer
    # is safe. Connectors that retry themselves (``owns_retries``) get one attempt.
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=3, floor=1.0, ceiling=60.0, label="sync"))
    remind: bool = True  # after the pass, post the reminders due (sync --no-remind: not this run)


@dataclass
class SyncReport:
    now: datetime
    options: SyncOptions
    plan: SyncPlan
    result: SyncResult
    listed: int = 0
    history_reads: int = 0
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    recovery: Recovery = field(default_factory=Recovery)
    stopped: bool = False  # SIGTERM: stopped between two actions; the rest waits for the next run
    watermark: datetime | None = None
    links: list[LinkPair] = field(default_factory=list)  # pairs of open cases linked (dry run: to link)
    providers: list[ProviderWrite] = field(default_factory=list)  # Provider fields corrected (dry run: to)
    reminders: list[PlannedReminder] = field(default_factory=list)  # due at now (planned)
    reminded: list[ReminderOutcome] = field(default_factory=list)  # what posting them did
    reminder_recovery: ReminderRecovery = field(default_factory=ReminderRecovery)

    @property
    def exit_code(self) -> int:
        # duplicates need a person: report them like a failed case so cron mails someone
        codes = [*self.result.exit_codes.values(), *([EXIT_CASES_FAILED] if self.duplicates else [])]
        if any(not o.ok for o in self.reminded):
            codes.append(EXIT_CASES_FAILED)
        return max(codes, default=EXIT_OK)

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "dry_run": self.options.dry_run,
            "full": self.options.full,
            "listed": self.listed,
            "evaluated": self.plan.evaluated,
            "history_reads": self.history_reads,
            "actions": [a.to_json() for a in self.plan.actions],
            "applied": len(self.result.applied),
            "failures": dict(sorted(self.result.failures.items())),
            "duplicates": self.duplicates,
            "recovered": {"completed": self.recovery.completed, "dropped": self.recovery.dropped},
            "stopped": self.stopped,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "links": [[p.reference_a, p.reference_b, p.identifier] for p in self.links],
            "providers": [w.to_json() for w in self.providers],
            "reminders": [r.to_json() for r in self.reminders] if self.options.remind else None,
            "reminded": [o.to_json() for o in self.reminded],
        }


def _noting(cases: Iterable[TrackedCase], linkable: LinkWatch) -> Iterator[TrackedCase]:
    """Pass ``cases`` through, noting those that name an identifier in ``linkable`` (their keys, not the
    cases: holding every open case of a 100,000-case pass was most of its memory)."""
    for tracked in cases:
        if tracked.case.identifiers:
            linkable.note(tracked)
        yield tracked


def _is_open(workflow: Workflow, state: str) -> bool:
    known = workflow.states.get(state)
    return known is None or not known.terminal


class SyncJob:
    """One pass over a tracker with a state store and an audit log. The caller holds the run lock."""

    def __init__(
        self,
        tracker: Connector,
        workflow: Workflow,
        store: StateStore,
        audit: AuditLog,
        options: SyncOptions | None = None,
        *,
        progress: Callable[[list[SetFields], str], Iterable[SetFields]] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        directory: Directory | None = None,
    ) -> None:
        self.tracker = tracker
        self.workflow = workflow
        self.store = store
        self.audit = audit
        self.options = options or SyncOptions()
        if tracker.owns_retries:  # one retry layer only: the connector's own
            self.options = replace(self.options, retry=self.options.retry.with_attempts(1))
        self.progress = progress
        self.should_stop = should_stop
        self.directory = directory  # with it, open cases naming the same identifier are linked

    def run(self, now: datetime) -> SyncReport:
        """Raises TrackerError when the tracker cannot be listed, SafetyValveError on a suspicious empty
        listing; per-case failures are in the report."""
        opts = self.options
        self.tracker.use_clock(lambda: now)  # the embedded tracker stamps writes with --now (replays)
        recovery = Recovery() if opts.dry_run else recover(self.tracker, self.audit, self.store, opts.retry.call)
        watermark = self.store.watermark()
        since = None if opts.full or watermark is None else watermark - opts.overlap
        # When the listing was taken, by our clock (never ahead of the real time: a what-if --now in the
        # future must not push the watermark past real updates). Without it the watermark only moves
        # with tracker updates, and the last batch written would be re-listed by every pass.
        listed_at = min(now, datetime.now(UTC))
        snap = refresh(
            self.tracker,
            self.store,
            since=since,
            full=opts.full,
            safety_valve=opts.safety_valve,
            force=opts.force,
            retry=opts.retry,
            dry_run=opts.dry_run,
            stream=True,
        )
        chosen: Iterator[TrackedCase] = (  # streamed: a pass over 100,000 cases holds one unlisted case at a time
            t
            for t in snap.in_reference_order()
            if t.key not in recovery.unresolved_keys
            and (opts.full or t.key in snap.listed or _is_open(self.workflow, t.state))
        )
        # the linking step needs the open cases that name identifiers (only those can share one)
        linkable = None if self.directory is None else LinkWatch(self.directory, self.workflow)
        drift: list[ProviderWrite] = []  # listed cases whose Provider field is not the canonical name
        if self.directory is not None and linkable is not None:
            chosen = _noting(chosen, linkable)
            directory = self.directory
            chosen = noting_drift(chosen, provider_namer(lambda: directory), drift)
        plan = plan_pass(chosen, lambda t: t.history or [], self.workflow, now, remind=opts.remind)
        report = SyncReport(
            now,
            opts,
            plan,
            SyncResult(),
            listed=len(snap.listed),
            history_reads=snap.history_reads,
            duplicates=snap.duplicates,
            recovery=recovery,
            watermark=watermark,
        )
        for reference, exc in snap.failures.items():
            report.result.fail(reference, exc)
        for reference, message in plan.failures.items():
            report.result.failures[reference] = message  # could not be read or evaluated
            report.result.exit_codes[reference] = EXIT_CASES_FAILED
        for key in recovery.unresolved_keys:
            report.result.fail(
                snap.cases[key].case.reference if key in snap.cases else self.store.reference_of(key) or key,
                "an earlier write is not confirmed yet (tracker unreachable); retried next run",
            )
        pending = self._pending_links(linkable, recovery.unresolved_keys)
        report.reminders = plan.reminders
        if opts.dry_run:
            report.links, report.providers = pending, drift
            return report
        report.stopped = self._apply(plan, report.result, plan.before, now)
        if not report.stopped:
            report.links = self._link(pending, report.result)
            call, fail = self.options.retry.call, report.result.fail
            report.providers = write_providers(drift, self.tracker, self.audit, call=call, fail=fail)
        if report.result.ok and not report.stopped:
            newest = max((m for m in (watermark, snap.newest, listed_at) if m is not None), default=None)
            if newest is not None:
                self.store.set_watermark(newest)
            report.watermark = newest
        if opts.remind and not report.stopped:
            self._remind(report, now)
        return report

    def _remind(self, report: SyncReport, now: datetime) -> None:
        """Post the reminders due, after the pass: reminders never hold back an SLA write nor the
        watermark (they are planned from every open case on every pass)."""
        call = self.options.retry.call
        report.reminder_recovery = recover_reminders(self.tracker, self.audit, call)
        report.reminded = apply_reminders(
            report.reminders,
            self.tracker,
            self.audit,
            now=now,
            call=call,
            skip=report.reminder_recovery.unresolved,
            should_stop=self.should_stop,
        )

    def _apply(self, plan: SyncPlan, result: SyncResult, cases: dict[str, TrackedCase], now: datetime) -> bool:
        """Apply each action; returns True when stopped early (SIGTERM)."""
        actions: Iterable[SetFields] = plan.actions
        if self.progress is not None and plan.actions:
            actions = self.progress(plan.actions, "writing SLA fields")
        for action in actions:
            if self.should_stop():
                log.info("stop requested: %d of %d actions applied", len(result.applied), len(plan.actions))
                return True
            data = intent_data(action.key, action.reference, action.sla, now)
            if action.counting:  # the rule each written due instant was counted by
                data["counting"] = action.counting
            intent = self.audit.begin_intent(SET_FIELDS, data)
            try:
                self.options.retry.call(partial(self.tracker.set_sla_fields, action.key, action.sla))
            except NotFoundError:
                # deleted in the tracker since we cached it: forget it, or it would fail every pass and
                # hold the watermark forever (a full pass would drop it too)
                log.warning("%s: no longer in the tracker (key %s); forgotten", action.reference, action.key)
                self.audit.drop_intent(intent)
                self.store.forget([action.key])
                continue
            except TrackerError as exc:
                # the intent stays pending: the next run asks the tracker whether this write landed
                log.warning("%s: %s", action.reference, exc)
                result.fail(action.reference, exc)
                continue
            except Exception as exc:  # a connector's own bug (a KeyError in a parser): this case only
                error = _connector_bug(self.tracker, exc, action.reference)
                log.warning("%s: %s", action.reference, error, exc_info=log.isEnabledFor(logging.DEBUG))
                result.fail(action.reference, error)  # the intent stays pending, as above
                continue
            self.audit.complete_intent(intent)
            result.applied.append(action)
            self._remember_write(action, cases[action.key])
        return False

    def _pending_links(self, linkable: LinkWatch | None, skip: Iterable[str]) -> list[LinkPair]:
        """Pairs of open cases sharing an identifier that the store has no record of linking."""
        if linkable is None:
            return []
        done = self.store.linked_pairs()
        return [p for p in linkable.pairs(set(skip)) if (p.key_a, p.key_b) not in done]

    def _link(self, pairs: list[LinkPair], result: SyncResult) -> list[LinkPair]:
        """Link each pair once: the tracker's link (idempotent where it can tell), then the store's record
        and an audit record. A failure is the pair's first case's failure; the next pass retries it."""
        linked = []
        for pair in pairs:
            note = (
                f"Linked by casebridge: {pair.reference_a} and {pair.reference_b} both name {pair.identifier}. "
                "Coordinate before sending either request."
            )
            try:
                self.options.retry.call(partial(self.tracker.link_cases, pair.key_a, pair.key_b, note=note))
            except TrackerError as exc:
                log.warning("link %s <-> %s: %s", pair.reference_a, pair.reference_b, exc)
                result.fail(pair.reference_a, exc)
                continue
            self.store.record_link(pair.key_a, pair.key_b)
            self.audit.append(
                "sync.link", {"keys": [pair.key_a, pair.key_b], "references": [pair.reference_a, pair.reference_b]}
            )
            linked.append(pair)
        return linked

    def _remember_write(self, action: SetFields, before: TrackedCase) -> None:
        """Record what the tracker holds now and its new updated_at, so our own write does not make the
        next pass re-read this case's history. If anything else changed meanwhile, mark it stale."""
        updated_at = None
        # by key where the connector can (Jira: one GET instead of a text search per write)
        try:
            after = self.options.retry.call(lambda: self.tracker.get_case(action.key, action.reference))
        except Exception as exc:  # TrackerError, or a connector's own bug: either way only a re-read is lost
            log.info("%s: updated_at after write unknown (%s); history re-read next pass", action.reference, exc)
            after = None
        if after is not None and after.key == action.key and after.state == before.state:
            updated_at = after.updated_at
        self.store.record_write(action.key, merged(action.before, action.sla), updated_at)


def _connector_bug(tracker: Connector, exc: Exception, reference: str) -> TrackerError:
    """An exception that is not casebridge's own, raised inside a connector, as a one-line case failure."""
    return TrackerError(
        redact(
            f"the {tracker.name} connector failed unexpectedly ({type(exc).__name__}: {exc}); the write may "
            "or may not have landed: the next run checks (run with -v for the traceback)"
        ),
        case=reference,
    )

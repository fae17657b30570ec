"""Shared helpers of the sync tests (no tests here): an embedded tracker with random cases, a counting
and a fault-injecting proxy around it, a ground-truth log of effective SLA writes kept by a SQLite
trigger inside the tracker's own transaction, and the invariants checked after recovery.

Only the fault proxy is a stand-in: it wraps the real embedded tracker and decides, per call, to fail
before the call (429/5xx, unreachable) or after it was applied (the answer is lost). Everything else is
the real code: SQLite tracker, state store, audit log, sync job.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from casebridge.app.intents import SET_FIELDS, merged
from casebridge.connectors import Connector
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.connectors.retry import RetryPolicy
from casebridge.errors import TrackerUnreachable, TransientError
from casebridge.state.audit import AuditLog
from casebridge.state.lock import RunLock, lock_path_for
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions, SyncReport
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import SlaFields
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.counting import attach_establishments
from casebridge.workflows.directory import load_directory
from casebridge.workflows.model import Workflow
from casebridge.workflows.sla import computed_sla, sla_from_json
from tests.factories import T0, make_case

# as the CLI loads it: periods counted under Reg. 1182/71 are counted on the provider's EU establishment
# (the provider directory), so the harnesses' ground truth is the figure the sync job writes
WORKFLOW = attach_establishments(load_workflow("lawful-access"), load_directory)
_MARKER = re.compile(r"\bCBR[0-9A-F]{20}\b")
NO_SLEEP = RetryPolicy(attempts=3, sleep=lambda _s: None)
KINDS = [
    ("subscriber", "voluntary"),
    ("emergency", "eu-epo"),
    ("preservation", "us-2703f"),
    ("content", "mlat"),
    ("domain_registration", "nis2"),
    ("traffic", "voluntary"),
    ("emergency", "us-2702-emergency"),
]
# kinds whose clocks remind days before they lapse (preservations, voluntary follow-ups); used by the
# scenarios of cases that came in late (KINDS above stays as it was: seeded tests depend on its draws)
REMINDING_KINDS = [
    ("preservation", "us-2703f"),
    ("preservation", "eu-epo-pr"),
    ("preservation", "budapest-29"),
    ("subscriber", "voluntary"),
    ("subscriber", "budapest-2ap-7"),
]

_WRITE_LOG = """
CREATE TABLE IF NOT EXISTS write_log (id INTEGER PRIMARY KEY, case_id INTEGER, sla TEXT, level INTEGER);
CREATE TRIGGER IF NOT EXISTS log_sla AFTER UPDATE OF sla, escalation_level ON cases
WHEN old.sla IS NOT new.sla OR old.escalation_level IS NOT new.escalation_level
BEGIN INSERT INTO write_log (case_id, sla, level) VALUES (new.id, new.sla, new.escalation_level); END;
"""


@dataclass
class Env:
    """A config directory: embedded tracker, state store and audit log side by side."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "casebridge.toml"

    @property
    def tracker_path(self) -> Path:
        return self.root / "tracker.db"

    @property
    def state_path(self) -> Path:
        return self.root / "state.db"

    @property
    def audit_path(self) -> Path:
        return self.root / "state.audit.db"

    def write_config(self, extra: str = "") -> None:
        self.config.write_text(
            f'state = "state.db"\n{extra}\n[tracker]\nconnector = "local"\npath = "tracker.db"\n', encoding="utf-8"
        )

    def tracker(self, now: datetime | None = None) -> LocalConnector:
        tracker = LocalConnector(LocalConfig(path=str(self.tracker_path)), WORKFLOW)
        if now is not None:
            tracker.clock = lambda: now
        return tracker

    def install_write_log(self) -> None:
        """Ground truth: every effective change of SLA fields, recorded in the write's own transaction."""
        db = sqlite3.connect(self.tracker_path)
        db.executescript(_WRITE_LOG)
        db.close()

    def sync(self, now: datetime, tracker: Any = None, **options: Any) -> SyncReport:
        """One in-process pass, as `casebridge sync` runs it (lock, store, audit log)."""
        own = tracker is None
        tracker = tracker if tracker is not None else self.tracker()
        options.setdefault("retry", NO_SLEEP)
        with RunLock(lock_path_for(self.state_path)):
            store, audit = StateStore(self.state_path), AuditLog(self.audit_path)
            try:
                return SyncJob(tracker, WORKFLOW, store, audit, SyncOptions(**options)).run(now)
            finally:
                store.close()
                audit.close()
                if own:
                    tracker.close()


def random_walk(rng: random.Random, workflow: Workflow, state: str) -> str | None:
    options = sorted({t.target for t in workflow.transitions if state in t.sources or "*" in t.sources})
    if not options:
        return None
    # people mostly move cases forward; withdrawing is rare (else every random case ends withdrawn)
    weights = [1 if target in ("withdrawn", "draft") else 8 for target in options]
    return rng.choices(options, weights)[0]


def seed_cases(
    env: Env,
    rng: random.Random,
    count: int,
    start: datetime = T0,
    *,
    received_spread_days: int = 0,
    kinds: list[tuple[str, str]] = KINDS,
) -> list[str]:
    """``count`` cases of mixed kinds, each walked a few random transitions; returns their references.
    ``received_spread_days``: provider receipt up to that many days before ``start`` (cases that come to
    casebridge late, imported as ``submitted`` as intake does), so clocks run and reminder thresholds of
    long clocks fall inside a scenario."""
    tracker = env.tracker(start)
    refs = []
    for i in range(count):
        request_type, basis = rng.choice(kinds)
        ref = f"FIA-T-{i:04d}"
        received = start - timedelta(days=rng.randint(0, received_spread_days)) if received_spread_days else start
        case = make_case(ref, request_type=request_type, legal_basis=basis, submitted_at=received)
        late = received_spread_days and rng.random() < 0.8
        tracked = tracker.create_case(case, at=start, state="submitted" if late else None)
        state, at = tracked.state, start
        for _ in range(0 if late else rng.randint(0, 5)):
            nxt = random_walk(rng, WORKFLOW, state)
            if nxt is None:
                break
            at += timedelta(minutes=rng.randint(1, 600))
            tracker.transition(tracked.key, nxt, at=at)
            state = nxt
        refs.append(ref)
    tracker.close()
    return refs


def seeded_env(root: Path, count: int = 12, seed: int = 7) -> Env:
    """A config folder with ``count`` seeded cases (``seed_cases``) and the SLA write log installed."""
    env = Env(root)
    env.write_config()
    seed_cases(env, random.Random(seed), count)
    env.install_write_log()
    return env


def move_people(env: Env, rng: random.Random, now: datetime, share: float = 0.3) -> int:
    """People move some cases at ``now`` (as they would in Jira or Redmine)."""
    tracker = env.tracker(now)
    moved = 0
    for tracked in list(tracker.list_cases()):
        if rng.random() < share:
            nxt = random_walk(rng, WORKFLOW, tracked.state)
            if nxt is not None:
                tracker.transition(tracked.key, nxt, at=now)
                moved += 1
    tracker.close()
    return moved


class CountingTracker:
    """Proxy that counts connector calls (requests) and delegates everything to the real tracker."""

    COUNTED = (
        "list_cases",
        "read_history",
        "read_all_histories",
        "find_case",
        "set_sla_fields",
        "check_schema",
        "comment",  # a reminder is a comment (the contract's post_reminder default)
        "has_comment_marker",
    )

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "calls", Counter())

    def __getattr__(self, name: str) -> Any:
        default = Connector.__dict__.get(name)
        if callable(default) and getattr(type(self.inner), name) is default:
            # an ability the inner tracker leaves at the contract's default (find_cases looping over
            # find_case...): run the default on the proxy, so the per-case calls it makes are counted
            return default.__get__(self)
        attr = getattr(self.inner, name)
        if name not in self.COUNTED:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return self._call(name, attr, args, kwargs)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)  # e.g. the sync job setting the embedded tracker's clock

    def _call(self, name: str, attr: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = attr(*args, **kwargs)
        return list(result) if name == "list_cases" else result

    @property
    def writes(self) -> int:
        return self.calls["set_sla_fields"]


class FaultyTracker(CountingTracker):
    """Fails calls at random: 429/5xx before the call, unreachable before the call, or the answer lost
    after a write was applied ("connection dropped")."""

    def __init__(self, inner: Any, rng: random.Random, rate: float) -> None:
        super().__init__(inner)
        object.__setattr__(self, "rng", rng)
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "faults", Counter())

    def _call(self, name: str, attr: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.rng.random() < self.rate:
            kind = self.rng.choice(["429", "503", "unreachable", "lost_answer"])
            if kind == "lost_answer" and name in ("set_sla_fields", "comment"):
                attr(*args, **kwargs)
                self.faults["lost_answer"] += 1
                raise TransientError("connection dropped after the request was sent")
            if kind == "unreachable":
                self.faults["unreachable"] += 1
                raise TrackerUnreachable("connection refused (injected)")
            self.faults[kind] += 1
            raise TransientError(f"HTTP {kind if kind != 'lost_answer' else '502'} (injected)", retry_after=1.0)
        return super()._call(name, attr, args, kwargs)


@dataclass
class Check:
    cases: int = 0
    lost_updates: list[str] = field(default_factory=list)  # references whose fields differ from the engine
    duplicate_records: int = 0
    missing_records: int = 0
    mismatched: list[str] = field(default_factory=list)
    pending: int = 0
    verify_ok: bool = True
    duplicate_cases: int = 0
    writes: int = 0  # effective SLA writes seen in the ground truth
    verify_cli: int = 0  # exit code of `casebridge audit verify`, where a harness runs it

    @property
    def ok(self) -> bool:
        return (
            not self.lost_updates
            and not self.duplicate_records
            and not self.missing_records
            and not self.mismatched
            and not self.pending
            and self.verify_ok
            and not self.duplicate_cases
            and not self.verify_cli
        )


def check_invariants(env: Env, now: datetime) -> Check:
    """The tracker holds exactly the engine's fields at ``now``; the audit log has exactly one record per
    effective write (compared with the trigger's ground truth), verifies, and has no pending intent."""
    out = Check()
    tracker = env.tracker()
    histories = tracker.read_all_histories()
    cases = list(tracker.list_cases())
    out.cases = len(cases)
    out.duplicate_cases = len(cases) - len({t.case.reference for t in cases})
    for tracked in cases:
        expected = computed_sla(evaluate_case(tracked.case, histories[tracked.key], WORKFLOW, now))
        if tracked.sla != expected:
            out.lost_updates.append(tracked.case.reference)
    truth: dict[str, list[SlaFields]] = {}
    for row in tracker.db.execute("SELECT case_id, sla, level FROM write_log ORDER BY id"):
        fields = sla_from_json({"clocks": json.loads(row["sla"]), "escalation_level": row["level"]})
        truth.setdefault(str(row["case_id"]), []).append(fields)
    tracker.close()
    audit = AuditLog(env.audit_path)
    audited: dict[str, list[SlaFields]] = {}
    for record in audit.records():
        if record["kind"] != SET_FIELDS:
            continue
        key = record["data"]["key"]
        before = audited[key][-1] if audited.get(key) else SlaFields()
        audited.setdefault(key, []).append(merged(before, sla_from_json(record["data"]["fields"])))
    out.verify_ok = audit.verify().ok
    out.pending = len(audit.pending())
    audit.close()
    for key in set(truth) | set(audited):
        real, logged = truth.get(key, []), audited.get(key, [])
        if real == logged:
            continue
        out.duplicate_records += max(0, len(logged) - len(real))
        out.missing_records += max(0, len(real) - len(logged))
        if len(real) == len(logged):
            out.mismatched.append(key)
    return out


@dataclass
class ReminderCheck:
    posted: int = 0  # reminder comments in the tracker
    duplicates: int = 0  # a marker in more than one comment, or a key with more than one audit record
    lost: list[str] = field(default_factory=list)  # due at the end but never posted, or posted unaudited
    pending: int = 0

    @property
    def ok(self) -> bool:
        return not self.duplicates and not self.lost and not self.pending


def check_reminders(env: Env, now: datetime) -> ReminderCheck:
    """Ground truth: the tracker's comments. Every reminder due at ``now`` (the last runs' moment) is
    posted, each marker in exactly one comment, each posted one with exactly one audit record."""
    from casebridge.workflows.reminders import plan_reminders

    tracker = env.tracker()
    histories = tracker.read_all_histories()
    cases = list(tracker.list_cases())
    markers: Counter[str] = Counter()
    for (text,) in tracker.db.execute("SELECT markdown FROM comments"):
        markers.update(m for m in _MARKER.findall(text))
    due = plan_reminders(
        [(t, evaluate_case(t.case, histories[t.key], WORKFLOW, now)) for t in cases], WORKFLOW, now=now
    )
    tracker.close()
    return reminder_check(markers, due, env.audit_path)


def reminder_check(markers: Counter[str], due: list[Any], audit_path: Path) -> ReminderCheck:
    """Compare the reminder markers a tracker holds in its comments with the reminders ``due`` and the
    audit log's reminder records (both harnesses: embedded tracker and fake Jira)."""
    from casebridge.app.remind import REMINDER_POST
    from casebridge.workflows.reminders import marker_for

    out = ReminderCheck()
    audit = AuditLog(audit_path)
    records = Counter(r["data"]["dedupe_key"] for r in audit.records() if r["kind"] == REMINDER_POST)
    out.pending = sum(1 for _, kind, _ in audit.pending() if kind == REMINDER_POST)
    audit.close()
    out.posted = sum(markers.values())
    out.duplicates = sum(n - 1 for n in markers.values() if n > 1) + sum(n - 1 for n in records.values() if n > 1)
    out.lost += [f"due, not posted: {item.dedupe_key}" for item in due if markers[item.marker] == 0]
    posted = {marker_for(key) for key in records}
    out.lost += [f"posted, not audited: {m}" for m in markers if m not in posted]
    return out


def arm_kill(after: int, tracker_cls: type, intent_methods: tuple[str, ...]) -> None:
    """In a forked child only: SIGKILL ourselves right after the ``after``-th action (a tracker write,
    an audit intent or record, a state-store commit)."""
    import os
    import signal

    from casebridge.state.audit import AuditLog
    from casebridge.state.store import StateStore

    count = [0]

    def wrap(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def hooked(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            count[0] += 1
            if count[0] >= after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(cls, name, hooked)

    wrap(tracker_cls, "set_sla_fields")
    wrap(tracker_cls, "post_reminder")  # killed between a reminder's comment and its audit record
    for name in intent_methods:
        wrap(AuditLog, name)
    for name in ("save", "record_write", "set_watermark"):
        wrap(StateStore, name)


def tmpfs_dir(fallback: Path, prefix: str) -> Iterator[Path]:
    """A tmpfs directory when the host has one (a SIGKILL loses no page cache, so durability is the same,
    and the thousands of fsyncs of a fault harness stop dominating its run time), else ``fallback``."""
    import os
    import shutil
    import tempfile

    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield fallback
        return
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=shm))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)

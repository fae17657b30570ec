"""Fault-injection harness: seeded random runs of the sync job over the embedded tracker with 429s, 5xx,
an unreachable tracker, answers lost after a write was applied, and the process SIGKILLed between any two
actions; each scenario ends with recovery runs, then the invariants are checked against ground truth
(a trigger in the tracker's database logs every effective SLA change in the write's own transaction):

- the tracker holds exactly the fields the engine computes (no update lost),
- no case twice, exactly one audit record per effective write (none missing, none duplicated),
- no pending intent left, and the audit chain verifies.

Replay one scenario: ``CASEBRIDGE_FAULT_SEED=<seed> CASEBRIDGE_FAULT_RUNS=1 pytest tests/test_sync_faults.py -s``.
The killed runs are real processes (``os.fork`` of the test process) running the real CLI
(``casebridge sync``); the kill hook is armed only inside that child, so production code carries no
test parameter.
"""

from __future__ import annotations

import os
import random
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from casebridge.errors import CasebridgeError
from tests.cli_child import cli_in_child
from tests.factories import T0
from tests.test_sync_support import (
    REMINDING_KINDS,
    Check,
    Env,
    FaultyTracker,
    ReminderCheck,
    arm_kill,
    check_invariants,
    check_reminders,
    move_people,
    seed_cases,
    tmpfs_dir,
)

RUNS = int(os.environ.get("CASEBRIDGE_FAULT_RUNS", "200"))
BASE_SEED = int(os.environ.get("CASEBRIDGE_FAULT_SEED", "20261129"))


@dataclass
class Stats:
    scenarios: int = 0
    sync_runs: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    recoveries: int = 0
    writes: int = 0
    duplicates: int = 0
    lost: int = 0
    audit_gaps: int = 0  # an effective write without its audit record, or an intent left pending
    reminders: int = 0
    reminder_duplicates: int = 0
    reminders_lost: int = 0
    failed: dict[int, str] = field(default_factory=dict)


# -- the killed child ---------------------------------------------------------------------------------
def _arm_kill(after: int) -> None:
    from casebridge.connectors.local import LocalConnector

    arm_kill(after, LocalConnector, ("begin_intent", "complete_intent"))


def killed_run(env: Env, now: datetime, after: int) -> int:
    """Run `casebridge sync --now` in a child process that SIGKILLs itself after ``after`` actions.
    Returns the exit code (-9 when killed)."""
    return cli_in_child(["--config", str(env.config), "sync", "--now", now.isoformat()], arm=lambda: _arm_kill(after))


# -- one scenario ----------------------------------------------------------------------------------------
def faulty_run(env: Env, now: datetime, rng: random.Random, stats: Stats) -> int:
    tracker = FaultyTracker(env.tracker(), rng, rate=rng.uniform(0.05, 0.4))
    try:
        report = env.sync(now, tracker)
        code = report.exit_code
    except CasebridgeError as exc:  # listing failed: the whole pass is refused, nothing planned
        code = exc.exit_code
    finally:
        tracker.inner.close()
        stats.faults.update(tracker.faults)
    return code


def run_scenario(seed: int, root: Path, stats: Stats) -> tuple[Check, ReminderCheck]:
    rng = random.Random(seed)
    env = Env(root / f"s{seed}")
    env.root.mkdir()
    env.write_config()
    # half the scenarios: cases that came in late and shorter steps, so reminders fall due between runs
    late = rng.random() < 0.5
    if late:
        seed_cases(env, rng, rng.randint(6, 12), received_spread_days=90, kinds=REMINDING_KINDS)
    else:
        seed_cases(env, rng, rng.randint(4, 10))
    step = 2 * 24 * 60 if late else 14 * 24 * 60
    env.install_write_log()
    now = T0 + timedelta(days=3)
    for _ in range(rng.randint(2, 5)):
        now += timedelta(minutes=rng.randint(1, step))
        move_people(env, rng, now, share=rng.uniform(0.0, 0.5))
        mode = rng.choices(["clean", "faulty", "kill"], [1, 3, 3])[0]
        stats.sync_runs += 1
        if mode == "clean":
            env.sync(now)
        elif mode == "faulty":
            faulty_run(env, now, rng, stats)
        else:
            code = killed_run(env, now, rng.randint(1, 16))
            assert code in (0, -signal.SIGKILL), f"seed {seed}: killed run exited {code}"
            stats.kills += code == -signal.SIGKILL
    for _ in range(3):  # recovery runs: a clean pass must succeed
        stats.recoveries += 1
        stats.sync_runs += 1
        if env.sync(now).exit_code == 0:
            break
    return check_invariants(env, now), check_reminders(env, now)


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    yield from tmpfs_dir(tmp_path, "casebridge-faults-")


def test_fault_injection_harness(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stats = Stats()
    seeds = range(BASE_SEED, BASE_SEED + RUNS)
    for seed in seeds:
        check, reminders = run_scenario(seed, scratch, stats)
        stats.scenarios += 1
        stats.duplicates += check.duplicate_records + check.duplicate_cases
        stats.lost += len(check.lost_updates) + check.missing_records
        stats.audit_gaps += check.missing_records + check.pending + len(reminders.lost) + reminders.pending
        stats.reminders += reminders.posted
        stats.reminder_duplicates += reminders.duplicates
        stats.reminders_lost += len(reminders.lost)
        if not check.ok or not reminders.ok:
            stats.failed[seed] = repr((check, reminders))
    faults = sum(stats.faults.values())
    with capsys.disabled():
        print(
            f"\nfault harness: seeds {seeds.start}..{seeds.stop - 1}: {stats.scenarios} scenarios, "
            f"{stats.sync_runs} sync runs, {faults} faults injected ({dict(sorted(stats.faults.items()))}), "
            f"{stats.kills} kills (SIGKILL), {stats.recoveries} recovery runs, "
            f"duplicates {stats.duplicates}, lost updates {stats.lost}, audit gaps {stats.audit_gaps}; "
            f"reminders posted {stats.reminders}, "
            f"duplicate reminders {stats.reminder_duplicates}, lost reminders {stats.reminders_lost}; "
            f"failed seeds {sorted(stats.failed)}"
        )
    assert not stats.failed, f"replay with CASEBRIDGE_FAULT_SEED=<seed> CASEBRIDGE_FAULT_RUNS=1: {stats.failed}"
    assert stats.duplicates == 0 and stats.lost == 0 and stats.audit_gaps == 0
    assert stats.reminder_duplicates == 0 and stats.reminders_lost == 0
    if RUNS >= 200:  # the harness must actually have exercised what it claims
        assert faults >= 200 and stats.kills >= 50 and stats.faults["lost_answer"] >= 20
        assert stats.reminders >= 40

"""kill -9 at every step of `escalate` and `intake`, then ONE rerun: audit log and tracker agree (issue 11, item 9).

Each harness first runs the command to the end once, counting its steps (every tracker/target write and
every audit write), then, for each step k, copies a fresh folder and runs the real CLI in a forked child
that SIGKILLs itself right *before* its k-th step (so every gap between two writes is hit exactly once:
the target holds an item but the audit log has no record of it, the case is not yet linked, commented
or moved, a case is created with no ``intake.create`` record, ...). One rerun follows; then
``tests/audit_gaps.py`` counts audit gaps, duplicates, missing links and comments, wrong case states and
pending intents against the tracker's and the target's own records. Every count must be 0.

Before the fix (issue 11): the rerun said "already posted" and recorded nothing, left a case that
cannot move (0154, fulfilled) without its link and comment, and intake left cases with no record.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from tests.audit_gaps import Gaps, dump, escalation_gaps, intake_gaps
from tests.cli_child import cli_in_child
from tests.escalate_e2e import EXAMPLES, EXPECTED_KEYS, INTAKE_NOW, NOW, STATE_AFTER, write_config
from tests.test_sync_support import _WRITE_LOG

WF = load_workflow("lawful-access")
MAX_STEPS = 80
# The embedded tracker's intake is streamed in batches (app/intake_stream.py): a handful of steps (bulk
# lookup, bulk create, the batch's intent, its completion), so every one of them is a kill point. The
# per-case path (Jira, Redmine) repeats ~5 steps per case; CASEBRIDGE_KILL_STRIDE=N kills before every
# Nth step only.
INTAKE_STRIDE = int(os.environ.get("CASEBRIDGE_KILL_STRIDE", "1"))
ESCALATE_STEPS = ("post_escalation", "link_escalation", "transition", "comment", "has_comment_marker")
INTAKE_STEPS = ("find_cases", "create_case", "create_cases", "update_case", "set_sla_fields")
AUDIT_STEPS = (
    "append",
    "begin_intent",
    "begin_intents",
    "begin_intents_text",
    "complete_intent",
    "complete_intents",
    "drop_intent",
)


def _arm(before: int, tracker_steps: tuple[str, ...], counter_file: Path) -> None:
    """In the forked child only: SIGKILL right before the ``before``-th step; count the steps taken."""
    from casebridge.state.audit import AuditLog

    count = [0]

    def wrap(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def hooked(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            counter_file.write_text(str(count[0]))
            if count[0] == before:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)

        setattr(cls, name, hooked)

    for name in tracker_steps:
        wrap(LocalConnector, name)
    for name in AUDIT_STEPS:
        wrap(AuditLog, name)


def cli_child(folder: Path, args: list[str], *, before: int = 0, steps: tuple[str, ...] = ()) -> int:
    """``casebridge ARGS`` in a forked child in ``folder``; -9 when it killed itself."""
    arm = (lambda: _arm(before, steps, folder / "steps.count")) if steps else None
    return cli_in_child(["--config", str(folder / "casebridge.toml"), *args], arm=arm, cwd=folder)


def tracker_of(folder: Path) -> LocalConnector:
    return LocalConnector(LocalConfig(path=str(folder / "casebridge.db")), WF)


def every_kill_point(
    template: Path,
    tmp: Path,
    args: list[str],
    steps: tuple[str, ...],
    check: Callable[[Path, int], Gaps],
    stride: int = 1,
) -> tuple[int, Gaps]:
    """Kill before each step in turn, rerun once, check. Returns (kills, all gaps)."""
    probe = shutil.copytree(template, tmp / "probe")
    cli_child(probe, args, before=0, steps=steps)
    total = int((probe / "steps.count").read_text())
    assert 4 <= total <= MAX_STEPS, total
    gaps, kills = Gaps(), 0
    for k in range(1, total + 1, stride):
        folder = shutil.copytree(template, tmp / f"k{k}")
        code = cli_child(folder, args, before=k, steps=steps)
        assert code == -signal.SIGKILL, f"step {k}: exited {code}"
        kills += 1
        rerun = cli_child(folder, args)
        gaps.merge(check(folder, rerun), f"killed before step {k}")
    return kills, gaps


# -- escalate ------------------------------------------------------------------------------------------
@pytest.fixture
def escalate_template(tmp_path: Path) -> Path:
    folder = tmp_path / "template"
    folder.mkdir()
    write_config(folder, {"connector": "local", "path": "casebridge.db"})
    assert cli_child(folder, ["intake", str(EXAMPLES), "--now", INTAKE_NOW]) == 0
    return folder


def _escalation_check(folder: Path, rerun_code: int) -> Gaps:
    tracker = tracker_of(folder)
    try:
        held = [(p.dedupe_key, p.key) for p in tracker.liaison_items()]
        out = escalation_gaps(tracker, folder / "casebridge-state.audit.db", held, STATE_AFTER)
    finally:
        tracker.close()
    lost = EXPECTED_KEYS - {key for key, _ in held}
    out.audit_gaps += [f"{key}: never posted" for key in sorted(lost)]
    extra = Counter(key for key, _ in held)
    out.duplicates += [f"{key}: posted {n} times" for key, n in extra.items() if n > 1]
    if rerun_code != 1:  # 1: the examples' blocked case, as every escalate of them
        out.wrong_states.append(f"rerun exited {rerun_code}")
    return out


def test_escalate_killed_at_every_step_one_rerun_leaves_no_gap(
    escalate_template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["escalate", "--yes", "--now", NOW]
    kills, gaps = every_kill_point(escalate_template, tmp_path, args, ESCALATE_STEPS, _escalation_check)
    with capsys.disabled():
        print(
            f"\nescalate kill -9 harness (embedded tracker): {kills} kill points, one rerun each: "
            f"{len(gaps.audit_gaps)} audit gaps, {len(gaps.missing_links)} missing links, "
            f"{len(gaps.missing_comments)} missing comments, {len(gaps.duplicates)} duplicates, "
            f"{len(gaps.wrong_states)} wrong states, {gaps.pending} pending intents"
        )
    assert kills >= 10
    assert gaps.count == 0, dump(gaps)


def test_a_clean_rerun_after_completion_costs_no_comment_read(escalate_template: Path, tmp_path: Path) -> None:
    """Once a rerun completed everything, the next run decides from the audit log: no tracker request."""
    folder = shutil.copytree(escalate_template, tmp_path / "f")
    # killed right before the 3rd step: the first item was posted and recorded, its case not linked
    assert cli_child(folder, ["escalate", "--yes", "--now", NOW], before=3, steps=ESCALATE_STEPS) == -9
    assert cli_child(folder, ["escalate", "--yes", "--now", NOW]) == 1
    (folder / "steps.count").unlink(missing_ok=True)
    assert cli_child(folder, ["escalate", "--yes", "--now", NOW], before=0, steps=ESCALATE_STEPS) == 1
    # third run: no post, no link, no comment read, no audit write (each would have been counted)
    assert not (folder / "steps.count").exists()


# -- intake --------------------------------------------------------------------------------------------
@pytest.fixture
def intake_template(tmp_path: Path) -> Path:
    folder = tmp_path / "template"
    folder.mkdir()
    write_config(folder, {"connector": "local", "path": "casebridge.db"})
    tracker = tracker_of(folder)  # the tracker's schema, then the ground-truth trigger of every SLA write
    tracker.db.executescript(_WRITE_LOG)
    tracker.close()
    return folder


def _intake_check(folder: Path, rerun_code: int) -> Gaps:
    tracker = tracker_of(folder)
    try:
        out = intake_gaps(tracker, folder / "casebridge-state.audit.db")
        cases = Counter(t.case.reference for t in tracker.list_cases())
    finally:
        tracker.close()
    out.duplicates += [f"{ref}: {n} cases" for ref, n in cases.items() if n > 1]
    if rerun_code != 0:
        out.wrong_states.append(f"rerun exited {rerun_code}")
    return out


def test_intake_killed_at_every_step_one_rerun_leaves_no_gap(
    intake_template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["intake", str(EXAMPLES), "--now", INTAKE_NOW]
    kills, gaps = every_kill_point(intake_template, tmp_path, args, INTAKE_STEPS, _intake_check, INTAKE_STRIDE)
    with capsys.disabled():
        print(
            f"\nintake kill -9 harness (embedded tracker): {kills} kill points, one rerun each: "
            f"{len(gaps.audit_gaps)} audit gaps, {len(gaps.duplicates)} duplicates, {gaps.pending} pending intents"
        )
    assert kills >= 4  # lookup, create, the batch intent, its completion: each one killed
    assert gaps.count == 0, dump(gaps)

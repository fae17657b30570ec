"""A killed embedded intake leaves nothing (issue 16): the real CLI (``casebridge intake``) runs in a forked
child that SIGKILLs itself at the k-th step, for every k a clean run takes: after each COMMIT of any
SQLite file (tracker, audit log, state store) and after each batch's lookup inside the open tracker
transaction. Small batches (the child sets ``app.intake_stream.BATCH``) give the run many batches.

After every kill, before anything else runs:
- the tracker holds the cases of the first intake only, or of both intakes (never part of the second,
  never half of its updates), and the audit chain verifies;
then a rerun (the intake again, or a sync) resolves what the kill left, and:
- the tracker holds both intakes exactly once each,
- the audit log names each case the tracker created exactly once and each update once, none that
  never happened, with no pending intent left and the chain intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import casebridge.cli  # noqa: F401 - imported once here, so every forked child starts warm
from casebridge.state.audit import AuditLog
from tests.cli_child import cli_in_child
from tests.test_sync_support import Env, tmpfs_dir

NOW = "2026-12-01T09:00:00Z"
HEADER = "reference,title,provider,request_type,legal_basis,submitted_at,state,identifiers"
FIRST = range(0, 30)  # the first intake: created cleanly
SECOND = range(20, 75)  # the killed one: 20..29 updated (new title), 30..74 created
SMALL_BATCH = 8


def write_rows(path: Path, refs: range, title: str) -> Path:
    lines = [HEADER]
    for i in refs:
        state = "submitted" if i % 3 else "draft"
        submitted = "2026-11-30T09:00:00Z" if state == "submitted" else ""
        lines.append(f"FIA-K-{i:03d},{title} {i},Meta,subscriber,voluntary,{submitted},{state},email:k{i}@example.com")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the killed child ---------------------------------------------------------------------------------
def _arm(after: int, counter_file: Path | None) -> None:
    """In the child only: count steps; SIGKILL ourselves at step ``after`` (or, with ``counter_file``,
    write the count there when the run ends)."""
    import casebridge.app.intake_stream as stream
    import casebridge.connectors.local as local
    import casebridge.state.audit as audit
    import casebridge.state.store as store

    stream.BATCH = SMALL_BATCH
    count = [0]

    def step() -> None:
        count[0] += 1
        if counter_file is not None:
            counter_file.write_text(str(count[0]))
        elif count[0] >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    for module in (local, audit, store):
        original = module.write_transaction

        @contextlib.contextmanager
        def counted(db: Any, _original: Callable[..., Any] = original) -> Iterator[Any]:
            with _original(db) as inner:
                yield inner
            step()  # right after the COMMIT

        module.write_transaction = counted  # type: ignore[attr-defined]

    find_cases = local.LocalConnector.find_cases

    def find_then_step(self: Any, references: Any) -> Any:
        found = find_cases(self, references)
        step()  # mid-transaction: a batch looked up, earlier batches written but not committed
        return found

    local.LocalConnector.find_cases = find_then_step  # type: ignore[method-assign]


def child_intake(env: Env, csv: Path, after: int, counter_file: Path | None = None) -> int:
    argv = ["--config", str(env.config), "intake", str(csv), "--now", NOW]
    return cli_in_child(argv, arm=lambda: _arm(after, counter_file))


# -- the checks -------------------------------------------------------------------------------------
def tracker_cases(env: Env) -> dict[str, tuple[str, str]]:
    tracker = env.tracker()
    try:
        return {t.case.reference: (t.key, t.case.title) for t in tracker.list_cases()}
    finally:
        tracker.close()


def audit_state(env: Env) -> tuple[Counter[str], Counter[str], int, bool]:
    """(created references, updated references, pending intents, chain intact)."""
    log = AuditLog(env.audit_path)
    try:
        created: Counter[str] = Counter()
        updated: Counter[str] = Counter()
        for record in log.records():
            if record["kind"] == "intake.batch":
                created.update(c["reference"] for c in record["data"]["created"])
                updated.update(u["reference"] for u in record["data"]["updated"])
        return created, updated, len(log.pending()), verify_ok(log)
    finally:
        log.close()


def verify_ok(log: AuditLog) -> bool:
    from casebridge.state.audit import verify_records

    return verify_records(log.records()).ok


def refs(numbers: range) -> set[str]:
    return {f"FIA-K-{i:03d}" for i in numbers}


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    yield from tmpfs_dir(tmp_path, "casebridge-intake-kill-")


def prepare(root: Path, name: str) -> tuple[Env, Path]:
    env = Env(root / name)
    env.root.mkdir()
    env.write_config()
    first = write_rows(env.root / "first.csv", FIRST, "Original")
    assert child_intake(env, first, after=10**9) == 0
    return env, write_rows(env.root / "second.csv", SECOND, "Changed")


def test_a_killed_intake_leaves_nothing_and_a_rerun_completes_it_exactly_once(scratch: Path) -> None:
    env, second = prepare(scratch, "count")
    steps_file = scratch / "steps"
    assert child_intake(env, second, after=0, counter_file=steps_file) == 0
    steps = int(steps_file.read_text())
    batches = -(-len(SECOND) // SMALL_BATCH)
    assert steps >= batches + 3, f"a clean run took {steps} steps; expected at least one per batch plus commits"
    outcomes: Counter[str] = Counter()
    for k in range(1, steps + 1):
        for rerun in ("intake", "sync"):
            env, second = prepare(scratch, f"k{k}-{rerun}")
            before = tracker_cases(env)
            code = child_intake(env, second, after=k)
            assert code in (0, -signal.SIGKILL), f"step {k}: exit {code}"
            after = tracker_cases(env)
            committed = set(after) == refs(FIRST) | refs(SECOND)
            # all or nothing, right after the kill: no part of the second intake, no half of its updates
            if not committed:
                assert after == before, f"step {k}: the tracker changed although the intake did not commit"
            else:
                assert all(title.startswith("Changed") for ref, (_, title) in after.items() if ref in refs(SECOND))
            assert audit_state(env)[3], f"step {k}: audit chain broken right after the kill"
            outcomes["committed" if committed else "nothing"] += 1
            # the rerun resolves what the kill left
            if rerun == "intake":
                assert run_cli(env, "intake", str(second)) == 0
                expected_created = refs(FIRST) | refs(SECOND)
            else:
                assert run_cli(env, "sync") in (0, 1)
                expected_created = refs(FIRST) | (refs(SECOND) if committed else set())
            final = tracker_cases(env)
            assert set(final) == expected_created, f"step {k}/{rerun}"
            created, updated, pending, intact = audit_state(env)
            assert intact and pending == 0, f"step {k}/{rerun}: chain intact {intact}, {pending} pending"
            assert set(created) == expected_created and max(created.values()) == 1, f"step {k}/{rerun}: {created}"
            if committed or rerun == "intake":
                assert updated == Counter(refs(range(20, 30))), f"step {k}/{rerun}: updates {updated}"
            else:
                assert updated == Counter(), f"step {k}/{rerun}: updates audited that never happened"
    assert outcomes["committed"] and outcomes["nothing"], outcomes


def run_cli(env: Env, *args: str) -> int:
    """A clean CLI run in a child process (the CLI's logging set-up stays out of the test process)."""
    return cli_in_child(["--config", str(env.config), *args, "--now", NOW])


def test_the_batch_records_carry_what_recovery_needs(scratch: Path) -> None:
    env, second = prepare(scratch, "records")
    assert run_cli(env, "intake", str(second)) == 0
    log = AuditLog(env.audit_path)
    try:
        data = [r["data"] for r in log.records() if r["kind"] == "intake.batch"]
    finally:
        log.close()
    keys = tracker_cases(env)
    for entry in (c for d in data for c in d["created"]):
        assert keys[entry["reference"]][0] == entry["key"] and "fields" in entry and entry["state"]
    assert json.dumps(data).count("digest") == 10  # the ten updates, each with what it wrote


def test_a_bad_row_after_batches_were_written_leaves_nothing(tmp_path: Path) -> None:
    """The rows are validated as they are read: a bad one in the third batch rolls back the two written."""
    from datetime import datetime

    from casebridge.app.intake_stream import intake_streamed
    from casebridge.errors import IntakeError
    from casebridge.state.store import StateStore
    from casebridge.workflows.intake import iter_intake_file

    env = Env(tmp_path)
    env.write_config()
    data = write_rows(tmp_path / "cases.csv", range(30), "Row")
    lines = data.read_text(encoding="utf-8").splitlines()
    lines[25] = lines[25].replace("subscriber", "no-such-type")
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    now = datetime.fromisoformat(NOW)
    tracker, audit, store = env.tracker(now), AuditLog(env.audit_path), StateStore(env.state_path)
    seen: list[str] = []
    try:
        with pytest.raises(IntakeError, match=r"cases.csv:26: request_type"):
            rows = iter_intake_file(data, tracker.workflow, now)
            intake_streamed(rows, tracker, audit, store, now=now, batch_size=8, report=lambda a: seen.extend(a))
        assert len(seen) == 24  # three batches planned and written before the bad row was read
        assert list(tracker.list_cases()) == [] and list(audit.records()) == [] and audit.pending() == []
    finally:
        tracker.close()
        audit.close()
        store.close()

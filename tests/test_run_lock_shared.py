"""intake, sync and escalate share the run lock (issue 11, item 10), and the embedded tracker's
transition reads MAX(seq) inside its write transaction (no UNIQUE (case_id, seq) error under races)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import TransitionNotAllowed
from casebridge.state.lock import RunLock, lock_path_for, run_lock
from casebridge.workflows import load_workflow
from tests.cli_runner import cli_logging_restored, run
from tests.escalate_e2e import EXAMPLES, write_config
from tests.factories import T0, make_case

NOW = "2026-12-01T09:00:00Z"


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    write_config(tmp_path, {"connector": "local", "path": "casebridge.db"})
    with cli_logging_restored():
        yield tmp_path


@pytest.mark.parametrize(
    "command", [["intake", str(EXAMPLES)], ["sync"], ["escalate", "--yes"]], ids=["intake", "sync", "escalate"]
)
def test_a_writing_run_waits_for_no_other(capsys, configured, command) -> None:
    with RunLock(lock_path_for(configured / "casebridge-state.db")):
        code, _, err = run(capsys, *command, "--now", NOW)
    assert code == 2 and "holds the run lock" in err and len(err.strip().splitlines()) == 1
    assert not (configured / "casebridge.db").exists() or command != ["intake", str(EXAMPLES)]


def test_dry_runs_take_no_lock(capsys, configured) -> None:
    with RunLock(lock_path_for(configured / "casebridge-state.db")):
        assert run(capsys, "intake", str(EXAMPLES), "--dry-run", "--now", NOW)[0] == 0
        assert run(capsys, "escalate", "--dry-run", "--now", NOW)[0] in (0, 1)


def test_the_run_lock_is_reentrant_within_a_process(tmp_path) -> None:
    with run_lock(tmp_path / "s.db"), run_lock(tmp_path / "s.db"):
        pass
    with run_lock(tmp_path / "s.db"):  # released: taken again
        pass


def test_concurrent_transitions_never_collide_on_seq(tmp_path) -> None:
    wf = load_workflow()
    path = str(tmp_path / "t.db")
    seed = LocalConnector(LocalConfig(path=path), wf)
    key = seed.create_case(make_case("RACE-1"), state="acknowledged", at=T0).key
    seed.close()
    outcomes: Counter[str] = Counter()
    start = threading.Barrier(4)

    def worker(n: int) -> None:
        conn = LocalConnector(LocalConfig(path=path), wf)
        start.wait()
        for i in range(40):
            target = "awaiting_requester" if (i + n) % 2 == 0 else "acknowledged"
            try:
                conn.transition(key, target, at=T0 + timedelta(days=1))
                outcomes["moved"] += 1
            except TransitionNotAllowed:
                outcomes["refused"] += 1  # another worker moved it first: a clear refusal
            except Exception as exc:  # IntegrityError on (case_id, seq) before the fix
                outcomes[type(exc).__name__] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(outcomes) <= {"moved", "refused"}, outcomes
    check = LocalConnector(LocalConfig(path=path), wf)
    history = check.read_history(key)
    check.close()
    assert len(history) == 1 + outcomes["moved"]

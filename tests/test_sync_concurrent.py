"""The run lock: two `casebridge sync` processes on one config, and a lock left by a killed process.

To make "concurrent" deterministic without sleeping, the first process is frozen with SIGSTOP while it
holds the lock (the test waits until the lock file names it), then the second one runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from casebridge.errors import LockHeldError
from casebridge.state.audit import AuditLog
from casebridge.state.lock import RunLock, lock_path_for
from tests.factories import T0
from tests.test_sync_support import Env, check_invariants, seeded_env

ROOT = Path(__file__).resolve().parent.parent
NOW = T0 + timedelta(days=3)


@pytest.fixture
def env() -> Iterator[Env]:
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="casebridge-lock-", dir=shm if shm.is_dir() else None))
    env = seeded_env(root, 1500, seed=3)  # enough work that the first run is still busy when frozen
    yield env
    shutil.rmtree(root, ignore_errors=True)


def start_sync(env: Env) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "casebridge.cli", "--config", str(env.config), "sync", "--now", NOW.isoformat()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_holder(env: Env, proc: subprocess.Popen[str]) -> None:
    """Until the lock file names ``proc`` (bounded; this waits for an event, it does not pass time)."""
    lock = lock_path_for(env.state_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == proc.pid:
                return
        except (OSError, ValueError):
            pass
        assert proc.poll() is None, f"first run ended before it could be observed: {proc.communicate()}"
        time.sleep(0.005)
    pytest.fail("the first sync never took the run lock")


def test_second_concurrent_sync_exits_at_once_naming_the_holder(env: Env) -> None:
    first = start_sync(env)
    wait_for_holder(env, first)
    os.kill(first.pid, signal.SIGSTOP)  # frozen while holding the lock
    try:
        second = subprocess.run(
            [sys.executable, "-m", "casebridge.cli", "--config", str(env.config), "sync", "--now", NOW.isoformat()],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2
    message = second.stderr.strip().splitlines()
    assert len(message) == 1 and "holds the run lock" in message[0] and f"pid {first.pid} on host" in message[0]
    assert "1500 cases evaluated" in out
    assert check_invariants(env, NOW).ok


def test_lock_left_by_a_killed_run_is_taken_over(env: Env) -> None:
    first = start_sync(env)
    wait_for_holder(env, first)
    first.kill()  # SIGKILL while holding the lock
    first.communicate()
    assert json.loads(lock_path_for(env.state_path).read_text())["pid"] == first.pid  # the holder info remains
    second = subprocess.run(
        [sys.executable, "-m", "casebridge.cli", "--config", str(env.config), "sync", "--now", NOW.isoformat()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    check = check_invariants(env, NOW)
    assert check.ok, check
    audit = AuditLog(env.audit_path)
    assert audit.verify().ok
    audit.close()


def test_run_lock_in_one_process(tmp_path: Path) -> None:
    path = tmp_path / "state.db.lock"
    with RunLock(path), pytest.raises(LockHeldError, match=rf"pid {os.getpid()} on host"):
        RunLock(path).acquire()
    assert path.read_text() == ""  # a clean release leaves no holder behind
    with RunLock(path):  # and can be taken again
        pass

"""The run lock: one writing run (intake, sync, escalate) at a time per state store.

``fcntl.flock`` on a lock file next to the store. The kernel drops the lock when the holding process
dies, however it dies (SIGKILL, power loss of a container), so a lock left by a dead process is taken
over by simply acquiring it; there is no stale-pid guessing that could let two live runs in. The file
also holds who took the lock (pid, host, since) so a refused run can say whom it waited for.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from casebridge.errors import ConfigError, LockHeldError
from casebridge.state.sqlite_file import private_file

log = logging.getLogger(__name__)


def lock_path_for(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


class RunLock:
    """``with RunLock(path):`` holds the lock or raises LockHeldError at once (never waits)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(private_file(self.path), os.O_RDWR)
        except OSError as exc:
            raise ConfigError(f"run lock {self.path}: cannot open ({exc}); check the state directory") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockHeldError(
                f"another casebridge run (intake, sync or escalate) holds the run lock {self.path} ({holder}); "
                "this run exits without doing anything"
            ) from None
        previous = _read_holder(fd)
        if previous != "holder unknown":
            # we got the lock, so whoever wrote this is gone (flock dies with its process)
            log.info("run lock %s: taking over from a finished or dead run (%s)", self.path, previous)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(UTC).isoformat()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # a clean exit leaves no holder behind
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


_HELD: dict[Path, int] = {}  # lock path -> nesting depth in this process


@contextmanager
def run_lock(lock_path: Path) -> Iterator[None]:
    """The run lock ``lock_path`` of a state store, shared by intake, sync and escalate. Re-entrant
    within one process (``sync --escalate`` runs escalate under the sync's lock): flock locks belong
    to an open file, so a second open in the same process would refuse itself."""
    path = lock_path.resolve()
    if _HELD.get(path):
        _HELD[path] += 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    lock = RunLock(path)
    lock.acquire()
    _HELD[path] = 1
    try:
        yield
    finally:
        _HELD.pop(path, None)
        lock.release()


def _read_holder(fd: int) -> str:
    try:
        raw = os.pread(fd, 4096, 0)
        info = json.loads(raw) if raw else None
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict):
        return "holder unknown"
    return f"pid {info.get('pid')} on host {info.get('host')} since {info.get('since')}"

"""`casebridge ARGS` in a forked child process: what the kill -9 harnesses run.

A fork, not a subprocess: the child can be *armed* first (patched to SIGKILL itself at a chosen step)
and it starts in milliseconds, hundreds of times per harness. The CLI's logging set-up and its exit stay
in the child. Returns the child's exit code: -9 when it killed itself, 98 when it ended without one,
99 on an exception that escaped the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def cli_in_child(
    argv: list[str],
    *,
    arm: Callable[[], None] | None = None,
    output: Path | None = None,
    cwd: Path | None = None,
) -> int:
    """Run ``casebridge ARGV`` in a forked child; ``arm`` runs in the child first. Output goes to
    ``output`` (truncated) or nowhere."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 98
        try:
            if cwd is not None:
                os.chdir(cwd)
            sink = os.open(output or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(sink, 1)
            os.dup2(sink, 2)
            if arm is not None:
                arm()
            from casebridge.cli import main

            main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
        except BaseException:
            code = 99
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)

"""The ``casebridge`` command run in this process, for the CLI tests (the ``cli`` fixture in conftest)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from casebridge.cli import main


class Cli:
    """``cli("intake", path)`` runs ``casebridge intake PATH``: (exit code, stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as done:
            main(list(args))
        out, err = self.capsys.readouterr()
        return int(done.value.code or 0), out, err

    def json(self, *args: str) -> tuple[int, dict[str, Any]]:
        """``casebridge ARGS --json``: (exit code, the parsed output)."""
        code, out, err = self(*args, "--json")
        try:
            return code, json.loads(out)
        except ValueError:
            raise AssertionError(f"not JSON (exit {code}):\n{out}\n{err}") from None


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``casebridge ARGS`` in this process, for modules that do not take the ``cli`` fixture yet."""
    return Cli(capsys)(*args)


@contextmanager
def cli_logging_restored() -> Iterator[None]:
    """The CLI installs a root handler on the test's captured stderr; server threads that log after
    the test would write to a closed stream. Put the root logger back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)

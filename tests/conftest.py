"""Fixtures several test modules share: the CLI run in-process, and a scratch directory to run it in.

Helpers that are not fixtures live in their own modules (tests/factories.py, tests/cli_runner.py,
tests/escalate_e2e.py, ...); tracker servers are plugins (tests/jira_fixtures.py, redmine_fixtures.py,
smtp_fixtures.py) that a module asks for with ``pytest_plugins``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_runner import Cli


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``casebridge`` in this process: ``cli(*args)`` -> (exit code, stdout, stderr); ``cli.json(*args)``."""
    return Cli(capsys)


@pytest.fixture
def cli_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working directory for a CLI test: ``tmp_path``, no CASEBRIDGE_CONFIG from the environment,
    and the root logger put back afterwards (the CLI installs a handler on the test's captured stderr;
    server threads that log after the test would write to a closed stream)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield tmp_path
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)

"""Fixtures every test module shares, and those several modules use: the CLI run in-process and a scratch
directory to run it in.

Helpers that are not fixtures live in their own modules (tests/factories.py, tests/cli_runner.py,
tests/escalate_e2e.py, ...); tracker servers are plugins (tests/jira_fixtures.py, redmine_fixtures.py,
smtp_fixtures.py) that a module asks for with ``pytest_plugins``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_runner import Cli, cli_logging_restored


@pytest.fixture(autouse=True)
def private_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Without a config, casebridge keeps its files in the user's data and state folders (platformdirs,
    which honours XDG_*): point those at a fresh folder per test, so no test reads or writes the real
    user's cases and no two tests share an embedded tracker. Subprocesses inherit it."""
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    yield home


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``casebridge`` in this process: ``cli(*args)`` -> (exit code, stdout, stderr); ``cli.json(*args)``."""
    return Cli(capsys)


@pytest.fixture
def cli_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working directory of a CLI test: ``tmp_path``, with the root logger put back afterwards (the
    CLI installs a handler on the test's captured stderr; server threads that log after the test would
    write to a closed stream)."""
    monkeypatch.chdir(tmp_path)
    with cli_logging_restored():
        yield tmp_path

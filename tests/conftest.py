"""Fixtures every test module shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


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

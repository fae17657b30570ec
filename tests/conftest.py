"""Fixtures every test module shares."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles (README, Testing). "ci": derandomized, so a CI run draws the same examples every
# time and cannot turn red by chance (known edge cases are pinned with @example); no deadline, since CI
# shares its cores. "thorough": ten times the examples, random, for local bug hunting. Outside CI the
# default profile draws fresh random examples each run. HYPOTHESIS_PROFILE names a profile explicitly.
settings.register_profile(
    "ci", derandomize=True, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile("thorough", max_examples=1000, derandomize=False, deadline=None, print_blob=True)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI", "").lower() == "true" else "default")
)


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

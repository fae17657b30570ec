"""The Hypothesis profile tests/conftest.py selects: derandomized under CI, so CI cannot turn red by chance."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings


@pytest.mark.skipif(
    os.environ.get("CI", "").lower() != "true" or bool(os.environ.get("HYPOTHESIS_PROFILE")),
    reason="CI profile: only when CI=true and no HYPOTHESIS_PROFILE is named",
)
def test_ci_draws_the_same_examples_every_run() -> None:
    assert settings.default.derandomize is True
    assert settings.default.deadline is None  # CI shares its cores: no flaky deadline


def test_the_thorough_profile_draws_ten_times_the_examples_at_random() -> None:
    thorough = settings.get_profile("thorough")
    assert thorough.max_examples == 1000 and thorough.derandomize is False

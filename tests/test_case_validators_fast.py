"""Case's own validators have fast paths for what casebridge itself stores (every ``status``, ``sync`` and
``report`` validates 100,000 stored cases); the fast path must accept and refuse exactly what the full
check does."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from casebridge.workflows.cases import Case, known_timezone, strict_moment
from tests.factories import make_case


@pytest.mark.parametrize(
    "text",
    ["2026-11-02T09:00:00Z", "2026-11-02T09:00:00Z\n", " 2026-11-02T09:00:00+05:00 ", "\t2026-11-02 09:00Z"],
)
def test_a_timestamp_is_returned_without_its_surrounding_blanks(text: str) -> None:
    # '$' in the pattern also matches before a final newline: the fast path must not keep it
    assert strict_moment(text) == text.strip()


@pytest.mark.parametrize("text", ["2026-11-02", "2026-11-02T09:00:00", "1733000000", "2026-11-02T09:00:00Z x"])
def test_a_timestamp_without_offset_or_not_iso_is_still_refused(text: str) -> None:
    with pytest.raises(ValueError):
        strict_moment(text)


@pytest.mark.parametrize("reference", ["FIA\x1b[2J-1", "FIA\x00", "FIA\x7f", "A\nB"])
def test_a_reference_with_a_control_character_is_refused(reference: str) -> None:
    with pytest.raises(ValidationError, match="must not contain control characters"):
        make_case(reference)


def test_a_reference_not_printable_but_without_control_characters_is_kept() -> None:
    # a no-break space or a line separator is not printable, yet not a C0 control character
    assert make_case("FIA\u00a0CCW\u2028-1").reference == "FIA\u00a0CCW\u2028-1"


def test_a_zone_once_known_is_still_known_and_an_unknown_one_still_refused() -> None:
    assert known_timezone("Asia/Kathmandu") == known_timezone("Asia/Kathmandu") == "Asia/Kathmandu"
    with pytest.raises(ValueError, match="unknown IANA time zone 'Asia/Kathmandoo'"):
        known_timezone("Asia/Kathmandoo")
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        Case.model_validate({**make_case().model_dump(), "timezone": "Mars/Olympus"})

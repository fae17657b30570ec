"""Chunking of bulk reference lookups (no server; the live behaviour is in tests/test_intake_redmine.py)."""

from __future__ import annotations

from urllib.parse import quote

from casebridge.connectors.redmine.lookup import CHUNK_SESSION_BYTES, CHUNK_URL_CHARS, CHUNK_VALUES, chunks


def test_chunks_keep_order_drop_repeats_and_stay_under_every_bound() -> None:
    values = [f"FIA-CCW-2026-{i:04d}" for i in range(500)] + ["FIA-CCW-2026-0001"] + ["ü" * 100, "x" * 100] * 20
    got = list(chunks(values, field_id=12))
    flat = [v for c in got for v in c]
    assert flat == list(dict.fromkeys(values))  # every value once, in order
    for chunk in got:
        assert len(chunk) <= CHUNK_VALUES
        assert sum(len(v.encode()) + 3 for v in chunk) <= CHUNK_SESSION_BYTES
        assert sum(len("&v%5Bcf_12%5D%5B%5D=") + len(quote(v, safe="")) for v in chunk) <= CHUNK_URL_CHARS
    assert len(got[0]) == CHUNK_SESSION_BYTES // (17 + 3)  # short references: the session budget binds


def test_one_oversized_value_still_gets_its_own_chunk() -> None:
    assert list(chunks(["a" * 5000, "b"], field_id=1)) == [["a" * 5000], ["b"]]

"""The ``intake.batch`` payload written as text (app/intake_batch_text.py) is, character for character,
``canonical`` of the dicts it replaces, for hostile text too; and the audit log stores, scrubs and
completes such a text exactly as it does the dicts (``begin_intents_text`` against ``begin_intents``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from casebridge.app.intake_batch_text import batch_text, created_text, fields_text
from casebridge.errors import remember
from casebridge.state.audit import AuditLog, canonical
from casebridge.workflows.cases import ClockFields, SlaFields
from casebridge.workflows.sla import sla_to_json

HOSTILE = [
    "FIA-B-1",
    'quote " and back\\slash',
    "line\nbreak\ttab\x00nul\x1fus\x7fdel",
    "naïve ünïcode 日本語 \u2028\u2029 emoji \U0001f46e",
    "=cmd|' /C calc'!A0",
    "",
]
AT = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)
FIELDS = [
    SlaFields(),
    SlaFields(
        clocks={
            "preservation": ClockFields(AT, AT - timedelta(days=2), "running"),
            "followup": ClockFields(None, None, "not_started"),
            "mla": ClockFields(AT.astimezone(timezone(timedelta(hours=5))), None, "breached"),
        },
        escalation_level=2,
    ),
    SlaFields(clocks={'ä-clock "x"': ClockFields(datetime(999, 1, 2, tzinfo=UTC), None, "met")}, escalation_level=0),
]


@pytest.mark.parametrize("sla", FIELDS)
def test_the_fields_text_is_canonical_of_sla_to_json(sla: SlaFields) -> None:
    assert fields_text(sla) == canonical(sla_to_json(sla))


@pytest.mark.parametrize("text", HOSTILE)
def test_a_created_entry_is_canonical_of_its_dict_with_and_without_fields(text: str) -> None:
    for sla in FIELDS:
        entry = {"reference": text, "key": text + "k", "state": text[::-1], "fields": sla_to_json(sla)}
        assert created_text(text, text + "k", text[::-1], fields_text(sla)) == canonical(entry)
    bare = {"reference": text, "key": "17", "state": "submitted"}
    assert created_text(text, "17", "submitted", None) == canonical(bare)


def test_a_batch_is_canonical_of_its_dict() -> None:
    created = [
        {"reference": t, "key": str(i), "state": "draft", "fields": sla_to_json(FIELDS[1])}
        for i, t in enumerate(HOSTILE)
    ]
    updated = [{"reference": t, "key": "9", "digest": "ab" * 16} for t in HOSTILE]
    texts = [created_text(e["reference"], e["key"], e["state"], fields_text(FIELDS[1])) for e in created]
    for made, upd in ((texts, updated), (texts, []), ([], updated)):
        expected = {"evaluated_at": AT.isoformat(), "created": created if made else [], "updated": upd}
        assert batch_text(AT.isoformat(), made, upd) == canonical(expected)


def stored(log: AuditLog) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    pending = [(kind, data) for _, kind, data in log.pending()]
    log.complete_intents([i for i, _, _ in log.pending()])
    return pending, [{k: r[k] for k in ("kind", "data")} for r in log.records()]


def payloads() -> list[dict[str, Any]]:
    created = [{"reference": t, "key": "1", "state": "draft", "fields": sla_to_json(FIELDS[1])} for t in HOSTILE]
    return [
        {"evaluated_at": AT.isoformat(), "created": created, "updated": []},
        # secret-looking words and a known secret: the text is scrubbed as the dicts are
        {"evaluated_at": AT.isoformat(), "created": [{"reference": "my api_key is in-batch-s3cret", "key": "2",
                                                      "state": "draft"}], "updated": [{"token": "t", "key": "3"}]},
    ]  # fmt: skip


def test_the_audit_log_stores_and_scrubs_a_text_as_the_dicts(tmp_path: Path) -> None:
    remember("in-batch-s3cret")
    by_dicts, by_text = AuditLog(tmp_path / "a.db"), AuditLog(tmp_path / "b.db")
    by_dicts.begin_intents("intake.batch", payloads())
    by_text.begin_intents_text("intake.batch", [canonical(p) for p in payloads()])

    assert stored(by_text) == stored(by_dicts)
    raw = (tmp_path / "b.db").read_bytes()
    assert b"in-batch-s3cret" not in raw and b'"token":"t"' not in raw
    first, second = (r["data"] for r in by_text.records())
    assert second["updated"] == [{"token": "***", "key": "3"}] and "***" in second["created"][0]["reference"]
    assert by_text.verify().ok
    assert first == json.loads(canonical(payloads()[0]))

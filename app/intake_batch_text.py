"""The ``intake.batch`` audit payload written as canonical JSON text directly (issue 16).

An intake of 100,000 cases records 100,000 created entries, each with its SLA fields. Building them as
dicts and serialising the batch with ``state.audit.canonical`` cost about a second at that size; these
functions write the same text (sorted keys, no spaces, UTF-8: ``canonical`` of the same dicts,
character for character: tests/test_intake_batch_text.py) from the values themselves. The audit log
still scrubs the text as it scrubs any record (``AuditLog.begin_intents_text``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from casebridge.state.audit import canonical
from casebridge.workflows.cases import SlaFields
from casebridge.workflows.sla import iso

_string = json.encoder.encode_basestring  # a str as canonical (ensure_ascii=False) writes it


def fields_text(sla: SlaFields) -> str:
    """``canonical(sla_to_json(sla))``."""
    parts = []
    for name, f in sorted(sla.clocks.items()):
        due = f'"{iso(f.due_at)}"' if f.due_at else "null"
        warn = f'"{iso(f.warn_at)}"' if f.warn_at else "null"
        parts.append(f'{_string(name)}:{{"due_at":{due},"state":{_string(f.state)},"warn_at":{warn}}}')
    level = sla.escalation_level
    level_text = str(level) if type(level) is int else json.dumps(level)
    return '{"clocks":{' + ",".join(parts) + '},"escalation_level":' + level_text + "}"


def created_text(reference: str, key: str, state: str, fields: str | None) -> str:
    """``canonical`` of a created entry: ``{"reference", "key", "state"}`` and, when given, ``"fields"``
    (``fields_text``)."""
    rest = f'"key":{_string(key)},"reference":{_string(reference)},"state":{_string(state)}}}'
    return "{" + rest if fields is None else '{"fields":' + fields + "," + rest


def batch_text(evaluated_at: str, created: Sequence[str], updated: list[dict[str, Any]]) -> str:
    """``canonical({"evaluated_at": ..., "created": [...], "updated": [...]})`` with the created entries
    given as their texts (``created_text``)."""
    return (
        '{"created":['
        + ",".join(created)
        + '],"evaluated_at":'
        + _string(evaluated_at)
        + ',"updated":'
        + canonical(updated)
        + "}"
    )

"""Case factories shared by tests: realistic defaults, overridable per test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from casebridge.workflows.cases import Case
from casebridge.workflows.intake import IntakeRow

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
# (request type, legal basis) pairs of the lawful-access workflow that the benchmarks and the batch-path
# tests cycle through: each gets a legal or follow-up clock beside legal review and MLA
LAWFUL_KINDS = [
    ("subscriber", "voluntary"),
    ("emergency", "eu-epo"),
    ("preservation", "us-2703f"),
    ("content", "mlat"),
    ("subscriber", "eu-epo"),
]


def make_case(reference: str = "FIA-CCW-2026-0001", **overrides: Any) -> Case:
    fields: dict[str, Any] = {
        "reference": reference,
        "title": "Subscriber info for extortion account",
        "provider": "Meta Platforms",
        "provider_legal_entity": "Meta Platforms Ireland Ltd",
        "provider_country": "IE",
        "request_type": "subscriber",
        "legal_basis": "voluntary",
        "court_order_ref": "CO-2026-77",
        "requesting_agency": "FIA Cyber Crime Wing",
        "officer": "Insp. A. Khan",
        "officer_email": "a.khan@example.gov.pk",
        "timezone": "Asia/Karachi",
        "offence": "Extortion via social media",
        "statute": "PECA 2016 s.21",
        "facts": "Victim received threats from the account.",
        "identifiers": [{"type": "username", "value": "threat.account.77"}],
        "submitted_at": T0,
        "article3_checked_by": "Insp. A. Khan",
        "article3_checked_at": T0,
    }
    fields.update(overrides)
    return Case.model_validate(fields)


def intake_rows(*refs: str, state: str = "submitted") -> list[IntakeRow]:
    """Rows of a cases.csv (data from line 2), one case per reference, submitted at T0."""
    return [
        IntakeRow(where=f"cases.csv:{i + 2}", case=make_case(ref, submitted_at=T0), state=state, state_since=None)
        for i, ref in enumerate(refs)
    ]

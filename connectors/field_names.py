"""The custom fields casebridge keeps on a tracker's issues, by the names a deployment gives them.

Every tracker connector needs the same core set (the case reference and data, the escalation level and
key, and three SLA fields per clock), with the same defaults so the set-up docs hold for each tracker;
a connector extends the model with the fields only it writes.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from casebridge.workflows.cases import Case

log = logging.getLogger(__name__)


class TrackerFieldNames(BaseModel):
    """Names of the custom fields. ``{clock}`` is replaced by each clock's label."""

    model_config = ConfigDict(extra="forbid")

    reference: str = "Case reference"
    case_data: str = "Case data"
    escalation_level: str = "Escalation level"
    escalation_key: str = "Escalation key"
    # the provider directory's canonical name of the case's provider (issue 15), for filters and reports
    provider: str = "Provider"
    # why the provider refused: one of the workflow's refusal_reasons, set by the person who moves the
    # case to Refused (a list field where the tracker has one); read back into Case.refusal_reason
    refusal_reason: str = "Refusal reason"
    sla_due: str = "SLA {clock} due"
    sla_warn: str = "SLA {clock} warn"
    sla_state: str = "SLA {clock} state"

    @field_validator("sla_due", "sla_warn", "sla_state")
    @classmethod
    def _has_clock(cls, value: str) -> str:
        # without it every clock would write to the same field
        if "{clock}" not in value:
            raise ValueError("must contain {clock} (replaced by each clock's label)")
        return value


def with_refusal_reason(case: Case, value: Any, known: tuple[str, ...], where: str) -> Case:
    """The case with the reason the tracker's field holds (people set it when they move a case to
    Refused); an empty field keeps the case's own, a value the workflow does not know is logged and kept."""
    if not value or value == case.refusal_reason:
        return case
    reason = str(value).strip()
    if reason not in known:
        log.warning("%s: refusal reason %r is not one of the workflow's reasons; counted as it is", where, reason)
    try:
        return Case.model_validate({**case.model_dump(), "refusal_reason": reason})
    except ValidationError:
        log.warning("%s: refusal reason %r is not a reason name (a-z, 0-9, -); ignored", where, reason)
        return case

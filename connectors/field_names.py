"""The custom fields casebridge keeps on a tracker's issues, by the names a deployment gives them.

Every tracker connector needs the same core set (the case reference and data, the escalation level and
key, and three SLA fields per clock), with the same defaults so the set-up docs hold for each tracker;
a connector extends the model with the fields only it writes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


class TrackerFieldNames(BaseModel):
    """Names of the custom fields. ``{clock}`` is replaced by each clock's label."""

    model_config = ConfigDict(extra="forbid")

    reference: str = "Case reference"
    case_data: str = "Case data"
    escalation_level: str = "Escalation level"
    escalation_key: str = "Escalation key"
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

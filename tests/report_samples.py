"""Sample cases for `casebridge report`, with their status histories, loadable into any tracker that
back-dates (the embedded one). tests/test_report_golden.py computes every figure of their report by hand.

All times are UTC; 04:00Z is 09:00 in Asia/Karachi (UTC+5, no DST), the start of the agency's working day
(09:00-17:00, Mon-Fri, Pakistani holidays; none falls in 9 Feb - 10 Mar 2026). 9 Feb, 16 Feb, 23 Feb,
2 Mar and 9 Mar 2026 are Mondays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from casebridge.connectors import Connector
from casebridge.workflows.cases import Case

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
NOW_ISO = "2026-03-31T12:00:00Z"


def at(month: int, day: int, hour: int = 4) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sample:
    reference: str
    provider: str
    request_type: str
    legal_basis: str
    agency: str
    submitted: datetime | None
    moves: tuple[tuple[datetime, str], ...] = ()  # (when, state) after creation
    reason: str | None = None
    first_state: str = "submitted"


SAMPLES = (
    Sample("RPT-M1", "Meta", "subscriber", "eu-epo", "FIA CCW", at(2, 9),
           ((at(2, 10), "acknowledged"), (at(2, 16), "fulfilled"))),
    Sample("RPT-M2", "Meta", "subscriber", "eu-epo", "FIA CCW", at(2, 9), ((at(2, 23), "fulfilled"),)),
    Sample("RPT-M3", "Meta", "traffic", "eu-epo", "FIA CCW", at(3, 2),
           ((at(3, 4), "refused"), (at(3, 5), "redirected_mla")), reason="us-legal-process-required"),
    Sample("RPT-M4", "Meta", "subscriber", "eu-epo", "FIA CCW", at(3, 2)),
    Sample("RPT-G1", "Google", "subscriber", "voluntary", "FIA CCW", at(2, 9),
           ((at(2, 9, 10), "acknowledged"), (at(2, 16), "partial"))),
    Sample("RPT-G2", "Google", "subscriber", "voluntary", "FIA CCW", at(3, 2), ((at(3, 9), "refused"),),
           reason="no-data"),
    Sample("RPT-G3", "Google", "subscriber", "voluntary", "FIA CCW", at(3, 9), ((at(3, 10), "refused"),),
           reason="us-legal-process-required"),
    Sample("RPT-T1", "Telegram", "subscriber", "budapest-2ap-7", "FIA Lahore", at(2, 9), ((at(3, 12), "escalated"),)),
    Sample("RPT-T2", "Telegram", "emergency", "eu-epo", "FIA Lahore", at(3, 2), ((at(3, 2, 8), "fulfilled"),)),
    Sample("RPT-D1", "Meta", "subscriber", "voluntary", "FIA CCW", None, first_state="draft"),
)  # fmt: skip


CONFIG = """\
state = "casebridge-state.db"

[tracker]
connector = "local"
path = "casebridge.db"
"""


def write_config(folder: Path) -> Path:
    """A casebridge.toml in ``folder`` whose embedded tracker is ``folder/casebridge.db``."""
    path = folder / "casebridge.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return folder / "casebridge.db"


def sample_case(s: Sample, **free_text: Any) -> Case:
    fields: dict[str, Any] = {
        "reference": s.reference,
        "title": f"Request {s.reference} to {s.provider}",
        "provider": s.provider,
        "request_type": s.request_type,
        "legal_basis": s.legal_basis,
        "requesting_agency": s.agency,
        "officer": "Insp. A. Khan",
        "timezone": "Asia/Karachi",
        "submitted_at": s.submitted,
        "facts": "Threats sent from the account.",
    }
    fields.update(free_text)
    return Case.model_validate(fields)


def load_samples(
    tracker: Connector,
    samples: tuple[Sample, ...] = SAMPLES,
    *,
    created_at: Mapping[str, datetime] | None = None,
    **free_text: Any,
) -> None:
    """Create every sample (back-dated, to ``created_at[reference]`` when given, else to its sending) and
    replay its moves; refused ones carry their reason."""
    for s in samples:
        case = sample_case(s, **free_text)
        created = (created_at or {}).get(s.reference) or s.submitted or at(2, 1)
        tracked = tracker.create_case(case, state=s.first_state, at=created)
        for when, state in s.moves:
            if state == "refused" and s.reason:
                tracker.update_case(tracked.key, case.model_copy(update={"refusal_reason": s.reason}))
            tracker.transition(tracked.key, state, at=when)


def sample_events(samples: tuple[Sample, ...] = SAMPLES) -> list[tuple[datetime, Sample, str | None]]:
    """Every creation (state None) and move of ``samples``, in time order (creations first on a tie)."""
    events: list[tuple[datetime, int, int, Sample, str | None]] = []
    for n, s in enumerate(samples):
        events.append((s.submitted or at(2, 1), 0, n, s, None))
        events += [(when, 1, n, s, state) for when, state in s.moves]
    return [(when, s, state) for when, _, _, s, state in sorted(events, key=lambda e: e[:3])]


def replay_samples(
    tracker: Connector,
    set_clock: Callable[[datetime], None],
    samples: tuple[Sample, ...] = SAMPLES,
    *,
    set_reason: Callable[[str, str], None] | None = None,
) -> None:
    """As ``load_samples``, for a tracker that stamps its own time: every creation and move in time order,
    each after ``set_clock(moment)`` moved that tracker's clock (the fake Jira's) to its moment.
    ``set_reason(key, reason)`` sets a refusal reason the way a person does (the tracker's field); by
    default it is written into the case."""
    keys: dict[str, str] = {}
    for when, s, state in sample_events(samples):
        set_clock(when)
        case = sample_case(s)
        if state is None:
            keys[s.reference] = tracker.create_case(case, state=s.first_state, at=when).key
            continue
        if state == "refused" and s.reason and set_reason is not None:
            set_reason(keys[s.reference], s.reason)
        elif state == "refused" and s.reason:
            tracker.update_case(keys[s.reference], case.model_copy(update={"refusal_reason": s.reason}))
        tracker.transition(keys[s.reference], state, at=when)

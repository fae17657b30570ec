"""The TOML shape of a workflow file, as pydantic models (unknown keys are errors), and durations."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from casebridge.workflows.cases import LegalBasis, RequestType, known_timezone
from casebridge.workflows.model import WILDCARD

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NAME = r"^[a-z][a-z0-9_]*$"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "w": 7 * 86400}


MAX_DURATION = 50 * 366 * 86400.0


def parse_duration(text: str, *, day_seconds: float = 86400) -> float:
    """``"1d12h"`` -> seconds. ``day_seconds`` is the length of a "d" (a working day on business
    calendars). Raises ValueError with the accepted form."""
    cleaned = text.strip().lower()
    pos, total = 0, 0.0
    for match in _DURATION.finditer(cleaned):
        if cleaned[pos : match.start()].strip():
            break
        value, unit = float(match.group(1)), match.group(2)
        total += value * (day_seconds if unit == "d" else 7 * day_seconds if unit == "w" else _UNIT_SECONDS[unit])
        pos = match.end()
    if not cleaned or pos != len(cleaned) or cleaned[pos:].strip():
        raise ValueError(f'bad duration {text!r}: use a number and a unit s, m, h, d or w, like "8h" or "10d"')
    if total > MAX_DURATION:
        # beyond this no date arithmetic ends before year 9999 (and no deadline is meant)
        raise ValueError(f"duration {text!r} is longer than 50 years; no legal or operational period is")
    return total


def _duration(value: str) -> str:
    parse_duration(value)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Duration = Annotated[str, Field(min_length=1)]


REASON = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class WorkflowHeader(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    initial: str
    escalated_state: str | None = None
    description: str = ""
    # why providers refuse; default: DEFAULT_REFUSAL_REASONS (an agency extends the list in its copy)
    refusal_reasons: list[Annotated[str, Field(pattern=REASON)]] | None = Field(default=None, min_length=1)


class ReportSpec(_Strict):
    """``[report]``: the states that mark each milestone (unset: the lawful-access defaults that exist)."""

    sent: list[str] | None = None
    first_response: list[str] | None = None
    fulfilled: list[str] | None = None
    partial: list[str] | None = None
    refused: list[str] | None = None
    redirected: list[str] | None = None
    calendar: str | None = None  # working days are counted on it (default: the first business calendar)


class StateSpec(_Strict):
    label: str = ""
    terminal: bool = False
    description: str = ""
    status: dict[str, str] = Field(default_factory=dict)  # connector name -> tracker status name


class TransitionSpec(_Strict):
    from_: list[str] = Field(alias="from", min_length=1)
    to: str
    name: str = ""


class CalendarSpec(_Strict):
    kind: Literal["24x7", "business"] = "business"
    timezone: str = "UTC"
    working_days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = ["mon", "tue", "wed", "thu", "fri"]
    hours: tuple[time, time] = (time(9), time(17))
    holidays: str | None = None
    subdivision: str | None = None
    closed: list[date] = Field(default_factory=list)
    open: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return known_timezone(value)

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, value: object) -> object:
        if isinstance(value, str):
            match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", value.strip())
            if not match:
                raise ValueError(f'bad hours {value!r}: use "HH:MM-HH:MM" like "09:00-17:00"')
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if not (h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60):
                raise ValueError(f"bad hours {value!r}: not a time of day")
            end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
            if (h2, m2) <= (h1, m1):
                raise ValueError(f"bad hours {value!r}: the day must end after it starts")
            return (time(h1, m1), end)
        return value

    @field_validator("working_days")
    @classmethod
    def _some_days(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a business calendar needs at least one working day")
        return value


class ClockSpec(_Strict):
    kind: Literal["legal", "operational"]
    calendar: str = "24x7"
    start_on: list[str] = Field(default_factory=list)
    stop_on: list[str] = Field(default_factory=list)
    met_on: list[str] = Field(default_factory=list)
    pause_in: list[str] = Field(default_factory=list)
    start_field: Literal["submitted_at", "acknowledged_at", "order_date"] | None = None
    label: str = ""
    description: str = ""


class LevelSpec(_Strict):
    level: int = Field(ge=1, le=9)
    after: Annotated[str, Field(min_length=1)] = "0h"
    name: str
    action: str = ""

    _after = field_validator("after")(classmethod(lambda cls, v: _duration(v)))


class EscalationSpec(_Strict):
    levels: list[LevelSpec] = Field(min_length=1)
    repeat_after: str | None = None
    max_repeats: int = Field(default=0, ge=0, le=50)

    _repeat = field_validator("repeat_after")(classmethod(lambda cls, v: v if v is None else _duration(v)))

    @field_validator("levels")
    @classmethod
    def _ordered(cls, levels: list[LevelSpec]) -> list[LevelSpec]:
        numbers = [lv.level for lv in levels]
        if numbers != sorted(set(numbers)):
            raise ValueError("levels must be numbered in increasing order without repeats")
        return levels


class ExtensionSpec(_Strict):
    """``extension = { by = "90d", max = 1, source = "18 U.S.C. 2703(f)(2)" }``"""

    by: Duration
    max: int = Field(default=1, ge=1, le=10)
    source: str = Field(min_length=1)

    _by = field_validator("by")(classmethod(lambda cls, v: _duration(v)))


class RemindSpec(_Strict):
    """``remind = { before = ["14d", "3d", "1d"], notify = ["assignee", "watchers"] }``"""

    before: list[Duration] = Field(min_length=1, max_length=10)
    notify: list[Literal["assignee", "watchers", "officer"]] = Field(default_factory=lambda: ["assignee"])

    _before = field_validator("before")(classmethod(lambda cls, v: [_duration(x) for x in v]))


class EndsOnSpec(_Strict):
    """``ends_on = { field = "mla_received_at", source = "ETS 185 Art. 29(7)" }``"""

    field: Literal["mla_received_at"]
    source: str = Field(min_length=1)


class TargetSpec(_Strict):
    clock: str
    target: Duration
    warn: str | None = None
    # a table (by, max, source); the older form, a duration with max_extensions beside it, still reads
    extension: ExtensionSpec | str | None = None
    max_extensions: int = Field(default=0, ge=0, le=10)
    remind: RemindSpec | None = None
    ends_on: EndsOnSpec | None = None
    escalate: EscalationSpec | None = None
    on_lapse: str = ""
    source: str = ""

    _durations = field_validator("target", "warn")(classmethod(lambda cls, v: v if v is None else _duration(v)))

    @field_validator("extension")
    @classmethod
    def _extension(cls, value: ExtensionSpec | str | None) -> ExtensionSpec | str | None:
        return _duration(value) if isinstance(value, str) else value


def _known(values: list[str], allowed: set[str], what: str) -> list[str]:
    for value in values:
        if value != WILDCARD and value not in allowed:
            raise ValueError(f'unknown {what} {value!r} (known: {", ".join(sorted(allowed))}, or "*")')
    return values


class CountingCalendarSpec(_Strict):
    """``counting_calendar = { country = "IE", timezone = "Europe/Dublin" }``: the place whose days and
    public holidays a law-counted period uses, instead of the provider's EU establishment."""

    country: str = Field(pattern=r"^[A-Z]{2}$")
    timezone: str | None = None  # default: the country's (capital's) zone
    subdivision: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return value if value is None else known_timezone(value)


class PolicySpec(_Strict):
    name: str = Field(min_length=1)
    request_types: list[str] = Field(min_length=1)
    legal_bases: list[str] = Field(min_length=1)
    source: str = Field(min_length=1)
    description: str = ""
    # how its periods are counted: "elapsed" or "eu-1182-71" (checked by the loader, with a suggestion)
    counting: str = "elapsed"
    counting_source: str = ""  # default: the rule's own citation
    counting_calendar: CountingCalendarSpec | None = None
    targets: list[TargetSpec] = Field(min_length=1)

    @field_validator("request_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        return _known(value, {t.value for t in RequestType}, "request type")

    @field_validator("legal_bases")
    @classmethod
    def _bases(cls, value: list[str]) -> list[str]:
        return _known(value, {b.value for b in LegalBasis}, "legal basis")


StateName = Annotated[str, Field(pattern=NAME)]


class WorkflowFile(_Strict):
    workflow: WorkflowHeader
    calendars: dict[StateName, CalendarSpec] = Field(default_factory=dict)
    states: dict[StateName, StateSpec] = Field(min_length=1)
    transitions: list[TransitionSpec] = Field(default_factory=list)
    clocks: dict[StateName, ClockSpec] = Field(default_factory=dict)
    policies: list[PolicySpec] = Field(default_factory=list)
    report: ReportSpec = Field(default_factory=ReportSpec)


_UNION_MEMBER = re.compile(r"[A-Z][A-Za-z]*Spec")  # names in the file are lower case


def describe_error(exc: ValidationError) -> str:
    """The first pydantic error as ``path.to.key <- problem``."""
    first = exc.errors()[0]
    parts: list[str] = []
    for item in first["loc"]:
        if isinstance(item, str) and (_UNION_MEMBER.fullmatch(item) or (item == "str" and parts[-1:] == ["extension"])):
            continue  # the member of a union (extension: a table or a duration) is no key of the file
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    key = ".".join(parts) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see workflows/lawful-access.toml for the keys)"
    elif first["type"] == "missing":
        message = "required key is missing"
    return f"{key} <- {message}"

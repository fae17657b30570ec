"""The canonical data-request case (fields and enums from shared/domain/README.md).

A ``Case`` holds case metadata only, never the data a provider disclosed. The ``reference`` is the
idempotency key: intake, connectors and escalation all find a case by it.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

# ISO 8601 date-time with an offset; pydantic alone would also take 1733000000 (or "1733000000", or true)
# as a Unix time, which silently turns a spreadsheet's number into a 1970 or 2024 deadline
_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CONTROL = re.compile("[\x00-\x1f\x7f]")  # C0 control characters and DEL


def strict_moment(value: Any) -> Any:
    if type(value) is str and _MOMENT.fullmatch(value):  # as stored: no surrounding blanks (100,000 per status)
        return value
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _MOMENT.match(value.strip()):
        return value.strip()
    if isinstance(value, str) and _DATE.match(value.strip()):
        raise ValueError(f"{value!r} has no time and offset; write e.g. {value.strip()}T09:00:00+05:00")
    if isinstance(value, str) and _MOMENT.match(value.strip() + "Z"):
        raise ValueError(f"{value!r} has no offset; timestamps need Z or an offset like +05:00")
    raise ValueError(
        f"{value!r} is not an ISO 8601 timestamp with an offset (e.g. 2026-11-02T09:00:00Z); "
        "numbers and booleans are not accepted"
    )


def _strict_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value.strip()):
        return value.strip()
    raise ValueError(f"{value!r} is not an ISO 8601 date (e.g. 2026-11-02); numbers are not accepted")


Moment = Annotated[AwareDatetime, BeforeValidator(strict_moment)]
Day = Annotated[date, BeforeValidator(_strict_date)]


@lru_cache(maxsize=1024)  # 100,000 stored cases share a few zones; a refusal (ValueError) is not cached
def known_timezone(value: str) -> str:
    """``value`` when it names an IANA time zone; else ValueError (a pydantic validator's message)."""
    shown = value if len(value) <= 60 else value[:57] + "..."
    try:
        if len(value) > 255:  # longer than any file name: zoneinfo would fail with an OS error
            raise ValueError(value)
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown IANA time zone {shown!r} (for example Asia/Karachi)") from None
    return value


class RequestType(StrEnum):
    SUBSCRIBER = "subscriber"
    TRAFFIC = "traffic"
    CONTENT = "content"
    PRESERVATION = "preservation"
    EMERGENCY = "emergency"
    DOMAIN_REGISTRATION = "domain_registration"


class LegalBasis(StrEnum):
    VOLUNTARY = "voluntary"
    US_2702_EMERGENCY = "us-2702-emergency"
    US_2703F = "us-2703f"
    BUDAPEST_29 = "budapest-29"
    BUDAPEST_2AP_7 = "budapest-2ap-7"
    EU_EPO = "eu-epo"
    EU_EPO_PR = "eu-epo-pr"
    MLAT = "mlat"
    LETTERS_ROGATORY = "letters-rogatory"
    NIS2 = "nis2"


class Outcome(StrEnum):
    FULL = "full"
    PARTIAL = "partial"
    NO_DATA = "no_data"
    REFUSED = "refused"
    REDIRECTED_MLA = "redirected_mla"


class IdentifierType(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    USERNAME = "username"
    URL = "url"
    IP = "ip"
    DOMAIN = "domain"
    ACCOUNT_ID = "account_id"
    IMEI = "imei"
    WALLET = "wallet"


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    THREAT_TO_LIFE = "threat_to_life"


NonEmpty = Annotated[str, Field(min_length=1, max_length=2000)]
ShortText = Annotated[str, Field(min_length=1, max_length=255)]


class Identifier(BaseModel):
    """One typed account identifier with the time range asked for (both ends optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: IdentifierType
    value: ShortText
    range_from: Moment | None = Field(default=None, alias="from")
    range_to: Moment | None = Field(default=None, alias="to")


class Extension(BaseModel):
    """One extension of a clock, recorded with ``casebridge extend`` (the renewed request was sent ``at``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clock: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    at: Moment
    note: NonEmpty | None = None


class Case(BaseModel):
    """A cross-border data request. Timestamps must carry an offset; naive ones are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    reference: Annotated[str, Field(min_length=1, max_length=100)]
    title: ShortText
    provider: ShortText
    provider_legal_entity: ShortText | None = None
    provider_country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    provider_ticket: ShortText | None = None
    request_type: RequestType
    legal_basis: LegalBasis
    court_order_ref: ShortText | None = None
    court: ShortText | None = None
    order_date: Day | None = None
    requesting_agency: ShortText | None = None
    officer: ShortText | None = None
    officer_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    timezone: str = "UTC"
    offence: NonEmpty | None = None
    statute: ShortText | None = None
    penalty: ShortText | None = None
    facts: NonEmpty | None = None
    identifiers: tuple[Identifier, ...] = ()
    submitted_at: Moment | None = None
    acknowledged_at: Moment | None = None
    responded_at: Moment | None = None
    outcome: Outcome | None = None
    refusal_text: NonEmpty | None = None
    # Why the provider refused (issue 13): one of the workflow's ``refusal_reasons`` (checked against the
    # workflow where a reason is set: intake, ``transition --reason``, the tracker's field).
    refusal_reason: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] | None = None
    preservation_expires_at: Moment | None = None
    # extensions granted before casebridge tracked the case (intake): count for every clock that has an
    # extension rule; ``extensions`` are the ones recorded since, per clock
    extensions_used: Annotated[int, Field(ge=0, le=10)] = 0
    extensions: Annotated[tuple[Extension, ...], Field(max_length=20)] = ()
    # when the requested Party received the mutual-assistance request that follows a preservation
    # (Budapest Art. 29(7): the data is then preserved until that request is decided)
    mla_received_at: Moment | None = None
    urgency: Urgency = Urgency.ROUTINE
    # Escalation (issue 6): INTERPOL Art. 3 self-check: who confirmed the matter is not political,
    # military, religious or racial, and when. An escalation without it is refused.
    article3_checked_by: ShortText | None = None
    article3_checked_at: Moment | None = None
    handling_restrictions: NonEmpty | None = None
    ncb_action: NonEmpty | None = None

    @field_validator("reference")
    @classmethod
    def _reference_printable(cls, value: str) -> str:
        if not value.isprintable() and _CONTROL.search(value):  # control characters are not printable
            raise ValueError("must not contain control characters")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)

    def extensions_for(self, clock: str) -> int:
        """Extensions counted for ``clock``: granted before intake plus recorded for this clock."""
        return self.extensions_used + sum(1 for e in self.extensions if e.clock == clock)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict (ISO 8601 timestamps), the shape intake JSON accepts back."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class StatusChange:
    """The case entered ``state`` (a workflow state name) at ``at`` (aware). The first one is creation."""

    at: datetime
    state: str


@dataclass(frozen=True)
class ClockFields:
    """What the tracker holds for one clock: written by sync only when it changes."""

    due_at: datetime | None
    warn_at: datetime | None
    state: str


@dataclass(frozen=True)
class SlaFields:
    """The SLA fields sync writes back: per clock name its fields, and the case's escalation level."""

    clocks: dict[str, ClockFields] = field(default_factory=dict)
    escalation_level: int = 0


@dataclass
class TrackedCase:
    """A case as a tracker holds it.

    ``key`` is the tracker's own id (Redmine issue id, Jira key, local row id) as a string.
    ``state`` is the workflow state name (connectors map tracker statuses to workflow states).
    ``history`` is None when the connector did not fetch it (list calls); ``read_history`` fills it.
    """

    key: str
    case: Case
    state: str
    updated_at: datetime
    sla: SlaFields = field(default_factory=SlaFields)
    history: list[StatusChange] | None = None
    url: str | None = None
    # the tracker's Provider field (the directory's canonical name) as read; None when the tracker has no
    # such field (the embedded tracker) or the case came from the state store's cache
    provider: str | None = None


@dataclass(frozen=True)
class Escalation:
    """One item to post to the liaison queue."""

    dedupe_key: str  # case x clock x level (x repeat), e.g. "FIA-CCW-2026-0142/legal_deadline/L1"
    case_reference: str
    case_key: str | None  # the case's key in the *case* tracker, for linking; may be another tracker
    case_url: str | None
    title: str
    markdown: str  # the dossier; each target renders it (Redmine, Jira wiki/ADF, HTML mail)
    level: int
    clock: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PostedEscalation:
    dedupe_key: str
    key: str  # the posted item's id in the target (issue key, Message-ID, ...)
    url: str | None
    posted_at: datetime
    # sent again because an earlier send was never confirmed (mail): the receiver may see it twice,
    # with the same Message-ID, and can discard one
    resent: bool = False

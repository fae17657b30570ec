"""The TOML shape of a provider directory file, as pydantic models (unknown keys are errors).

One file holds one provider group. Every fact (a legal entity, a request channel, the emergency
channel, whether foreign orders are taken directly, the preservation period) carries the ``source``
URL it was read from and the date it was ``checked``: a fact without both is an error, so nothing in
the directory is unsourced.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from casebridge.workflows.schema import parse_duration

ROLES = ("us_parent", "parent", "eu_establishment", "eu_legal_representative", "regional")
CHANNEL_KINDS = ("portal", "email", "postal", "form", "phone")
Text = Annotated[str, Field(min_length=1, max_length=500)]


ChannelUse = Literal["requests", "preservation", "emergency", "abuse"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Sourced(_Strict):
    source: Text
    checked: date
    note: str = ""

    @field_validator("source")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"source {value!r} is not a URL (http:// or https://): cite the page the fact is from")
        return value


class EntitySpec(Sourced):
    name: Text
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    role: Literal["us_parent", "parent", "eu_establishment", "eu_legal_representative", "regional"]
    serves: str = ""  # whom this entity serves, in words ("users in the EEA and Switzerland")


class ChannelSpec(Sourced):
    kind: Literal["portal", "email", "postal", "form", "phone"]
    address: Text
    for_: list[ChannelUse] = Field(default_factory=lambda: list[ChannelUse](["requests"]), alias="for", min_length=1)


class ForeignOrdersSpec(Sourced):
    accepted: bool


class PreservationSpec(Sourced):
    period: Text
    extension: str | None = None

    @field_validator("period", "extension")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class ProviderFile(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    aliases: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(default_factory=list)
    entities: list[EntitySpec] = Field(default_factory=list)
    channels: list[ChannelSpec] = Field(default_factory=list)
    foreign_orders: ForeignOrdersSpec | None = None
    preservation: PreservationSpec | None = None

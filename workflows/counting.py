"""Which rule counts a clock's period, on whose calendar, and how a due instant states it.

A policy says how the law counts its periods (``counting`` in the workflow TOML): ``elapsed`` (the
period as that many seconds: 18 U.S.C. 2703(f), operational targets) or ``eu-1182-71`` (Reg. (EEC,
Euratom) No 1182/71 Art. 3, ``workflows.legal_periods``). A law-counted period is counted on the calendar
of the place where the act is to be done (Art. 2(1)): for an EU order, the Member State of the provider's
designated establishment or legal representative (Directive (EU) 2023/1544), its time zone and public
holidays. Where that place comes from, first to last:

1. the policy's ``counting_calendar`` (a country and optionally a zone);
2. the provider directory (``Establishments``: data the application attaches to the workflow), the EU
   establishment or legal representative of the case's provider;
3. else the stated default, ``DEFAULT_PLACE`` (UTC; Saturdays and Sundays roll forward; no public
   holidays), and the clock says so (``DueStatement.known`` is False; ``status`` and the dossier show it).

The clock engine calls ``law_target`` once a clock has started: the law's due instant becomes the clock's
target (legal clocks never pause and run on 24x7, so a target in seconds from the start is exact), which
keeps states, overdue time, escalation levels and reminders consistent with the due instant. Warnings
stay on elapsed time (they warn early). Extensions are counted by the same rule from the current due.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Union
from zoneinfo import ZoneInfo

from casebridge.workflows import legal_periods
from casebridge.workflows.legal_periods import CITATION, ELAPSED, RULES, Place
from casebridge.workflows.model import ClockTarget, Workflow

if TYPE_CHECKING:
    from casebridge.workflows.cases import Case
    from casebridge.workflows.directory import Directory

# a provider directory, or a zero-argument callable returning one (read on first use)
DirectorySource = Union["Directory", Callable[[], "Directory"]]

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PLACE",
    "DueStatement",
    "Establishments",
    "StatementBasis",
    "attach_establishments",
    "check_rule",
    "law_target",
    "statement",
    "statement_basis",
]

# The Member States' zones (the capital's where a state has more than one: PT Lisbon, ES Madrid).
EU_ZONES = {
    "AT": "Europe/Vienna", "BE": "Europe/Brussels", "BG": "Europe/Sofia", "CY": "Asia/Nicosia",
    "CZ": "Europe/Prague", "DE": "Europe/Berlin", "DK": "Europe/Copenhagen", "EE": "Europe/Tallinn",
    "ES": "Europe/Madrid", "FI": "Europe/Helsinki", "FR": "Europe/Paris", "GR": "Europe/Athens",
    "HR": "Europe/Zagreb", "HU": "Europe/Budapest", "IE": "Europe/Dublin", "IT": "Europe/Rome",
    "LT": "Europe/Vilnius", "LU": "Europe/Luxembourg", "LV": "Europe/Riga", "MT": "Europe/Malta",
    "NL": "Europe/Amsterdam", "PL": "Europe/Warsaw", "PT": "Europe/Lisbon", "RO": "Europe/Bucharest",
    "SE": "Europe/Stockholm", "SI": "Europe/Ljubljana", "SK": "Europe/Bratislava",
}  # fmt: skip
EU_ROLES = ("eu_establishment", "eu_legal_representative")

DEFAULT_PLACE = Place(zone="UTC", is_holiday=lambda _day: False, name="")
DEFAULT_NOTE = "EU establishment not known: default calendar UTC, weekends only"


class CountingProblem(ValueError):
    """A policy's counting cannot be used: ``key`` names the TOML key (the loader adds the file)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key} <- {message}")
        self.key, self.message = key, message


def check_rule(key: str, rule: str) -> None:
    """Raise CountingProblem for an unknown rule, with the nearest known one."""
    if rule in RULES:
        return
    near = difflib.get_close_matches(rule, RULES, n=1, cutoff=0.4)
    hint = f"did you mean {near[0]!r}? " if near else ""
    raise CountingProblem(key, f"unknown counting rule {rule!r} ({hint}known: {', '.join(RULES)})")


def check_period(key: str, text: str, rule: str) -> None:
    """A law-counted period is a whole number of one unit (hours, days or weeks): "8h", "10d", "2w"."""
    if rule == ELAPSED:
        return
    try:
        legal_periods.parse_period(text)
    except ValueError as exc:
        raise CountingProblem(key, f"{exc} (counting {rule} counts whole hours, days or weeks)") from None


def zone_of(country: str) -> str | None:
    return EU_ZONES.get(country.upper())


@lru_cache(maxsize=64)
def place_of(country: str, zone: str, subdivision: str | None = None) -> Place:
    """The place of ``country`` in ``zone`` (its public holidays from the ``holidays`` package), cached."""
    return legal_periods.place_of(country, zone, subdivision)


class Establishments:
    """Provider name -> the Member State of its EU establishment or legal representative, read from a
    provider directory given as data (or a zero-argument callable returning one, called on first use)."""

    def __init__(self, directory: DirectorySource) -> None:
        self._source = directory
        self._directory: Directory | None = None if callable(directory) else directory
        self._found: dict[tuple[str, str], tuple[str, str] | None] = {}

    def find(self, provider: str | None, legal_basis: str) -> tuple[str, str] | None:
        """(country, entity name) of the provider's EU addressee, or None when the directory has none."""
        if not provider:
            return None
        key = (provider, legal_basis)
        if key in self._found:
            return self._found[key]
        if self._directory is None:
            self._directory = self._source() if callable(self._source) else self._source
        entry = self._directory.resolve(provider)
        entity = None if entry is None else entry.addressee(legal_basis)
        found = None
        if entity is not None and entity.role in EU_ROLES and entity.country and zone_of(entity.country):
            found = (entity.country.upper(), entity.name)
        self._found[key] = found
        return found


def attach_establishments(workflow: Workflow, directory: DirectorySource) -> Workflow:
    """Give ``workflow`` the provider directory's establishments (a directory or a callable returning one);
    returns the workflow. Done once, right after loading, before any clock is evaluated."""
    workflow.establishments = Establishments(directory)
    return workflow


@dataclass(frozen=True)
class Counted:
    """The place a case's law-counted period is counted on, and where that came from."""

    place: Place
    country: str | None
    known: bool
    basis: str  # "policy" | "provider directory" | "default"
    establishment: str | None = None


def counted_place(
    target: ClockTarget, provider: str | None, legal_basis: str, establishments: Establishments | None
) -> Counted:
    if target.counting_country:
        country = target.counting_country
        zone = target.counting_zone or zone_of(country) or "UTC"
        return Counted(place_of(country, zone, target.counting_subdivision), country, True, "policy")
    found = None if establishments is None else establishments.find(provider, legal_basis)
    if found is not None:
        country, entity = found
        return Counted(place_of(country, EU_ZONES[country]), country, True, "provider directory", entity)
    return Counted(DEFAULT_PLACE, None, False, "default")


_BUCKET = 900  # every zone's UTC offset is a multiple of 15 minutes: the law's due is the same in a bucket


@lru_cache(maxsize=65536)
def _law_due(rule: str, bucket: int, period: str, extensions: int, by: str, place: Place) -> datetime:
    # Art. 3(1) counts from the next hour or the next day, so only the event's local hour (or day)
    # matters: events in the same 15-minute bucket share one due instant (and one cache entry)
    due = legal_periods.due(rule, datetime.fromtimestamp(bucket * _BUCKET, UTC), period, place)
    for _ in range(extensions):
        # counted from the current due: the day of the "event" is the period's last day (its 24:00 is
        # the next day's 00:00), so the extension's first day is the day after it
        due = legal_periods.due(rule, due - timedelta(microseconds=1), by, place)
    return due


def law_due(target: ClockTarget, started_at: datetime, case: Case, establishments: Establishments | None) -> datetime:
    """The instant the law's period ends for ``case``'s clock started at ``started_at``."""
    counted = counted_place(target, case.provider, str(case.legal_basis), establishments)
    used = min(case.extensions_for(target.clock), target.max_extensions) if target.max_extensions else 0
    bucket = int(started_at.timestamp() // _BUCKET)
    return _law_due(target.counting, bucket, target.period, used, target.extension_label, counted.place)


def law_target(
    target: ClockTarget, started_at: datetime | None, case: Case, establishments: Establishments | None
) -> ClockTarget | None:
    """The target (seconds from ``started_at``) that ends exactly at the law's due instant, with its
    extensions folded in; None when the period is elapsed time or the clock has not started."""
    if target.counting == ELAPSED or started_at is None or not target.period:
        return None
    seconds = (law_due(target, started_at, case, establishments) - started_at).total_seconds()
    used = min(case.extensions_for(target.clock), target.max_extensions) if target.max_extensions else 0
    key = (id(target), seconds, used)
    found = _LAW_TARGETS.get(key)
    if found is not None and found[0] is target:
        return found[1]
    warn = min(target.warn + used * target.extension, seconds)  # the warning stays on elapsed time
    law = replace(target, target=seconds, warn=warn, extension=0.0, max_extensions=0)
    if len(_LAW_TARGETS) >= 65536:
        _LAW_TARGETS.clear()
    _LAW_TARGETS[key] = (target, law)
    return law


# (id(policy target), seconds, extensions) -> (that target, the law's target): targets live as long as
# their workflow; the stored target guards against a reused id
_LAW_TARGETS: dict[tuple[int, float, int], tuple[ClockTarget, ClockTarget]] = {}


@dataclass(frozen=True)
class DueStatement:
    """How a due instant is stated where people read it (status, status --json, dossier, sync)."""

    rule: str
    citation: str
    zone: str
    country: str | None
    known: bool  # False: counted on the stated default calendar, the establishment is not known
    basis: str
    establishment: str | None
    text: str  # "due 2027-05-04 24:00 Europe/Dublin, counted under Reg. (EEC, Euratom) No 1182/71 Art. 3"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "citation": self.citation,
            "zone": self.zone,
            "country": self.country,
            "calendar": self.basis,
            "calendar_known": self.known,
            "establishment": self.establishment,
            "text": self.text,
        }


def statement(result: Any, case: Any, establishments: Any) -> DueStatement:
    """The rule behind ``result.due_at`` (a ClockResult of ``case``), and the sentence that states it."""
    basis = statement_basis(result.target, case.provider, str(case.legal_basis), establishments)
    return DueStatement(
        basis.rule,
        basis.citation,
        basis.zone,
        basis.country,
        basis.known,
        basis.basis,
        basis.establishment,
        basis.text(result.due_at),
    )


@dataclass(frozen=True)
class StatementBasis:
    """All a ``DueStatement`` says but its sentence: the same for every clock of one policy target,
    provider and legal basis (``status --json`` states 300,000 due instants from a handful of these)."""

    rule: str
    citation: str
    zone: str
    country: str | None
    known: bool
    basis: str
    establishment: str | None

    def text(self, due: datetime | None) -> str:
        """The sentence stating ``due`` under this rule."""
        if self.rule == ELAPSED:
            return f"due {_minute(due)} UTC, counted as elapsed time" if due else "no due time"
        text = (
            "no due time"
            if due is None
            else f"due {local_due(due, self.zone)} {self.zone}, counted under {self.citation}"
        )
        return text if self.known else f"{text}; {DEFAULT_NOTE}"


def statement_basis(
    target: ClockTarget, provider: str | None, legal_basis: str, establishments: Establishments | None
) -> StatementBasis:
    """The rule, citation and counted place of ``target``'s due instants for a case of ``provider``."""
    rule = target.counting
    citation = target.counting_source or CITATION.get(rule, rule)
    if rule == ELAPSED:
        return StatementBasis(rule, citation, "UTC", None, True, "elapsed", None)
    counted = counted_place(target, provider, legal_basis, establishments)
    return StatementBasis(
        rule, citation, counted.place.zone, counted.country, counted.known, counted.basis, counted.establishment
    )


def local_due(due: datetime, zone: str) -> str:
    """``2027-05-04 24:00``: the expiry of a day's last hour is written as that day's 24:00."""
    local = due.astimezone(ZoneInfo(zone))
    if local.time() == time(0):
        return f"{(local - timedelta(days=1)).date().isoformat()} 24:00"
    return _minute(local)


def _minute(moment: datetime) -> str:
    """``moment.strftime("%Y-%m-%d %H:%M")`` (the year unpadded, as strftime writes it), without
    strftime's cost (about 10 µs a call: status --json states 300,000 due instants)."""
    m = moment
    return f"{m.year}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}"

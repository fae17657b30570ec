"""``status --json`` rows written straight to text: the same bytes as ``evaluation_json`` encoded by
``cli.jsonout`` (``json.dumps(indent=2, ensure_ascii=False)``), without a dict per case and per clock.

At 100,000 cases (300,000 clocks) building the dicts, stating every due instant and encoding them took
about two thirds of the command. Here a clock's counting statement is worked out once per policy target,
provider and legal basis (``StatementBasis``) and its encoded text kept; only the sentence naming the due
instant is written per clock. Values of a type the fast path does not know go through ``jsonout``'s
general encoder, so the text stays the library's. ``tests/test_status_json_rows.py`` checks both agree.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from casebridge.app.sync_plan import CaseEvaluation
from casebridge.cli.jsonout import encode_at
from casebridge.workflows.cases import TrackedCase
from casebridge.workflows.clocks import ClockResult
from casebridge.workflows.counting import StatementBasis, statement_basis
from casebridge.workflows.model import ClockTarget, Workflow
from casebridge.workflows.reminders import next_reminder

__all__ = [
    "CLOCKS_OPEN",
    "CLOCK_PAD",
    "CLOCK_SEP",
    "ROW_CLOSE",
    "ROW_PAD",
    "StatusRows",
    "case_zone",
    "local_iso",
    "scalar_text",
]

# indentation of a row's items (a row is an item of the top-level array), a clock's, a clock's dicts'
_ROW, _CLOCKS, _CLOCK = "\n    ", "\n      ", "\n        "
_BOUND = 4096  # entries each cache keeps before it starts again (memory stays flat whatever the data)
CLOCK_PAD = _CLOCK
ROW_PAD = _ROW
CLOCKS_OPEN, CLOCK_SEP, ROW_CLOSE, ROW_EMPTY = "[" + _CLOCKS, "," + _CLOCKS, _ROW + "]\n  }", "[]\n  }"
_MARK = "\x00"  # stands for the sentence while the rest of a counting dict is encoded once


def scalar_text(item: Any, pad: str) -> str:
    """One dict value as ``jsonout`` writes it at indentation ``pad``."""
    return _value(item, pad)


def _value(item: Any, pad: str) -> str:
    """One dict value as ``jsonout`` writes it at indentation ``pad`` (plain scalars inline)."""
    kind = type(item)
    if kind is str:
        return encode_basestring(item)
    if item is None:
        return "null"
    if kind is int:
        return int.__repr__(item)
    return encode_at(item, pad)


_ZONES: dict[str, zoneinfo.ZoneInfo] = {}


def case_zone(name: str) -> zoneinfo.ZoneInfo:
    """The case's zone (kept: a listing asks for the same few names 100,000 times)."""
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = zoneinfo.ZoneInfo(name)
    return zone


def local_iso(moment: datetime | None, zone: zoneinfo.ZoneInfo) -> str | None:
    """``moment`` in the case's zone to the second, as status prints it."""
    if moment is None:
        return None
    local = moment.astimezone(zone)
    return (local if local.microsecond == 0 else local.replace(microsecond=0)).isoformat()


def _iso(moment: datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    """``local_iso`` as JSON: isoformat text holds no character JSON escapes."""
    return "null" if moment is None else '"' + str(local_iso(moment, zone)) + '"'


class StatusRows:
    """Writes one ``status --json`` row per evaluated case; keeps what every clock of a policy target
    shares (targets live as long as the workflow; each cached one is held, so its id is not reused)."""

    def __init__(self, workflow: Workflow | None) -> None:
        self._establishments = None if workflow is None else workflow.establishments
        self._targets: dict[tuple[int, str | None, str], tuple[ClockTarget, StatementBasis, str, str, str]] = {}
        self._idle: dict[tuple[int, str, str, str, str | None, str], tuple[ClockTarget, str]] = {}
        self._middles: dict[tuple[object, ...], str] = {}

    def _target(
        self, target: ClockTarget, provider: str | None, legal_basis: str
    ) -> tuple[StatementBasis, str, str, str]:
        """(basis, the counting dict's text before its sentence, after it, the encoded source)."""
        key = (id(target), provider, legal_basis)
        found = self._targets.get(key)
        if found is not None and found[0] is target:
            return found[1:]
        basis = statement_basis(target, provider, legal_basis, self._establishments)
        counting = {
            "rule": basis.rule,
            "citation": basis.citation,
            "zone": basis.zone,
            "country": basis.country,
            "calendar": basis.basis,
            "calendar_known": basis.known,
            "establishment": basis.establishment,
            "text": _MARK,
        }
        head, _, tail = encode_at(counting, _CLOCK).rpartition(encode_basestring(_MARK))
        if len(self._targets) >= _BOUND:  # law-counted clocks may bring a target per due offset
            self._targets.clear()
        self._targets[key] = (target, basis, head, tail, _value(target.source, _CLOCK))
        return basis, head, tail, _value(target.source, _CLOCK)

    def clock(self, result: ClockResult, zone: zoneinfo.ZoneInfo, provider: str | None, legal_basis: str) -> str:
        """``clock_json(result, zone, case, workflow)`` encoded at a clock's indentation."""
        if (
            result.started_at is None
            and result.due_at is None
            and result.warn_at is None
            and result.remaining_seconds is None
        ):
            # a clock with no instant (not started; most MLA and review clocks): the same text for every
            # case of this target, provider and legal basis, whatever its zone
            key = (id(result.target), result.name, str(result.kind), str(result.state), provider, legal_basis)
            found = self._idle.get(key)
            if found is not None and found[0] is result.target:
                return found[1]
            text = self._clock(result, zone, provider, legal_basis)
            if len(self._idle) >= _BOUND:
                self._idle.clear()
            self._idle[key] = (result.target, text)
            return text
        return self._clock(result, zone, provider, legal_basis)

    def _clock(self, result: ClockResult, zone: zoneinfo.ZoneInfo, provider: str | None, legal_basis: str) -> str:
        basis, head, tail, source = self._target(result.target, provider, legal_basis)
        remaining = result.remaining_seconds
        upcoming = next_reminder(result)
        reminder = "null"
        if upcoming is not None:
            reminder = encode_at({"before": upcoming[0], "at": _iso_text(upcoming[1], zone)}, _CLOCK)
        remaining_text = "null" if remaining is None else _value(round(remaining), _CLOCK)
        return (  # one f-string: a single allocation (a chain of + copied the text twenty times)
            f'{{{_CLOCK}"name": {_value(result.name, _CLOCK)},{_CLOCK}"kind": {_value(str(result.kind), _CLOCK)}'
            f',{_CLOCK}"started_at": {_iso(result.started_at, zone)},{_CLOCK}"due_at": {_iso(result.due_at, zone)}'
            f',{_CLOCK}"counting": {head}{encode_basestring(basis.text(result.due_at))}{tail}'
            f',{_CLOCK}"warn_at": {_iso(result.warn_at, zone)},{_CLOCK}"state": {_value(str(result.state), _CLOCK)}'
            f',{_CLOCK}"remaining_seconds": {remaining_text},{_CLOCK}"source": {source}'
            f',{_CLOCK}"next_reminder": {reminder}{_CLOCKS}}}'
        )

    def target_texts(
        self, target: ClockTarget, provider: str | None, legal_basis: str
    ) -> tuple[StatementBasis, str, str, str]:
        """What every clock of ``target`` for this provider and legal basis shares: (basis, the counting
        dict's text before its sentence, after it, the encoded source)."""
        return self._target(target, provider, legal_basis)

    def row(self, ev: CaseEvaluation) -> str:
        """``evaluation_json(ev, workflow)`` encoded as an item of the top-level array."""
        case = ev.tracked.case
        zone = case_zone(case.timezone)
        provider, legal_basis = case.provider, str(case.legal_basis)
        return self.row_text(ev.tracked, [self.clock(c, zone, provider, legal_basis) for c in ev.clocks])

    def row_text(self, tracked: TrackedCase, clock_texts: list[str]) -> str:
        """A row around its clocks, each already encoded at a clock's indentation (``clock``)."""
        return "".join(self.row_pieces(tracked, clock_texts))

    def row_pieces(self, tracked: TrackedCase, clock_texts: list[str]) -> list[str]:
        """``row_text`` as pieces to join (a chunk's rows are joined once, not row by row)."""
        pieces = [*self.row_head(tracked), "[" + _CLOCKS]
        if not clock_texts:
            pieces[-1] = ROW_EMPTY
            return pieces
        for text in clock_texts:
            pieces += (text, CLOCK_SEP)
        pieces[-1] = ROW_CLOSE
        return pieces

    def row_head(self, tracked: TrackedCase) -> tuple[str, str]:
        """A row's text before its clocks: ``{`` and the reference; the other fields and ``"clocks": ``
        (``row_middle``)."""
        reference = tracked.case.reference
        encoded = encode_basestring(reference) if type(reference) is str else _value(reference, _ROW)
        return f'{{{_ROW}"reference": {encoded},', self.row_middle(tracked)

    def row_middle(self, tracked: TrackedCase) -> str:
        """The fields between a row's reference and its clocks: the same few for every case (state,
        request type, legal basis, provider, escalation level), each text built once."""
        case = tracked.case
        level, state = tracked.sla.escalation_level, tracked.state
        key = (type(state), state, case.request_type, case.legal_basis, case.provider, type(level), level)
        middle = self._middles.get(key)
        if middle is None:
            middle = (
                f'{_ROW}"state": {_value(state, _ROW)}'
                f',{_ROW}"request_type": {_value(str(case.request_type), _ROW)}'
                f',{_ROW}"legal_basis": {_value(str(case.legal_basis), _ROW)}'
                f',{_ROW}"provider": {_value(case.provider, _ROW)}'
                f',{_ROW}"escalation_level": {_value(level, _ROW)},{_ROW}"clocks": '
            )
            if len(self._middles) >= _BOUND:
                self._middles.clear()
            self._middles[key] = middle
        return middle


def _iso_text(moment: datetime, zone: zoneinfo.ZoneInfo) -> str | None:
    local = moment.astimezone(zone)
    return (local if local.microsecond == 0 else local.replace(microsecond=0)).isoformat()

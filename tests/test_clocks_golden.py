"""Golden table for the SLA clock engine: every expected value below was computed by hand.

The workflow pieces are built directly from ``workflows.model`` dataclasses (mirroring the bundled
lawful-access clocks) so each row controls exactly one rule; the last rows run the bundled workflow
through ``workflows.load_workflow``. Calendar facts used (2026):
- US DST: spring forward Sun 8 Mar 02:00 EST -> 03:00 EDT; fall back Sun 1 Nov 02:00 EDT -> 01:00 EST.
- UK DST: spring forward Sun 29 Mar 01:00 GMT -> 02:00 BST; fall back Sun 25 Oct 02:00 BST -> 01:00 GMT.
- holidays.PK 2026: Eid al-Fitr Fri 20 + Sat 21 Mar, Pakistan Day Mon 23 Mar, Eid al-Adha Tue 26 - Thu 28
  May. holidays.US 2026: Thanksgiving Thu 26 Nov. Asia/Karachi is UTC+5 all year (no DST).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from casebridge.workflows.calendars import DEFAULT_24X7
from casebridge.workflows.cases import StatusChange
from casebridge.workflows.clocks import evaluate_case, evaluate_clock
from casebridge.workflows.model import Calendar, ClockDef, ClockKind, ClockState, ClockTarget
from tests.factories import make_case

H = 3600.0
D = 86400.0
S = ClockState

# --------------------------------------------------------------------------------------- calendars
NY = Calendar("ny", "business", "America/New_York", holidays_country="US")
LONDON = Calendar("london", "business", "Europe/London")
AGENCY_PK = Calendar("agency", "business", "Asia/Karachi", holidays_country="PK")
# Seven days a week, 00:30-03:30 New York time: the DST switch (02:00) falls inside working hours.
NIGHT_NY = Calendar(
    "night", "business", "America/New_York", frozenset(range(7)), day_start=time(0, 30), day_end=time(3, 30)
)

# ------------------------------------------------------------------------------------------ clocks
OPEN = frozenset({"submitted", "acknowledged", "awaiting_requester", "partial", "escalated"})
ANSWERED = frozenset({"fulfilled", "refused", "redirected_mla", "expired", "withdrawn", "closed"})
LEGAL = ClockDef(
    "legal_deadline", ClockKind.LEGAL, start_on=OPEN, stop_on=ANSWERED,
    met_on=frozenset({"fulfilled"}), start_field="submitted_at",
)  # fmt: skip
FOLLOWUP = ClockDef(
    "followup", ClockKind.OPERATIONAL, start_on=OPEN, stop_on=ANSWERED, met_on=frozenset({"fulfilled"}),
    pause_in=frozenset({"awaiting_requester"}), start_field="submitted_at",
)  # fmt: skip
# A legal clock someone (wrongly) told to pause: the engine must ignore pause_in anyway.
LEGAL_WITH_PAUSE = ClockDef(
    "legal_deadline", ClockKind.LEGAL, start_on=OPEN, stop_on=ANSWERED, met_on=frozenset({"fulfilled"}),
    pause_in=frozenset({"awaiting_requester"}), start_field="submitted_at",
)  # fmt: skip
PRESERVATION = ClockDef(
    "preservation", ClockKind.LEGAL, start_on=OPEN | {"fulfilled", "redirected_mla"},
    stop_on=frozenset({"closed", "withdrawn", "expired"}), met_on=frozenset({"closed"}),
    start_field="submitted_at",
)  # fmt: skip
MLA = ClockDef(
    "mla", ClockKind.OPERATIONAL, start_on=frozenset({"redirected_mla"}),
    stop_on=frozenset({"fulfilled", "closed", "withdrawn", "expired"}), met_on=frozenset({"fulfilled"}),
)  # fmt: skip
REVIEW = ClockDef(
    "legal_review", ClockKind.OPERATIONAL, calendar="agency", start_on=frozenset({"legal_review"}),
    stop_on=frozenset({"approved", "draft", "withdrawn"}), met_on=frozenset({"approved"}),
)  # fmt: skip
# An operational clock on a business calendar that pauses (no start_field: starts from history).
OPS = ClockDef(
    "ops", ClockKind.OPERATIONAL, start_on=OPEN, stop_on=ANSWERED, met_on=frozenset({"fulfilled"}),
    pause_in=frozenset({"awaiting_requester"}),
)  # fmt: skip


def target(clock: str, tgt: float, warn: float, extension: float = 0.0, max_ext: int = 0) -> ClockTarget:
    return ClockTarget(clock, tgt, warn, extension=extension, max_extensions=max_ext, source="golden test")


T_FOLLOW_30D = target("followup", 30 * D, 20 * D)
T_FOLLOW_60D = target("followup", 60 * D, 40 * D)
T_EMERGENCY_8H = target("followup", 8 * H, 4 * H)
T_LEGAL_30D = target("legal_deadline", 30 * D, 20 * D)
T_LEGAL_72H = target("legal_deadline", 72 * H, 48 * H)
T_2703F = target("preservation", 90 * D, 75 * D, extension=90 * D, max_ext=1)
# Reg. (EU) 2023/1543 Art. 11(1): 60 days, extendable once by 30 during the 60-day period.
T_EPO_PR = target("preservation", 60 * D, 45 * D, extension=30 * D, max_ext=1)
# ETS 185 Art. 29(7): at least 60 days; once the MLA request is received, preserved until it is decided.
T_BUDAPEST_29 = ClockTarget(
    "preservation", 60 * D, 45 * D, source="golden test", ends_on_field="mla_received_at",
    ends_on_source="ETS 185 Art. 29(7)",
)  # fmt: skip
T_MLA = target("mla", 300 * D, 180 * D)
T_REVIEW_2D = target("legal_review", 2 * 8 * H, 8 * H)  # "2d" / "1d" on an 8-hour business calendar
T_OPS_3D = target("ops", 3 * 8 * H, 2 * 8 * H)
T_NIGHT_5H = target("legal_review", 5 * H, 4 * H)
T_NIGHT_5H30 = target("legal_review", 5.5 * H, 4 * H)
T_NIGHT_6H30 = target("legal_review", 6.5 * H, 4 * H)


def z(text: str) -> datetime:
    """A UTC instant: z("2026-01-01 00:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def hist(*entries: tuple[datetime, str]) -> list[StatusChange]:
    return [StatusChange(at, state) for at, state in entries]


@dataclass
class Row:
    id: str
    clock: ClockDef
    target: ClockTarget
    calendar: Calendar
    history: list[StatusChange]
    now: datetime
    expect: dict[str, Any]
    case: dict[str, Any] = field(default_factory=dict)


JAN1 = z("2026-01-01 00:00")
# The followup history used by the pause rows: submitted 1 Jan, awaiting_requester 11-14 Jan, then on.
PAUSED_3D = hist(
    (JAN1, "submitted"),
    (z("2026-01-11 00:00"), "awaiting_requester"),
    (z("2026-01-14 00:00"), "acknowledged"),
)
# Refused 10 Jan, redirected to MLA 12 Jan, escalated 20 Jan.
REFUSED_TO_MLA = hist(
    (JAN1, "submitted"),
    (z("2026-01-10 00:00"), "refused"),
    (z("2026-01-12 00:00"), "redirected_mla"),
    (z("2026-01-20 00:00"), "escalated"),
)
PK_REVIEW_MON = hist((local("2026-11-02 09:00", "Asia/Karachi"), "legal_review"))  # Mon 04:00Z

ROWS = [
    # ---- 24x7 basics, creation state --------------------------------------------------------------
    Row("created-paused", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Received 1 Jan, but imported on 5 Jan already in awaiting_requester: that state is assumed to
        # have held since 1 Jan, so nothing is consumed; paused wall time = 1 Jan -> 10 Jan = 9 d.
        hist((z("2026-01-05 00:00"), "awaiting_requester")), z("2026-01-10 00:00"),
        {"state": S.PAUSED, "elapsed_seconds": 0.0, "paused_seconds": 9 * D, "due_at": None,
         "remaining_seconds": 30 * D, "started_at": JAN1, "cycle": 1}),
    Row("created-running-gap-counts", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Imported on 5 Jan in acknowledged (a running state): the 1-5 Jan gap counts. 1 -> 10 Jan = 9 d;
        # due = 1 Jan + 30 d = 31 Jan; warn = 1 Jan + 20 d = 21 Jan.
        hist((z("2026-01-05 00:00"), "acknowledged")), z("2026-01-10 00:00"),
        {"state": S.RUNNING, "elapsed_seconds": 9 * D, "due_at": z("2026-01-31 00:00"),
         "warn_at": z("2026-01-21 00:00"), "remaining_seconds": 21 * D}),
    Row("created-closed", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Created directly in closed (a stop state, not a start state): never started, nothing consumed,
        # even though submitted_at is set.
        hist((z("2026-01-05 00:00"), "closed")), z("2026-03-01 00:00"),
        {"state": S.NOT_STARTED, "elapsed_seconds": 0.0, "due_at": None, "started_at": None, "cycle": 0,
         "remaining_seconds": None}),
    Row("never-entered-start-state", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # draft -> legal_review -> approved: none of them starts the followup clock.
        hist((z("2025-12-20 00:00"), "draft"), (z("2025-12-22 00:00"), "legal_review"),
             (z("2025-12-24 00:00"), "approved")), z("2026-01-10 00:00"),
        {"state": S.NOT_STARTED, "elapsed_seconds": 0.0, "cycle": 0}),
    Row("now-before-start", LEGAL, T_LEGAL_30D, DEFAULT_24X7,
        # Provider receipt (submitted_at) is 10 Jan; evaluated on 8 Jan, before it: not started.
        hist((z("2026-01-05 00:00"), "approved"), (z("2026-01-10 00:00"), "submitted")),
        z("2026-01-08 00:00"),
        {"state": S.NOT_STARTED, "due_at": None}, case={"submitted_at": z("2026-01-10 00:00")}),
    Row("history-after-now-ignored", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # The fulfilled entry on 20 Jan is after now (15 Jan): still running, 14 d consumed.
        hist((JAN1, "submitted"), (z("2026-01-20 00:00"), "fulfilled")), z("2026-01-15 00:00"),
        {"state": S.RUNNING, "elapsed_seconds": 14 * D, "stopped_at": None}),
    Row("start-field-after-first-entry", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Tracker says submitted on 1 Jan, provider received it on 3 Jan: the clock runs from 3 Jan.
        # 3 -> 10 Jan = 7 d; due 3 Jan + 30 d = 2 Feb.
        hist((JAN1, "submitted")), z("2026-01-10 00:00"),
        {"state": S.RUNNING, "elapsed_seconds": 7 * D, "due_at": z("2026-02-02 00:00"),
         "started_at": z("2026-01-03 00:00")}, case={"submitted_at": z("2026-01-03 00:00")}),
    # ---- pause, resume, policy change ------------------------------------------------------------
    Row("before-pause", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Running 1 -> 10 Jan: due 31 Jan (the reference for the resume row below).
        PAUSED_3D, z("2026-01-10 00:00"),
        {"state": S.RUNNING, "due_at": z("2026-01-31 00:00"), "elapsed_seconds": 9 * D}),
    Row("while-paused", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Paused since 11 Jan: due None (tracker fields do not churn), remaining frozen at 30 - 10 = 20 d,
        # paused wall time 11 Jan -> 12 Jan 12:00 = 1.5 d.
        PAUSED_3D, z("2026-01-12 12:00"),
        {"state": S.PAUSED, "due_at": None, "warn_at": None, "remaining_seconds": 20 * D,
         "paused_seconds": 1.5 * D, "elapsed_seconds": 10 * D}),
    Row("resume-moves-due-exactly", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Paused 11 -> 14 Jan (3 d): due moves from 31 Jan to exactly 3 Feb; elapsed 10 d + 6 d = 16 d.
        PAUSED_3D, z("2026-01-20 00:00"),
        {"state": S.RUNNING, "due_at": z("2026-02-03 00:00"), "warn_at": z("2026-01-24 00:00"),
         "elapsed_seconds": 16 * D, "remaining_seconds": 14 * D, "paused_seconds": 3 * D}),
    Row("policy-change-keeps-pause", FOLLOWUP, T_FOLLOW_60D, DEFAULT_24X7,
        # Same history under a 60-day policy: the 3 paused days still count: due = 1 Jan + 63 d = 5 Mar.
        PAUSED_3D, z("2026-01-20 00:00"),
        {"state": S.RUNNING, "due_at": z("2026-03-05 00:00"), "paused_seconds": 3 * D,
         "elapsed_seconds": 16 * D, "target_seconds": 60 * D}),
    Row("legal-ignores-pause", LEGAL_WITH_PAUSE, T_LEGAL_30D, DEFAULT_24X7,
        # A legal clock never pauses, even if told to: 1 -> 20 Jan = 19 d, due 31 Jan, no paused time.
        PAUSED_3D, z("2026-01-20 00:00"),
        {"state": S.RUNNING, "due_at": z("2026-01-31 00:00"), "paused_seconds": 0.0,
         "elapsed_seconds": 19 * D}),
    Row("paused-after-warn-keeps-warn", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Warn (20 d) crossed on 21 Jan, paused from 25 Jan: state paused, warn_at stays 21 Jan, due None.
        hist((JAN1, "submitted"), (z("2026-01-25 00:00"), "awaiting_requester")), z("2026-01-27 00:00"),
        {"state": S.PAUSED, "warn_at": z("2026-01-21 00:00"), "due_at": None, "elapsed_seconds": 24 * D}),
    Row("breached-then-paused-stays-breached", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Due 31 Jan passed; paused from 2 Feb. Still breached (a pause does not un-breach), due stays 31
        # Jan, overdue counts wall time to now: 31 Jan -> 4 Feb = 4 d. Elapsed 32 d.
        hist((JAN1, "submitted"), (z("2026-02-02 00:00"), "awaiting_requester")), z("2026-02-04 00:00"),
        {"state": S.BREACHED, "due_at": z("2026-01-31 00:00"), "overdue_seconds": 4 * D,
         "elapsed_seconds": 32 * D}),
    # ---- thresholds -----------------------------------------------------------------------------
    Row("warn-boundary-minus-1s", FOLLOWUP, T_EMERGENCY_8H, DEFAULT_24X7,
        # 8 h target, warn 4 h; 03:59:59 elapsed: still running; warn projected at 04:00.
        hist((JAN1, "submitted")), z("2026-01-01 03:59:59"),
        {"state": S.RUNNING, "warn_at": z("2026-01-01 04:00"), "due_at": z("2026-01-01 08:00")}),
    Row("warn-boundary-exact", FOLLOWUP, T_EMERGENCY_8H, DEFAULT_24X7,
        # Exactly 4 h: elapsed >= warn -> at_risk.
        hist((JAN1, "submitted")), z("2026-01-01 04:00"),
        {"state": S.AT_RISK, "warn_at": z("2026-01-01 04:00"), "remaining_seconds": 4 * H}),
    Row("target-boundary-exact", FOLLOWUP, T_EMERGENCY_8H, DEFAULT_24X7,
        # Exactly 8 h: elapsed == target is not yet a breach (breach is elapsed > target).
        hist((JAN1, "submitted")), z("2026-01-01 08:00"),
        {"state": S.AT_RISK, "remaining_seconds": 0.0, "overdue_seconds": 0.0}),
    Row("target-boundary-plus-1s", FOLLOWUP, T_EMERGENCY_8H, DEFAULT_24X7,
        # 8 h + 1 s: breached, due stays the historical 08:00, overdue 1 s, remaining -1 s.
        hist((JAN1, "submitted")), z("2026-01-01 08:00:01"),
        {"state": S.BREACHED, "due_at": z("2026-01-01 08:00"), "overdue_seconds": 1.0,
         "remaining_seconds": -1.0}),
    # ---- stops and cycles -----------------------------------------------------------------------
    Row("met", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Fulfilled on 20 Jan (19 d <= 30 d) and fulfilled is in met_on: met; due as it stood (31 Jan).
        hist((JAN1, "submitted"), (z("2026-01-20 00:00"), "fulfilled")), z("2026-03-01 00:00"),
        {"state": S.MET, "stopped_at": z("2026-01-20 00:00"), "elapsed_seconds": 19 * D,
         "due_at": z("2026-01-31 00:00"), "overdue_seconds": 0.0}),
    Row("stopped-not-met", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Withdrawn on 20 Jan: a stop state outside met_on, within target -> stopped.
        hist((JAN1, "submitted"), (z("2026-01-20 00:00"), "withdrawn")), z("2026-03-01 00:00"),
        {"state": S.STOPPED, "stopped_at": z("2026-01-20 00:00"), "remaining_seconds": 11 * D}),
    Row("breached-at-stop", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Fulfilled on 5 Feb = 35 d > 30 d: breached even though fulfilled is in met_on; overdue frozen
        # at the stop: 31 Jan -> 5 Feb = 5 d (not growing until now, 1 Mar).
        hist((JAN1, "submitted"), (z("2026-02-05 00:00"), "fulfilled")), z("2026-03-01 00:00"),
        {"state": S.BREACHED, "due_at": z("2026-01-31 00:00"), "overdue_seconds": 5 * D,
         "elapsed_seconds": 35 * D}),
    Row("restart-new-cycle", FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7,
        # Refused 10 Jan stops cycle 1; redirected_mla (a stop state) keeps it idle; escalated on 20 Jan
        # starts cycle 2 from the history (submitted_at applies to cycle 1 only): 20 -> 25 Jan = 5 d,
        # due 20 Jan + 30 d = 19 Feb.
        REFUSED_TO_MLA, z("2026-01-25 00:00"),
        {"state": S.RUNNING, "cycle": 2, "started_at": z("2026-01-20 00:00"), "elapsed_seconds": 5 * D,
         "due_at": z("2026-02-19 00:00"), "stopped_at": None}),
    Row("mla-clock-starts-on-redirect", MLA, T_MLA, DEFAULT_24X7,
        # Same history: the MLA clock starts on redirected_mla (12 Jan) and escalated does not stop it:
        # 12 -> 25 Jan = 13 d; due 12 Jan + 300 d = 8 Nov 2026 (12 Jan is day 12; day 312 = 8 Nov).
        REFUSED_TO_MLA, z("2026-01-25 00:00"),
        {"state": S.RUNNING, "cycle": 1, "elapsed_seconds": 13 * D, "due_at": z("2026-11-08 00:00")}),
    # ---- extensions (18 U.S.C. 2703(f): 90 d, renewable once for 90) -------------------------------
    Row("2703f-no-extension", PRESERVATION, T_2703F, DEFAULT_24X7,
        # 1 Jan + 90 d = 1 Apr (31 + 28 + 31 = 90); warn 1 Jan + 75 d = 17 Mar.
        hist((JAN1, "submitted")), z("2026-03-01 00:00"),
        {"state": S.RUNNING, "due_at": z("2026-04-01 00:00"), "warn_at": z("2026-03-17 00:00"),
         "target_seconds": 90 * D}),
    Row("2703f-one-extension", PRESERVATION, T_2703F, DEFAULT_24X7,
        # One renewal: 180 d -> 1 Jan + 180 d = 30 Jun (day 181). The warn time moves with the due time:
        # 75 + 90 = 165 d -> 15 Jun. Now 20 Mar (78 d): running, not at risk (102 d left).
        hist((JAN1, "submitted")), z("2026-03-20 00:00"),
        {"state": S.RUNNING, "due_at": z("2026-06-30 00:00"), "warn_at": z("2026-06-15 00:00"),
         "target_seconds": 180 * D},
        case={"extensions_used": 1}),
    Row("2703f-recorded-extension", PRESERVATION, T_2703F, DEFAULT_24X7,
        # Recorded with `casebridge extend` on 20 Mar: the due time 1 Apr (90 d) moves by exactly 90 d,
        # counted from itself: 1 Apr + 90 d = 30 Jun (Apr 30 + May 31 + Jun 29 = 90).
        hist((JAN1, "submitted")), z("2026-03-25 00:00"),
        {"state": S.RUNNING, "due_at": z("2026-06-30 00:00"), "target_seconds": 180 * D},
        case={"extensions": [{"clock": "preservation", "at": "2026-03-20T00:00:00Z"}]}),
    Row("2703f-extension-of-another-clock", PRESERVATION, T_2703F, DEFAULT_24X7,
        # An extension recorded for another clock does not move this one: 1 Jan + 90 d = 1 Apr; day 84
        # of 90 is past the 75-day warn.
        hist((JAN1, "submitted")), z("2026-03-26 00:00"),
        {"state": S.AT_RISK, "due_at": z("2026-04-01 00:00"), "target_seconds": 90 * D},
        case={"extensions": [{"clock": "followup", "at": "2026-03-20T00:00:00Z"}]}),
    Row("2703f-lapses-after-the-extension", PRESERVATION, T_2703F, DEFAULT_24X7,
        # Extended once (due 30 Jun): on 2 Jul the extended period is over 2 days; a second extension
        # could not have been recorded (max 1), so the clock breaches at the new due time.
        hist((JAN1, "submitted")), z("2026-07-02 00:00"),
        {"state": S.BREACHED, "due_at": z("2026-06-30 00:00"), "overdue_seconds": 2 * D},
        case={"extensions": [{"clock": "preservation", "at": "2026-03-20T00:00:00Z"}]}),
    Row("eu-epo-pr-no-extension", PRESERVATION, T_EPO_PR, DEFAULT_24X7,
        # Art. 11(1): 1 Jan + 60 d = 2 Mar (Jan 31 + Feb 28 = 59 -> 1 Mar is day 60 -> due 2 Mar 00:00);
        # warn 45 d = 15 Feb.
        hist((JAN1, "submitted")), z("2026-02-20 00:00"),
        {"state": S.AT_RISK, "due_at": z("2026-03-02 00:00"), "warn_at": z("2026-02-15 00:00"),
         "target_seconds": 60 * D}),
    Row("eu-epo-pr-extended-by-30", PRESERVATION, T_EPO_PR, DEFAULT_24X7,
        # Extended by 30 d (Annex VI form) on 20 Feb: 2 Mar + 30 d = 1 Apr (60 + 30 = 90 d from 1 Jan);
        # warn 45 + 30 = 75 d = 17 Mar.
        hist((JAN1, "submitted")), z("2026-02-21 00:00"),
        {"state": S.RUNNING, "due_at": z("2026-04-01 00:00"), "warn_at": z("2026-03-17 00:00"),
         "target_seconds": 90 * D},
        case={"extensions": [{"clock": "preservation", "at": "2026-02-20T00:00:00Z", "note": "Annex VI"}]}),
    Row("budapest-29-runs-60-days", PRESERVATION, T_BUDAPEST_29, DEFAULT_24X7,
        # Art. 29(7): at least 60 days: 1 Jan + 60 d = 2 Mar; no MLA request yet on 20 Feb: at risk.
        hist((JAN1, "submitted")), z("2026-02-20 00:00"),
        {"state": S.AT_RISK, "due_at": z("2026-03-02 00:00"), "stopped_at": None}),
    Row("budapest-29-mla-received-ends-the-clock", PRESERVATION, T_BUDAPEST_29, DEFAULT_24X7,
        # The MLA request was received on 20 Feb (day 50 of 60): from then the data is preserved until the
        # request is decided (Art. 29(7)), so the 60-day clock ends there, met; 1 Apr is no lapse.
        hist((JAN1, "submitted")), z("2026-04-01 00:00"),
        {"state": S.MET, "stopped_at": z("2026-02-20 00:00"), "elapsed_seconds": 50 * D, "overdue_seconds": 0.0},
        case={"mla_received_at": "2026-02-20T00:00:00Z"}),
    Row("budapest-29-mla-received-too-late", PRESERVATION, T_BUDAPEST_29, DEFAULT_24X7,
        # Received on 12 Mar, 10 days after the 60-day period ended (2 Mar): the preservation had lapsed;
        # the clock stops breached, 10 d overdue.
        hist((JAN1, "submitted")), z("2026-04-01 00:00"),
        {"state": S.BREACHED, "stopped_at": z("2026-03-12 00:00"), "overdue_seconds": 10 * D},
        case={"mla_received_at": "2026-03-12T00:00:00Z"}),
    Row("budapest-29-mla-received-after-now", PRESERVATION, T_BUDAPEST_29, DEFAULT_24X7,
        # A receipt recorded for a moment after now has not happened yet at now: still counting.
        hist((JAN1, "submitted")), z("2026-02-20 00:00"),
        {"state": S.AT_RISK, "stopped_at": None},
        case={"mla_received_at": "2026-02-25T00:00:00Z"}),
    Row("2703f-extensions-capped", PRESERVATION, T_2703F, DEFAULT_24X7,
        # Two extensions recorded, but the law allows one: still 180 d.
        hist((JAN1, "submitted")), z("2026-03-20 00:00"),
        {"due_at": z("2026-06-30 00:00"), "target_seconds": 180 * D}, case={"extensions_used": 2}),
    # ---- 24x7 across DST: real hours, not wall hours -----------------------------------------------
    Row("24x7-across-ny-spring-forward", LEGAL, T_LEGAL_72H, DEFAULT_24X7,
        # Received Sat 7 Mar 12:00 EST (17:00Z); 72 real hours -> Tue 10 Mar 17:00Z = 13:00 EDT (the wall
        # clock shows 13:00, not 12:00, because an hour was skipped).
        hist((local("2026-03-07 12:00", "America/New_York"), "submitted")), z("2026-03-08 12:00"),
        {"due_at": local("2026-03-10 13:00", "America/New_York"), "elapsed_seconds": 19 * H},
        case={"submitted_at": local("2026-03-07 12:00", "America/New_York")}),
    # ---- business calendars across DST ------------------------------------------------------------
    Row("ny-business-spring-forward", REVIEW, T_REVIEW_2D, NY,
        # Fri 6 Mar 16:00 EST: Fri 1 h; Mon 9 Mar (now EDT) 8 h; Tue 10 Mar 7 h -> 16:00 EDT = 20:00Z.
        hist((local("2026-03-06 16:00", "America/New_York"), "legal_review")), z("2026-03-09 00:00"),
        {"due_at": z("2026-03-10 20:00"), "warn_at": z("2026-03-09 20:00"), "elapsed_seconds": 1 * H}),
    Row("ny-business-fall-back", REVIEW, T_REVIEW_2D, NY,
        # Fri 30 Oct 16:00 EDT (20:00Z): Fri 1 h; Mon 2 Nov (EST) 8 h; Tue 3 Nov 7 h -> 16:00 EST = 21:00Z.
        hist((local("2026-10-30 16:00", "America/New_York"), "legal_review")), z("2026-11-02 15:00"),
        {"due_at": z("2026-11-03 21:00"), "elapsed_seconds": 2 * H}),
    Row("london-business-spring-forward", REVIEW, T_REVIEW_2D, LONDON,
        # Fri 27 Mar 16:00 GMT: Fri 1 h; Mon 30 Mar (BST) 8 h; Tue 31 Mar 7 h -> 16:00 BST = 15:00Z.
        hist((local("2026-03-27 16:00", "Europe/London"), "legal_review")), z("2026-03-30 08:30"),
        {"due_at": z("2026-03-31 15:00"), "elapsed_seconds": 1.5 * H}),
    Row("london-business-fall-back", REVIEW, T_REVIEW_2D, LONDON,
        # Fri 23 Oct 16:00 BST (15:00Z): Fri 1 h; Mon 26 Oct (GMT) 8 h; Tue 27 Oct 7 h -> 16:00 GMT = 16:00Z.
        hist((local("2026-10-23 16:00", "Europe/London"), "legal_review")), z("2026-10-26 10:00"),
        {"due_at": z("2026-10-27 16:00"), "elapsed_seconds": 2 * H}),
    Row("ny-night-spring-forward-short-day", REVIEW, T_NIGHT_5H, NIGHT_NY,
        # Hours 00:30-03:30 every day. Sat 7 Mar: 3 h. Sun 8 Mar: 00:30 EST (05:30Z) -> 03:30 EDT (07:30Z)
        # is only 2 h. Now Sun 07:00Z: 3 h + 1.5 h = 4.5 h (at risk); 5 h reached at Sun's close 07:30Z.
        hist((local("2026-03-07 00:30", "America/New_York"), "legal_review")), z("2026-03-08 07:00"),
        {"state": S.AT_RISK, "elapsed_seconds": 4.5 * H, "due_at": z("2026-03-08 07:30")}),
    Row("ny-night-spring-forward-next-day", REVIEW, T_NIGHT_5H30, NIGHT_NY,
        # 5.5 h: Sat 3 h + Sun 2 h + Mon 9 Mar 0.5 h -> 01:00 EDT = 05:00Z.
        hist((local("2026-03-07 00:30", "America/New_York"), "legal_review")), z("2026-03-07 06:00"),
        {"due_at": z("2026-03-09 05:00")}),
    Row("ny-night-fall-back-long-day", REVIEW, T_NIGHT_6H30, NIGHT_NY,
        # Sat 31 Oct 00:30-03:30 EDT: 3 h. Sun 1 Nov 00:30 EDT (04:30Z) -> 03:30 EST (08:30Z) is 4 h;
        # 3.5 h more -> 08:00Z (03:00 EST, the repeated hour counted once each time it happens).
        hist((local("2026-10-31 00:30", "America/New_York"), "legal_review")), z("2026-10-31 06:00"),
        {"due_at": z("2026-11-01 08:00")}),
    # ---- holidays ---------------------------------------------------------------------------------
    Row("pk-eid-al-fitr-and-pakistan-day", REVIEW, T_REVIEW_2D, AGENCY_PK,
        # Thu 19 Mar 16:00 PKT: Thu 1 h; Fri 20 (Eid), Sat, Sun, Mon 23 (Pakistan Day) closed; Tue 24 8 h;
        # Wed 25 7 h -> 16:00 PKT = 11:00Z. Now Mon 23 12:00 PKT: still 1 h.
        hist((local("2026-03-19 16:00", "Asia/Karachi"), "legal_review")),
        local("2026-03-23 12:00", "Asia/Karachi"),
        {"due_at": z("2026-03-25 11:00"), "elapsed_seconds": 1 * H, "remaining_seconds": 15 * H,
         "state": S.RUNNING}),
    Row("pk-eid-al-adha-lands-on-close", REVIEW, T_REVIEW_2D, AGENCY_PK,
        # Mon 25 May 09:00 PKT: Mon 8 h; Tue 26 - Thu 28 Eid al-Adha; Fri 29 8 h -> reached exactly at
        # Fri's close 17:00 PKT = 12:00Z (the closing instant, not Monday's opening).
        hist((local("2026-05-25 09:00", "Asia/Karachi"), "legal_review")), z("2026-05-27 00:00"),
        {"due_at": z("2026-05-29 12:00"), "state": S.AT_RISK, "warn_at": z("2026-05-25 12:00")}),
    Row("us-thanksgiving", REVIEW, T_REVIEW_2D, NY,
        # Wed 25 Nov 13:00 EST: Wed 4 h; Thu 26 Thanksgiving; Fri 27 8 h (12 h); Mon 30 4 h -> 13:00 EST
        # = 18:00Z.
        hist((local("2026-11-25 13:00", "America/New_York"), "legal_review")), z("2026-11-26 18:00"),
        {"due_at": z("2026-11-30 18:00"), "elapsed_seconds": 4 * H}),
    Row("pk-business-warn-exact", REVIEW, T_REVIEW_2D, AGENCY_PK,
        # Mon 2 Nov 09:00 -> 17:00 PKT = one working day = warn (8 h) exactly: at risk, warn_at = 12:00Z.
        PK_REVIEW_MON, z("2026-11-02 12:00"),
        {"state": S.AT_RISK, "warn_at": z("2026-11-02 12:00"), "due_at": z("2026-11-03 12:00")}),
    Row("pk-business-overnight-is-free", REVIEW, T_REVIEW_2D, AGENCY_PK,
        # Tue 3 Nov 17:00 PKT: elapsed = target exactly (at risk); Wed 4 Nov 08:00 PKT adds nothing (not
        # open yet): still at risk, not breached.
        PK_REVIEW_MON, local("2026-11-04 08:00", "Asia/Karachi"),
        {"state": S.AT_RISK, "elapsed_seconds": 16 * H, "remaining_seconds": 0.0}),
    Row("pk-business-breached-overdue-wall", REVIEW, T_REVIEW_2D, AGENCY_PK,
        # Wed 4 Nov 10:00 PKT: 17 working hours > 16: breached. overdue is wall time since due (Tue 17:00
        # PKT = 12:00Z) to Wed 05:00Z = 17 h.
        PK_REVIEW_MON, local("2026-11-04 10:00", "Asia/Karachi"),
        {"state": S.BREACHED, "elapsed_seconds": 17 * H, "overdue_seconds": 17 * H,
         "due_at": z("2026-11-03 12:00")}),
    Row("business-resume-moves-due-by-paused-working-time", OPS, T_OPS_3D, NY,
        # Mon 5 Jan 09:00 EST start, 3 working days (24 h). Without a pause due = Wed 7 Jan 17:00 EST.
        # Paused Tue 13:00 -> Wed 11:00 EST = 6 working hours (Tue 4 + Wed 2), 22 wall hours. After the
        # resume: elapsed 8 + 4 + 1 = 13 h at Wed 12:00; due = Thu 8 Jan 15:00 EST = 20:00Z (6 h later).
        # Warn (16 h) = 12 h at the resume + 4 h -> Wed 15:00 EST = 20:00Z.
        hist((local("2026-01-05 09:00", "America/New_York"), "submitted"),
             (local("2026-01-06 13:00", "America/New_York"), "awaiting_requester"),
             (local("2026-01-07 11:00", "America/New_York"), "acknowledged")),
        local("2026-01-07 12:00", "America/New_York"),
        {"state": S.RUNNING, "elapsed_seconds": 13 * H, "due_at": z("2026-01-08 20:00"),
         "paused_seconds": 22 * H, "warn_at": z("2026-01-07 20:00")}),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_golden(row: Row) -> None:
    # Provider receipt defaults to 1 Jan 2026 (JAN1) unless the row says otherwise; only clocks with a
    # start_field (legal_deadline, followup, preservation) read it.
    case = make_case(**{"submitted_at": JAN1, **row.case})
    result = evaluate_clock(row.clock, row.target, row.calendar, case, row.history, row.now)
    for name, expected in row.expect.items():
        actual = getattr(result, name)
        if isinstance(expected, float):
            assert actual == pytest.approx(expected, abs=1e-6), name
        else:
            assert actual == expected, f"{name}: {actual!r} != {expected!r}"


def test_golden_table_is_big_enough() -> None:
    assert len(ROWS) >= 25
    assert len({r.id for r in ROWS}) == len(ROWS)


# ------------------------------------------------------------------ the bundled lawful-access workflow
@pytest.fixture(scope="module")
def lawful_access():
    from casebridge.workflows import load_workflow

    return load_workflow("lawful-access")


def _by_name(results) -> dict:
    return {r.name: r for r in results}


def test_lawful_access_voluntary_subscriber(lawful_access) -> None:
    # T0 = Mon 2 Nov 2026 09:00Z (14:00 PKT) is provider receipt (factory default submitted_at).
    history = hist(
        (local("2026-10-28 10:00", "Asia/Karachi"), "draft"),
        (local("2026-10-29 10:00", "Asia/Karachi"), "legal_review"),  # Thu
        (local("2026-11-02 11:00", "Asia/Karachi"), "approved"),  # Mon
        (z("2026-11-02 09:00"), "submitted"),
    )
    case = make_case(request_type="subscriber", legal_basis="voluntary")
    results = evaluate_case(case, history, lawful_access, z("2026-11-25 09:00"))
    # voluntary x subscriber has targets for legal_review and mla (agency defaults) and followup
    # (voluntary policy); none for legal_deadline/preservation. Workflow clock order.
    assert [r.name for r in results] == ["legal_review", "followup", "mla"]
    got = _by_name(results)
    # legal_review on the agency calendar (PKT, 09-17, holidays.PK), 2 working days = 16 h:
    # Thu 29 Oct 10:00-17:00 7 h, Fri 30 Oct 8 h (15 h), Mon 2 Nov 09:00-10:00 1 h -> due Mon 10:00 PKT
    # = 05:00Z. Approved Mon 11:00 PKT: 17 h > 16 h -> breached at the stop, overdue frozen at 1 h.
    review = got["legal_review"]
    assert (review.state, review.due_at, review.stopped_at) == (
        S.BREACHED,
        z("2026-11-02 05:00"),
        z("2026-11-02 06:00"),
    )
    assert review.elapsed_seconds == pytest.approx(17 * H)
    assert review.overdue_seconds == pytest.approx(1 * H)
    # followup (voluntary: 30 d, warn 20 d) from submitted_at: 2 -> 25 Nov = 23 d >= 20 d: at risk;
    # warn_at 22 Nov 09:00Z, due 2 Dec 09:00Z.
    followup = got["followup"]
    assert (followup.state, followup.warn_at, followup.due_at) == (
        S.AT_RISK,
        z("2026-11-22 09:00"),
        z("2026-12-02 09:00"),
    )
    assert followup.target.source.startswith("Agency practice")
    # mla: never redirected.
    assert got["mla"].state is S.NOT_STARTED


def test_lawful_access_eu_epo_emergency_breach(lawful_access) -> None:
    # EU EPO emergency: legal 8 h from receipt (T0 = 2 Nov 09:00Z), warn 4 h, counted under Reg.
    # 1182/71 Art. 3(1): the hour of receipt (09:00-10:00) is not counted, 8 h run 10:00 -> 18:00Z (no
    # establishment known here: the default calendar is UTC; hours are hours in every zone). The
    # provider asks us to clarify at 11:00Z, but legal clocks never pause: at 19:00Z -> breached since
    # 18:00Z, overdue 1 h -> escalation level 1 (level 2 comes 4 h after the due time).
    history = hist((z("2026-11-02 09:00"), "submitted"), (z("2026-11-02 11:00"), "awaiting_requester"))
    case = make_case(request_type="emergency", legal_basis="eu-epo")
    got = _by_name(evaluate_case(case, history, lawful_access, z("2026-11-02 19:00")))
    assert list(got) == ["legal_review", "legal_deadline", "mla"]
    legal = got["legal_deadline"]
    assert (legal.state, legal.due_at, legal.kind) == (S.BREACHED, z("2026-11-02 18:00"), ClockKind.LEGAL)
    # the warning stays on elapsed time: 4 h after receipt, 13:00Z
    assert legal.warn_at == z("2026-11-02 13:00")
    assert legal.paused_seconds == 0.0
    assert legal.overdue_seconds == pytest.approx(1 * H)
    assert legal.target.escalate is not None and legal.target.escalate.level_at(legal.overdue_seconds) == 1
    assert got["legal_review"].state is S.NOT_STARTED


def test_lawful_access_2703f_extension(lawful_access) -> None:
    # 2703(f) preservation renewed once: 90 + 90 = 180 d from 2 Nov 2026 09:00Z = 1 May 2027 09:00Z
    # (Nov +28, Dec +31, Jan +31, Feb +28, Mar +31, Apr +30 = 179 -> 30 Apr; +1 -> 1 May).
    history = hist((z("2026-11-02 09:00"), "submitted"), (z("2026-11-10 09:00"), "fulfilled"))
    case = make_case(request_type="preservation", legal_basis="us-2703f", extensions_used=1)
    got = _by_name(evaluate_case(case, history, lawful_access, z("2027-01-01 00:00")))
    pres = got["preservation"]
    # fulfilled is a start state but not a stop state of the preservation clock: still running.
    assert (pres.state, pres.due_at, pres.target_seconds) == (S.RUNNING, z("2027-05-01 09:00"), 180 * D)


def test_out_of_order_history_is_sorted_first() -> None:
    # A tracker that returns journals newest first must give the same answer as an ordered one
    # (the resume-moves-due row: due 3 Feb, 3 paused days).
    case = make_case(submitted_at=JAN1)
    ordered = evaluate_clock(FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7, case, PAUSED_3D, z("2026-01-20 00:00"))
    shuffled = evaluate_clock(
        FOLLOWUP, T_FOLLOW_30D, DEFAULT_24X7, case, list(reversed(PAUSED_3D)), z("2026-01-20 00:00")
    )
    assert shuffled == ordered
    assert (shuffled.due_at, shuffled.paused_seconds) == (z("2026-02-03 00:00"), 3 * D)

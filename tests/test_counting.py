"""Legal periods through the clock engine: the bundled lawful-access workflow counts its EU policies under
Reg. (EEC, Euratom) No 1182/71 Art. 3 on the provider's EU establishment's calendar (the provider
directory), 2703(f) and the operational clocks as elapsed time. Each figure with its arithmetic.

Calendar facts (the ``holidays`` package, Europe/Dublin): Irish public holidays 2027 include the May
bank holiday Mon 3 May, the June bank holiday Mon 7 Jun and the October bank holiday Mon 25 Oct; Irish
summer time (UTC+1) runs from Sun 28 Mar to Sun 31 Oct 2027. Meta's EU establishment is Meta Platforms
Ireland Limited (IE); Microsoft's directory entry names no entity (its place is not known).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casebridge.errors import WorkflowError
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import StatusChange
from casebridge.workflows.clocks import ClockResult, evaluate_case
from casebridge.workflows.counting import DEFAULT_PLACE, attach_establishments, place_of, statement
from casebridge.workflows.directory import load_directory
from casebridge.workflows.extension import plan_extension
from casebridge.workflows.model import ClockState, Workflow
from tests.factories import make_case

ROOT = Path(__file__).resolve().parent.parent
H, D = 3600.0, 86400.0
S = ClockState
DIRECTORY = load_directory()


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def wf() -> Workflow:
    return attach_establishments(load_workflow(), DIRECTORY)


def clock(
    wf: Workflow, request_type: str, basis: str, received: str, now: str, provider: str = "Meta", **kw
) -> tuple[ClockResult, object]:
    case = make_case(request_type=request_type, legal_basis=basis, submitted_at=z(received), provider=provider, **kw)
    history = [StatusChange(at=z(received), state="submitted")]
    results = [r for r in evaluate_case(case, history, wf, z(now)) if r.state != S.NOT_STARTED]
    assert len(results) == 1, results
    return results[0], case


@pytest.mark.parametrize(
    ("request_type", "basis", "received", "due", "arithmetic"),
    [
        ("emergency", "eu-epo", "2027-05-14T13:45Z", "2027-05-14T22:00Z",
         "Art. 10(4), 8 hours: received 14:45 IST, the hour of receipt is not counted: 15:00 -> 23:00 IST"),
        ("subscriber", "eu-epo", "2027-04-23T11:00Z", "2027-05-04T23:00Z",
         "Art. 10(2), 10 days: Fri 23 Apr (12:00 IST); day 1 = Sat 24 Apr, day 10 = Mon 3 May, the May "
         "bank holiday -> Tue 4 May, ends 24:00 IST = 23:00Z (elapsed time said Mon 3 May 11:00Z)"),
        ("subscriber", "eu-epo", "2027-10-20T09:00Z", "2027-11-02T00:00Z",
         "Wed 20 Oct; day 10 = Sat 30 Oct -> Mon 1 Nov; summer time ended 31 Oct: 24:00 GMT = 00:00Z 2 Nov"),
        ("subscriber", "eu-epo", "2027-06-01T23:30Z", "2027-06-14T23:00Z",
         "Tue 1 Jun 23:30Z is 00:30 Wed 2 Jun in Dublin: the event's day is Dublin's; day 10 = Sat 12 Jun "
         "-> Mon 14 Jun, 24:00 IST (counted on UTC's day 1 Jun, day 10 would be Fri 11 Jun)"),
        ("preservation", "eu-epo-pr", "2027-04-23T11:00Z", "2027-06-22T23:00Z",
         "Art. 11(1), 60 days: day 1 = Sat 24 Apr; Apr 7 + May 31 + Jun 22 = 60 -> Tue 22 Jun, 24:00 IST"),
        ("preservation", "us-2703f", "2027-04-23T11:00Z", "2027-07-22T11:00Z",
         "18 U.S.C. 2703(f): exactly 90 x 24 h, elapsed (Apr 7 + May 31 + Jun 30 + Jul 22 = 90 days)"),
    ],
)  # fmt: skip
def test_golden_through_the_engine(
    wf: Workflow, request_type: str, basis: str, received: str, due: str, arithmetic: str
) -> None:
    result, _ = clock(wf, request_type, basis, received, received)
    assert result.due_at == z(due), arithmetic
    assert result.state in (S.RUNNING, S.AT_RISK)


def test_the_state_follows_the_laws_due_and_the_warning_stays_elapsed(wf: Workflow) -> None:
    # EPOC received Fri 23 Apr 11:00Z, 10 days, warn 7 days (elapsed: Fri 30 Apr 11:00Z). Elapsed time
    # would breach at Mon 3 May 11:00Z; the law's period ends Tue 4 May 23:00Z.
    at_noon, _ = clock(wf, "subscriber", "eu-epo", "2027-04-23T11:00Z", "2027-05-04T12:00Z")
    assert (at_noon.state, at_noon.warn_at) == (S.AT_RISK, z("2027-04-30T11:00Z"))
    assert at_noon.remaining_seconds == pytest.approx(11 * H)  # 12:00Z -> 23:00Z
    exact, _ = clock(wf, "subscriber", "eu-epo", "2027-04-23T11:00Z", "2027-05-04T23:00Z")
    assert exact.state is S.AT_RISK  # reaching the due instant is not a breach
    # 01:00Z on Wed 5 May: 2 h overdue -> escalation level 1 (level 2 comes 10 days after the due time)
    late, _ = clock(wf, "subscriber", "eu-epo", "2027-04-23T11:00Z", "2027-05-05T01:00Z")
    assert (late.state, late.due_at, late.overdue_seconds) == (S.BREACHED, z("2027-05-04T23:00Z"), 2 * H)
    assert late.target.escalate is not None and late.target.escalate.level_at(late.overdue_seconds) == 1
    assert late.target.target == 10 * D  # the policy's target is reported unchanged


def test_a_stop_before_the_laws_due_is_met(wf: Workflow) -> None:
    # fulfilled Tue 4 May 20:00Z: after 10 x 24 h, inside the law's period (ends 23:00Z) -> met
    case = make_case(request_type="subscriber", legal_basis="eu-epo", submitted_at=z("2027-04-23T11:00Z"))
    history = [
        StatusChange(at=z("2027-04-23T11:00Z"), state="submitted"),
        StatusChange(at=z("2027-05-04T20:00Z"), state="fulfilled"),
    ]
    (legal,) = [r for r in evaluate_case(case, history, wf, z("2027-05-10T00:00Z")) if r.name == "legal_deadline"]
    assert (legal.state, legal.overdue_seconds) == (S.MET, 0.0)


def test_the_extension_is_counted_by_the_same_rule(wf: Workflow) -> None:
    # EU preservation, 60 days -> Tue 22 Jun 24:00 IST; extended once by 30 days counted from the current
    # due: day 1 = Wed 23 Jun, day 30 = Thu 22 Jul -> 24:00 IST = 23:00Z. Elapsed: 90 x 24 h = 22 Jul 11:00Z.
    case = make_case(request_type="preservation", legal_basis="eu-epo-pr", submitted_at=z("2027-04-23T11:00Z"))
    history = [StatusChange(at=z("2027-04-23T11:00Z"), state="submitted")]
    plan = plan_extension(case, history, wf, "preservation", z("2027-06-01T00:00Z"))
    assert (plan.old_due, plan.new_due) == (z("2027-06-22T23:00Z"), z("2027-07-22T23:00Z"))
    assert plan.counting == "eu-1182-71"
    assert plan.statement.startswith("due 2027-07-22 24:00 Europe/Dublin, counted under Reg.")
    # the warning moves by the extension, on elapsed time: 45 + 30 days after receipt
    (pres,) = [r for r in evaluate_case(plan.case, history, wf, z("2027-06-01T00:00Z")) if r.name == "preservation"]
    assert pres.warn_at == z("2027-04-23T11:00Z") + timedelta(days=75)


def test_an_extension_ending_on_a_weekend_rolls_forward(wf: Workflow) -> None:
    # received Mon 26 Apr 2027 10:00Z: day 60 = Fri 25 Jun (Apr 4 + May 31 + Jun 25); +30 from there:
    # day 30 = Sun 25 Jul -> Mon 26 Jul, 24:00 IST = 23:00Z
    result, _ = clock(wf, "preservation", "eu-epo-pr", "2027-04-26T10:00Z", "2027-04-27T00:00Z", extensions_used=1)
    assert result.due_at == z("2027-07-26T23:00Z")


def test_the_statement_names_the_rule_and_the_place(wf: Workflow) -> None:
    result, case = clock(wf, "subscriber", "eu-epo", "2027-04-23T11:00Z", "2027-04-24T00:00Z")
    said = statement(result, case, wf.establishments)
    assert said.text == "due 2027-05-04 24:00 Europe/Dublin, counted under Reg. (EEC, Euratom) No 1182/71 Art. 3"
    assert (said.country, said.known, said.basis) == ("IE", True, "provider directory")
    assert said.establishment == "Meta Platforms Ireland Limited"
    elapsed, case = clock(wf, "preservation", "us-2703f", "2027-04-23T11:00Z", "2027-04-24T00:00Z")
    assert statement(elapsed, case, wf.establishments).text == "due 2027-07-22 11:00 UTC, counted as elapsed time"


def test_an_unknown_establishment_counts_on_the_stated_default_and_says_so(wf: Workflow) -> None:
    # Microsoft's entry names no EU entity: UTC, weekends only. Fri 23 Apr 11:00Z: day 10 = Mon 3 May (no
    # holiday on the default calendar) -> 24:00 UTC = 2027-05-04T00:00Z, and the clock says it guessed not
    result, case = clock(wf, "subscriber", "eu-epo", "2027-04-23T11:00Z", "2027-04-24T00:00Z", provider="Microsoft")
    assert result.due_at == z("2027-05-04T00:00Z")
    said = statement(result, case, wf.establishments)
    assert (said.known, said.basis, said.zone, said.country) == (False, "default", "UTC", None)
    assert said.text.endswith("EU establishment not known: default calendar UTC, weekends only")
    # a workflow given no directory at all: every place is unknown, same default
    bare, case = clock(load_workflow(), "subscriber", "eu-epo", "2027-04-23T11:00Z", "2027-04-24T00:00Z")
    assert bare.due_at == z("2027-05-04T00:00Z") and not statement(bare, case, None).known


def test_a_policy_calendar_overrides_the_directory(tmp_path: Path) -> None:
    # counting_calendar = DE (Europe/Berlin): Fri 23 Apr 11:00Z; day 10 = Mon 3 May, a working day in
    # Germany -> 24:00 CEST = 22:00Z on Mon 3 May (Meta's Irish establishment is not used)
    text = (ROOT / "workflows" / "lawful-access.toml").read_text()
    marker = 'source = "Reg. (EU) 2023/1543 Art. 10(2)"\ncounting = "eu-1182-71"\n'
    assert marker in text
    path = tmp_path / "wf.toml"
    path.write_text(text.replace(marker, marker + 'counting_calendar = { country = "DE" }\n'))
    wf = attach_establishments(load_workflow(path), DIRECTORY)
    result, case = clock(wf, "subscriber", "eu-epo", "2027-04-23T11:00Z", "2027-04-24T00:00Z")
    assert result.due_at == z("2027-05-03T22:00Z")
    said = statement(result, case, wf.establishments)
    assert (said.zone, said.country, said.basis) == ("Europe/Berlin", "DE", "policy")


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ('counting = "eu-1182-71"', 'counting = "eu-1182-7"',
         "policies[1].counting <- unknown counting rule 'eu-1182-7' (did you mean 'eu-1182-71'? known: "
         "elapsed, eu-1182-71)"),
        ('counting = "eu-1182-71"', 'counting = "lunar"',
         "policies[1].counting <- unknown counting rule 'lunar' (known: elapsed, eu-1182-71)"),
        ('name = "eu-epo-emergency"', 'name = "eu-epo-emergency"\ncounting_calendar = { country = "ZZ" }',
         "policies[1].counting_calendar.timezone <- ZZ is not an EU Member State: name its time zone"),
        ('target = "8h"', 'target = "1d12h"',
         "policies[1].targets[0].target <- legal period '1d12h': write a whole number and one unit h, d, w "
         'or mo, like "10d" (counting eu-1182-71 counts whole hours, days or weeks)'),
    ],
)  # fmt: skip
def test_workflow_check_rejects_a_bad_counting(tmp_path: Path, replace: str, by: str, message: str) -> None:
    path = tmp_path / "wf.toml"
    path.write_text((ROOT / "workflows" / "lawful-access.toml").read_text().replace(replace, by, 1))
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    assert str(caught.value) == f"{path}: {message}"


def test_the_rule_is_for_legal_clocks_only(tmp_path: Path) -> None:
    text = (ROOT / "workflows" / "lawful-access.toml").read_text()
    old = 'source = "18 U.S.C. 2702(b)(8), (c)(4)"\n'
    path = tmp_path / "wf.toml"
    path.write_text(text.replace(old, old + 'counting = "eu-1182-71"\n', 1))
    with pytest.raises(WorkflowError, match=r"counting <- eu-1182-71 counts legal periods: clock 'followup'"):
        load_workflow(path)


# ------------------------------------------------------------------------------------------ properties
moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))
IRELAND = place_of("IE", "Europe/Dublin")


@settings(deadline=None, max_examples=150)
@given(received=moments, provider=st.sampled_from(["Meta", "Google", "TikTok", "Microsoft"]), kind=st.booleans())
def test_a_days_period_never_ends_on_a_weekend_or_holiday_of_its_calendar(
    received: datetime, provider: str, kind: bool
) -> None:
    wf = _WF
    request_type, basis = ("subscriber", "eu-epo") if kind else ("preservation", "eu-epo-pr")
    case = make_case(request_type=request_type, legal_basis=basis, submitted_at=received, provider=provider)
    history = [StatusChange(at=received, state="submitted")]
    (result,) = [r for r in evaluate_case(case, history, wf, received) if r.state != S.NOT_STARTED]
    said = statement(result, case, wf.establishments)
    place = IRELAND if said.known else DEFAULT_PLACE
    assert said.zone == ("Europe/Dublin" if said.known else "UTC")
    due_local = result.due_at.astimezone(ZoneInfo(place.zone))
    assert due_local.time().isoformat() == "00:00:00"  # the expiry of the last hour of a day
    assert place.working((due_local - timedelta(seconds=1)).date())
    # never earlier than elapsed time, but for the hour summer time takes from a local day
    target = 10 * D if kind else 60 * D
    assert result.due_at >= received + timedelta(seconds=target) - timedelta(hours=1)


_WF = attach_establishments(load_workflow(), DIRECTORY)

"""Broken workflow files: each is rejected with its own exact ``FILE: key <- problem`` message."""

from __future__ import annotations

from pathlib import Path

import pytest

from casebridge.errors import WorkflowError
from casebridge.workflows import load_workflow

VALID = """
[workflow]
name = "mini"
initial = "draft"

[calendars.office]
kind = "business"
timezone = "Europe/London"
hours = "09:00-17:00"
holidays = "GB"

[states.draft]
label = "Draft"
[states.submitted]
label = "Submitted"
[states.waiting]
label = "Waiting"
[states.done]
label = "Done"
terminal = true

[[transitions]]
from = ["draft"]
to = "submitted"

[[transitions]]
from = ["submitted"]
to = "waiting"

[[transitions]]
from = ["waiting"]
to = "submitted"

[[transitions]]
from = ["submitted", "waiting"]
to = "done"

[clocks.response]
kind = "operational"
calendar = "office"
start_on = ["submitted", "waiting"]
pause_in = ["waiting"]
stop_on = ["done"]
met_on = ["done"]

[clocks.legal]
kind = "legal"
start_on = ["submitted"]
stop_on = ["done"]

[[policies]]
name = "all"
request_types = ["*"]
legal_bases = ["*"]
source = "test"

[[policies.targets]]
clock = "response"
target = "2d"
warn = "1d"
escalate = { levels = [{ level = 1, after = "0h", name = "NCB" }], repeat_after = "1d", max_repeats = 2 }
"""

# (id, old text, new text, expected message after "FILE: ")
BROKEN = [
    (
        "unknown-top-key",
        "[workflow]\n",
        "colour = 1\n[workflow]\n",
        "colour <- unknown key (check the spelling; see workflows/lawful-access.toml for the keys)",
    ),
    (
        "unknown-state-key",
        'label = "Draft"\n',
        'label = "Draft"\ncolour = "red"\n',
        "states.draft.colour <- unknown key (check the spelling; see workflows/lawful-access.toml for the keys)",
    ),
    (
        "transition-to-unknown",
        'to = "submitted"\n\n[[transitions]]\nfrom = ["submitted"]',
        'to = "sent"\n\n[[transitions]]\nfrom = ["submitted"]',
        "transitions[0].to <- unknown state 'sent' (define it under [states.sent] or fix the name)",
    ),
    (
        "transition-from-unknown",
        'from = ["draft"]',
        'from = ["drafted"]',
        "transitions[0].from <- unknown state 'drafted' (define it under [states.drafted] or fix the name)",
    ),
    (
        "initial-unknown",
        'initial = "draft"',
        'initial = "new"',
        "workflow.initial <- unknown state 'new' (define it under [states.new] or fix the name)",
    ),
    (
        "unreachable-state",
        "[states.done]",
        '[states.orphan]\nlabel = "Orphan"\n[states.done]',
        "states.orphan <- unreachable from the initial state 'draft'; add a transition to it or remove it",
    ),
    (
        "pause-in-unknown",
        'pause_in = ["waiting"]',
        'pause_in = ["wating"]',
        "clocks.response.pause_in <- unknown state 'wating' (define it under [states.wating] or fix the name)",
    ),
    (
        "legal-clock-pauses",
        'kind = "legal"\nstart_on = ["submitted"]',
        'kind = "legal"\npause_in = ["waiting"]\nstart_on = ["submitted"]',
        "clocks.legal.pause_in <- a legal clock never pauses; remove pause_in or make it operational",
    ),
    (
        "unknown-request-type",
        'request_types = ["*"]',
        'request_types = ["photos"]',
        "policies[0].request_types <- unknown request type 'photos' (known: content, domain_registration, emergency, "
        'preservation, subscriber, traffic, or "*")',
    ),
    (
        "unknown-legal-basis",
        'legal_bases = ["*"]',
        'legal_bases = ["gdpr"]',
        "policies[0].legal_bases <- unknown legal basis 'gdpr' (known: budapest-29, budapest-2ap-7, eu-epo, eu-epo-pr, "
        'letters-rogatory, mlat, nis2, us-2702-emergency, us-2703f, voluntary, or "*")',
    ),
    (
        "bad-duration",
        'target = "2d"',
        'target = "2 days"',
        "policies[0].targets[0].target <- bad duration '2 days': use a number and a unit s, m, h, d or w, "
        'like "8h" or "10d"',
    ),
    (
        "warn-after-target",
        'warn = "1d"',
        'warn = "3d"',
        "policies[0].targets[0].warn <- warn (3d) is after the target (2d); warn must come first",
    ),
    (
        "unknown-clock-in-policy",
        'clock = "response"',
        'clock = "reply"',
        "policies[0].targets[0].clock <- unknown clock 'reply' (known: response, legal)",
    ),
    (
        "unknown-calendar",
        'calendar = "office"',
        'calendar = "agency"',
        "clocks.response.calendar <- unknown calendar 'agency' (known: 24x7, office)",
    ),
    (
        "bad-timezone",
        'timezone = "Europe/London"',
        'timezone = "Europe/Londres"',
        "calendars.office.timezone <- unknown IANA time zone 'Europe/Londres' (for example Asia/Karachi)",
    ),
    (
        "bad-hours",
        'hours = "09:00-17:00"',
        'hours = "17:00-09:00"',
        "calendars.office.hours <- bad hours '17:00-09:00': the day must end after it starts",
    ),
    (
        "unknown-holiday-country",
        'holidays = "GB"',
        'holidays = "XX"',
        "calendars.office.holidays <- the holidays package knows no country 'XX' (use an ISO code like PK)",
    ),
    (
        "met-not-in-stop",
        'met_on = ["done"]',
        'met_on = ["waiting"]',
        "clocks.response.met_on <- waiting must also be in stop_on",
    ),
    (
        "levels-out-of-order",
        '{ level = 1, after = "0h", name = "NCB" }',
        '{ level = 2, after = "0h", name = "NCB" }, { level = 1, after = "1d", name = "Head" }',
        "policies[0].targets[0].escalate.levels <- levels must be numbered in increasing order without repeats",
    ),
    ("missing-name", 'name = "mini"\n', "", "workflow.name <- required key is missing"),
    # reminders (remind = { before, notify }) and extensions (extension = { by, max, source })
    (
        "reminder-outside-target",
        'warn = "1d"\nescalate',
        'warn = "1d"\nremind = { before = ["3d"] }\nescalate',
        "policies[0].targets[0].remind.before[0] <- 3d is not inside the target (2d); a reminder must come after "
        "the start",
    ),
    (
        "reminder-at-due-time",
        'warn = "1d"\nescalate',
        'warn = "1d"\nremind = { before = ["4h", "0h"] }\nescalate',
        "policies[0].targets[0].remind.before[1] <- 0h is the due time itself; a reminder comes before it",
    ),
    (
        "reminder-twice",
        'warn = "1d"\nescalate',
        'warn = "1d"\nremind = { before = ["4h", "240m"] }\nescalate',
        "policies[0].targets[0].remind.before[1] <- 240m is the same moment as 4h; list each threshold once",
    ),
    (
        "reminder-bad-duration",
        'warn = "1d"\nescalate',
        'warn = "1d"\nremind = { before = ["4 hours"] }\nescalate',
        "policies[0].targets[0].remind.before <- bad duration '4 hours': use a number and a unit s, m, h, d or w, "
        'like "8h" or "10d"',
    ),
    (
        "reminder-unknown-recipient",
        'warn = "1d"\nescalate',
        'warn = "1d"\nremind = { before = ["4h"], notify = ["boss"] }\nescalate',
        "policies[0].targets[0].remind.notify[0] <- Input should be 'assignee', 'watchers' or 'officer'",
    ),
    (
        "extension-max-zero",
        'warn = "1d"\nescalate',
        'warn = "1d"\nextension = { by = "1d", max = 0, source = "x" }\nescalate',
        "policies[0].targets[0].extension.max <- Input should be greater than or equal to 1",
    ),
    (
        "extension-adds-nothing",
        'warn = "1d"\nescalate',
        'warn = "1d"\nextension = { by = "0h", source = "x" }\nescalate',
        "policies[0].targets[0].extension.by <- extension 0h adds no time; give a positive duration",
    ),
    (
        "extension-without-source",
        'warn = "1d"\nescalate',
        'warn = "1d"\nextension = { by = "1d" }\nescalate',
        "policies[0].targets[0].extension.source <- required key is missing",
    ),
    (
        "extension-never-granted",
        'warn = "1d"\nescalate',
        'warn = "1d"\nextension = "1d"\nescalate',
        "policies[0].targets[0].max_extensions <- extension 1d is never granted: set max_extensions",
    ),
    (
        "max-extensions-beside-table",
        'warn = "1d"\nescalate',
        'warn = "1d"\nextension = { by = "1d", source = "x" }\nmax_extensions = 1\nescalate',
        "policies[0].targets[0].max_extensions <- give the count as extension.max, not beside the table",
    ),
    (
        "ends-on-unknown-field",
        'warn = "1d"\nescalate',
        'warn = "1d"\nends_on = { field = "responded_at", source = "x" }\nescalate',
        "policies[0].targets[0].ends_on.field <- Input should be 'mla_received_at'",
    ),
    (
        "clock-without-stop",
        'stop_on = ["done"]\nmet_on = ["done"]',
        "",
        "clocks.response.stop_on <- a clock needs at least one state that stops it",
    ),
    ("policy-without-source", 'source = "test"\n', "", "policies[0].source <- required key is missing"),
    (
        "bad-working-day",
        'hours = "09:00-17:00"',
        'hours = "09:00-17:00"\nworking_days = ["monday"]',
        "calendars.office.working_days[0] <- Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'",
    ),
]


def test_valid_base_loads(tmp_path: Path) -> None:
    path = tmp_path / "mini.toml"
    path.write_text(VALID)
    wf = load_workflow(path)
    assert set(wf.states) == {"draft", "submitted", "waiting", "done"}
    assert wf.targets_for("subscriber", "voluntary")["response"].target == 2 * 8 * 3600  # 2 working days


@pytest.mark.parametrize(("old", "new", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_workflow_is_rejected_with_its_message(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in VALID, "the mutation must apply to the base file"
    path = tmp_path / "broken.toml"
    path.write_text(VALID.replace(old, new, 1))
    with pytest.raises(WorkflowError) as err:
        load_workflow(path)
    assert str(err.value) == f"{path}: {expected}"


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text(VALID.replace('label = "Draft"', 'label = "Draft'))
    with pytest.raises(WorkflowError, match=r"syntax\.toml: TOML syntax <- .*line 13"):
        load_workflow(path)


def test_missing_file_lists_bundled_workflows() -> None:
    with pytest.raises(WorkflowError, match=r"nope\.toml: no such workflow file \(bundled workflows: lawful-access\)"):
        load_workflow("nope.toml")


def test_bundled_workflow_covers_every_domain_row() -> None:
    wf = load_workflow()
    # one row of shared/domain/README.md each: (request type, legal basis, clock, target hours, warn hours)
    rows = [
        ("emergency", "eu-epo", "legal_deadline", 8, 4),
        ("subscriber", "eu-epo", "legal_deadline", 240, 168),
        ("preservation", "eu-epo-pr", "preservation", 60 * 24, 45 * 24),
        ("preservation", "us-2703f", "preservation", 90 * 24, 75 * 24),
        ("preservation", "budapest-29", "preservation", 60 * 24, 45 * 24),
        ("subscriber", "budapest-2ap-7", "legal_deadline", 30 * 24, 20 * 24),
        ("emergency", "us-2702-emergency", "followup", 8, 4),
        ("domain_registration", "nis2", "legal_deadline", 72, 48),
        ("traffic", "voluntary", "followup", 30 * 24, 20 * 24),
        ("content", "mlat", "followup", 300 * 24, 180 * 24),
    ]
    for request_type, basis, clock, target_h, warn_h in rows:
        target = wf.targets_for(request_type, basis)[clock]
        assert (target.target / 3600, target.warn / 3600) == (target_h, warn_h), (request_type, basis)
        assert target.source
    us = wf.targets_for("preservation", "us-2703f")["preservation"]
    assert (us.extension, us.max_extensions, us.extension_source) == (90 * 86400, 1, "18 U.S.C. 2703(f)(2)")
    eu = wf.targets_for("preservation", "eu-epo-pr")["preservation"]
    assert (eu.extension, eu.max_extensions, eu.extension_source) == (30 * 86400, 1, "Reg. (EU) 2023/1543 Art. 11(1)")
    budapest = wf.targets_for("preservation", "budapest-29")["preservation"]
    assert (budapest.extension, budapest.ends_on_field) == (0.0, "mla_received_at")
    assert budapest.ends_on_source == "ETS 185 Art. 29(7)"


def test_bundled_workflow_reminds_before_every_legal_deadline() -> None:
    wf = load_workflow()
    for request_type, basis, clock, labels in [
        ("preservation", "us-2703f", "preservation", ("14d", "8d", "1d")),
        ("preservation", "eu-epo-pr", "preservation", ("14d", "3d", "1d")),
        ("preservation", "budapest-29", "preservation", ("14d", "3d", "1d")),
        ("emergency", "eu-epo", "legal_deadline", ("2h", "30m")),
        ("emergency", "us-2702-emergency", "followup", ("2h", "30m")),
    ]:
        rule = wf.targets_for(request_type, basis)[clock].remind
        assert rule is not None and rule.labels == labels, (request_type, basis)
        assert list(rule.before) == sorted(rule.before, reverse=True)


def test_older_extension_form_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.toml"
    path.write_text(
        VALID.replace('warn = "1d"\nescalate', 'warn = "1d"\nextension = "1d"\nmax_extensions = 2\nescalate')
    )
    target = load_workflow(path).targets_for("subscriber", "voluntary")["response"]
    assert (target.extension, target.max_extensions, target.extension_label) == (8 * 3600, 2, "1d")


def test_absurd_durations_are_refused_by_workflow_check(tmp_path: Path) -> None:
    from casebridge.workflows.schema import parse_duration

    assert parse_duration("50w") == 50 * 7 * 86400
    with pytest.raises(ValueError, match="longer than 50 years"):
        parse_duration("99999999999w")


def test_reachability_of_a_long_chain_is_checked_in_linear_time() -> None:
    """10,000 states in a chain: every one reachable; the first one cut off is named. (Not timed: the old
    walk scanned every transition from every state, 10^8 steps here; this one makes 10^4.)"""
    from casebridge.workflows import _check_reachable
    from casebridge.workflows.model import Transition

    class Chain:
        def __init__(self, n: int, cut: int | None = None) -> None:
            self.initial = "s0"
            self.states = {f"s{i}": None for i in range(n)}
            self.transitions = tuple(
                Transition(frozenset({f"s{i}"}), f"s{i + 1}") for i in range(n - 1) if i + 1 != cut
            )

    _check_reachable(Chain(10_000))  # type: ignore[arg-type]
    with pytest.raises(Exception, match=r"states\.s5000"):
        _check_reachable(Chain(10_000, cut=5000))  # type: ignore[arg-type]


def test_builtin_workflows_name_holiday_countries_the_holidays_package_knows() -> None:
    # load_workflow skips this check for the built-in workflows (start-up time): it is made here
    import holidays

    from casebridge.workflows import builtin_workflows, load_workflow

    for name in builtin_workflows():
        for cal in load_workflow(name).calendars.values():
            if cal.holidays_country:
                holidays.country_holidays(cal.holidays_country, subdiv=cal.holidays_subdiv, years=2026)

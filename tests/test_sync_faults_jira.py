"""Fault-injection harness over the fake Jira: seeded random runs of the real CLI (``casebridge sync``, a
config pointing at the fake server, the token in an environment variable) with 429s (Retry-After),
5xx, connections dropped after a write was applied, and the process SIGKILLed between any two actions;
each scenario ends with recovery runs, then the invariants are checked against the fake's own data:

- every case holds exactly the SLA fields the clock engine computes from the fake's changelog (no update
  lost), no reference on two issues (no case twice),
- one audit record per effective SLA write, in the same order with the same fields (the ground truth is
  the fake's changelog: an edit that changes nothing leaves no entry), no pending intent, and
  ``casebridge audit verify`` exits 0.

Every CLI run is a real process (``os.fork`` of the test process, which serves the fake Jira from a
thread); the kill hook is armed only inside that child. Retry waits are recorded, not slept: the child
replaces ``time.sleep`` and the connector's sleep with a recorder (tests never sleep to pass time).
Scenario time is a fixed past anchor (never ahead of the real date: the sync job does not let the
watermark pass the real time), the fake's clock and ``--now`` move together, so a seed replays exactly:
``CASEBRIDGE_JIRA_FAULT_SEED=<seed> CASEBRIDGE_JIRA_FAULT_RUNS=1 pytest tests/test_sync_faults_jira.py -s``.
"""

from __future__ import annotations

import json
import os
import random
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casebridge.app.intents import SET_FIELDS, merged
from casebridge.connectors import connector_class
from casebridge.connectors.jira import JiraFieldNames
from casebridge.connectors.jira.schema import needed_fields
from casebridge.state.audit import AuditLog
from casebridge.workflows.cases import Case, ClockFields, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.reminders import plan_reminders
from casebridge.workflows.sla import computed_sla, sla_from_json
from tests.cli_child import cli_in_child
from tests.factories import make_case
from tests.jira_fixtures import CLOUD_TOKEN, DC_PAT, EMAIL, Clock, build_jira, require_jira_documents
from tests.jira_server import JiraServer
from tests.jira_server.state import Issue, adf_text
from tests.test_sync_support import (
    _MARKER,
    KINDS,
    REMINDING_KINDS,
    WORKFLOW,
    Check,
    ReminderCheck,
    arm_kill,
    random_walk,
    reminder_check,
    tmpfs_dir,
)

RUNS = int(os.environ.get("CASEBRIDGE_JIRA_FAULT_RUNS", "200"))
BASE_SEED = int(os.environ.get("CASEBRIDGE_JIRA_FAULT_SEED", "20261201"))
TOKEN_ENV = "CB_FAULT_JIRA_TOKEN"
# A fixed anchor keeps replays exact (calendars and holidays depend on the date); scenarios span at most
# ~55 days after it, which must stay behind the real date.
ANCHOR = min(datetime(2026, 9, 1, 9, 0, tzinfo=UTC), datetime.now(UTC).replace(microsecond=0) - timedelta(days=70))
FAULT_KINDS = ("429", "500", "503", "drop_after_write")
WRITE_PATH = r"/issue/[A-Z]+-\d+$"
COMMENT_PATH = r"/issue/[A-Z]+-\d+/comment$"  # a reminder is a comment: not idempotent


@dataclass
class Stats:
    scenarios: int = 0
    modes: Counter[str] = field(default_factory=Counter)
    sync_runs: int = 0
    exit_codes: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    recoveries: int = 0
    retry_waits: int = 0  # waits the retry policies asked for (recorded, not slept)
    requests: int = 0
    writes: int = 0  # effective SLA writes (changelog entries)
    duplicates: int = 0
    lost: int = 0
    reminders: int = 0
    reminder_duplicates: int = 0
    reminders_lost: int = 0
    failed: dict[int, str] = field(default_factory=dict)


# -- the fake Jira of one scenario -----------------------------------------------------------------------
@dataclass
class Site:
    """A fake Jira (Cloud or Data Center) with the casebridge fields, and a config directory using it."""

    root: Path
    mode: str
    server: JiraServer
    clock: Clock
    ids: dict[str, str]  # role -> custom field id

    @classmethod
    def start(cls, root: Path, mode: str) -> Site:
        require_jira_documents()
        clock = Clock()
        server = JiraServer(mode, now=clock).start()
        build_jira(server, WORKFLOW)
        specs = needed_fields(JiraFieldNames(), WORKFLOW, liaison=False)
        ids = {spec.role: server.state.add_custom_field(spec.name, spec.type).id for spec in specs}
        root.mkdir(parents=True)
        site = cls(root, mode, server, clock, ids)
        site.write_config()
        return site

    @property
    def config(self) -> Path:
        return self.root / "casebridge.toml"

    @property
    def audit_path(self) -> Path:
        return self.root / "state.audit.db"

    def write_config(self) -> None:
        credentials = (
            f'deployment = "cloud"\nemail = "{EMAIL}"\napi_token = {{ env = "{TOKEN_ENV}" }}'
            if self.mode == "cloud"
            else f'deployment = "datacenter"\npersonal_access_token = {{ env = "{TOKEN_ENV}" }}'
        )
        # max_attempts 2: the sync job retries each call again (3 attempts), so a fault armed 4+ times
        # in a row exhausts both layers and the case (or the whole pass) fails, as a long outage would
        self.config.write_text(
            f'state = "state.db"\n\n[tracker]\nconnector = "jira"\nurl = "{self.server.url}"\n{credentials}\n'
            'project = "CASE"\nmax_attempts = 2\nretry_floor = 0.5\nretry_ceiling = 60\ntimeout = 20\n',
            encoding="utf-8",
        )

    def stop(self) -> None:
        self.server.stop()

    def issues(self) -> list[Issue]:
        return [i for i in self.server.state.issues.values() if i.project == "CASE"]

    def seed_cases(self, rng: random.Random, count: int, *, late: bool = False) -> None:
        """``count`` cases of mixed kinds created at the anchor, each walked a few random transitions (as
        people would have done in Jira before casebridge ran). ``late``: cases received up to 90 days
        before the anchor, moved straight to submitted, of kinds that remind days before they lapse."""
        state = self.server.state
        project = state.projects["CASE"]
        for i in range(count):
            request_type, basis = rng.choice(REMINDING_KINDS if late else KINDS)
            received = ANCHOR - timedelta(days=rng.randint(0, 90)) if late else ANCHOR
            case = make_case(f"FIA-J-{i:04d}", request_type=request_type, legal_basis=basis, submitted_at=received)
            text = json.dumps(case.to_record(), sort_keys=True)
            data: Any = text
            if self.mode == "cloud":
                data = {"type": "doc", "version": 1, "content": [{"type": "codeBlock", "content": [_text(text)]}]}
            values = {"summary": case.title, self.ids["reference"]: case.reference, self.ids["case_data"]: data}
            with state.lock:
                issue = state.new_issue(project, "Task", values, ANCHOR)
            at = ANCHOR
            if late:
                with state.lock:
                    state.move(issue, WORKFLOW.states["submitted"].status_for("jira"), ANCHOR)
                continue
            for _ in range(rng.randint(0, 5)):
                if not self.move(issue, rng, at := at + timedelta(minutes=rng.randint(1, 600))):
                    break

    def move(self, issue: Issue, rng: random.Random, at: datetime) -> bool:
        """A person moves ``issue`` one random workflow step at ``at``; False at a dead end."""
        nxt = random_walk(rng, WORKFLOW, state_of(issue.status))
        if nxt is None:
            return False
        with self.server.state.lock:
            self.server.state.move(issue, WORKFLOW.states[nxt].status_for("jira"), at)
        return True

    def move_people(self, rng: random.Random, now: datetime, share: float) -> None:
        for issue in self.issues():
            if rng.random() < share:
                self.move(issue, rng, now)

    def arm_faults(self, rng: random.Random) -> None:
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(FAULT_KINDS)
            if kind == "drop_after_write":
                method, path = rng.choice([("PUT", WRITE_PATH), ("POST", COMMENT_PATH)])
            else:
                method, path = rng.choice(
                    [(None, ".*"), ("PUT", WRITE_PATH), ("POST", "/search"), ("GET", ".*"), ("POST", COMMENT_PATH)]
                )
            retry_after = rng.choice([None, rng.randint(1, 30)]) if kind == "429" else None
            self.server.faults.add(
                kind,
                method=method,
                path=path,
                times=rng.choice([1, 1, 2, 3, 4, 7]),
                skip=rng.randint(0, 10),
                retry_after=retry_after,
            )

    def take_fired(self) -> Counter[str]:
        fired: Counter[str] = Counter()
        for fault in self.server.faults.faults:
            fired[fault.kind] += fault.fired
        self.server.faults.clear()
        return fired


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def state_of(status: str) -> str:
    found = WORKFLOW.state_for_status("jira", status)
    assert found is not None, f"fake Jira status {status!r} maps to no workflow state"
    return found


# -- the CLI in a child process --------------------------------------------------------------------------
def _arm_kill(after: int) -> None:
    from casebridge.connectors.jira import JiraConnector

    arm_kill(after, JiraConnector, ("begin_intent", "complete_intent", "drop_intent"))


def _record_sleeps(path: Path) -> None:
    """In the child only: retry waits are written down instead of slept (both retry layers)."""
    import time

    from casebridge.connectors.jira import JiraConnector

    def virtual_sleep(seconds: float) -> None:
        with path.open("a", encoding="utf-8") as out:
            out.write(f"{seconds}\n")

    time.sleep = virtual_sleep  # tenacity's default sleep looks time.sleep up at call time
    JiraConnector._sleep = lambda self, seconds: virtual_sleep(seconds)  # type: ignore[method-assign]


def cli_run(site: Site, args: list[str], *, kill_after: int | None = None) -> int:
    """``casebridge --config <site> ARGS`` in a child process; output goes to ``<root>/last-run.log``.
    Returns the exit code (-9 when killed)."""

    def arm() -> None:
        _record_sleeps(site.root / "sleeps.txt")
        if kill_after is not None:
            _arm_kill(kill_after)

    return cli_in_child(["--config", str(site.config), *args], arm=arm, output=site.root / "last-run.log")


def sync_run(site: Site, now: datetime, **kwargs: Any) -> int:
    site.clock.at = now
    return cli_run(site, ["-v", "sync", "--now", now.isoformat()], **kwargs)


# -- the invariants, from the fake's own data ------------------------------------------------------------
def _moment(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def sla_of(values: dict[str, Any], ids: dict[str, str]) -> SlaFields:
    clocks: dict[str, ClockFields] = {}
    for name in WORKFLOW.clocks:
        due, warn, state = (values.get(ids[f"sla:{name}:{part}"]) for part in ("due", "warn", "state"))
        if due or warn or state:
            clocks[name] = ClockFields(_moment(due), _moment(warn), str(state or ""))
    level = values.get(ids["escalation_level"])
    return SlaFields(clocks=clocks, escalation_level=int(float(level or 0)))


def history_of(issue: Issue) -> list[StatusChange]:
    moves = [(h["created"], i) for h in issue.changelog for i in h["items"] if i.get("fieldId") == "status"]
    first = moves[0][1]["fromString"] if moves else issue.status
    return [StatusChange(issue.created, state_of(first))] + [
        StatusChange(at, state_of(i["toString"])) for at, i in moves
    ]


def written_sequence(issue: Issue, ids: dict[str, str]) -> list[SlaFields]:
    """The SLA fields after each effective write, from the changelog (ground truth)."""
    sla_ids = {fid for role, fid in ids.items() if role.startswith("sla:") or role == "escalation_level"}
    running: dict[str, Any] = {}
    out = []
    for entry in issue.changelog:
        items = [i for i in entry["items"] if i.get("fieldId") in sla_ids]
        for item in items:
            running[item["fieldId"]] = item.get("toString")
        if items:
            out.append(sla_of(running, ids))
    return out


def check_invariants(site: Site, now: datetime) -> Check:
    out = Check()
    issues = site.issues()
    out.cases = len(issues)
    references = Counter(i.values[site.ids["reference"]] for i in issues)
    out.duplicate_cases = sum(n - 1 for n in references.values())
    truth: dict[str, list[SlaFields]] = {}
    for issue in issues:
        raw = issue.values[site.ids["case_data"]]
        case = Case.model_validate(json.loads(adf_text(raw) if isinstance(raw, dict) else raw))
        expected = computed_sla(evaluate_case(case, history_of(issue), WORKFLOW, now))
        held = sla_of(issue.values, site.ids)
        truth[issue.key] = written_sequence(issue, site.ids)
        out.writes += len(truth[issue.key])
        if held != expected or (truth[issue.key] and truth[issue.key][-1] != held):
            out.lost_updates.append(case.reference)
    audit = AuditLog(site.audit_path)
    audited: dict[str, list[SlaFields]] = {}
    for record in audit.records():
        if record["kind"] == SET_FIELDS:
            key = record["data"]["key"]
            before = audited[key][-1] if audited.get(key) else SlaFields()
            audited.setdefault(key, []).append(merged(before, sla_from_json(record["data"]["fields"])))
    out.verify_ok = audit.verify().ok
    out.pending = len(audit.pending())
    audit.close()
    for key in set(truth) | set(audited):
        real, logged = truth.get(key, []), audited.get(key, [])
        if real != logged:
            out.duplicate_records += max(0, len(logged) - len(real))
            out.missing_records += max(0, len(real) - len(logged))
            if len(real) == len(logged):
                out.mismatched.append(key)
    out.verify_cli = cli_run(site, ["audit", "verify"])
    return out


def check_reminders(site: Site, now: datetime) -> ReminderCheck:
    """Ground truth: the fake's comments. Every reminder due at ``now`` is posted, each marker in exactly
    one comment, each posted one with exactly one audit record."""
    markers: Counter[str] = Counter()
    evaluated = []
    for issue in site.issues():
        for comment in issue.comments:
            body = comment["body"]
            markers.update(_MARKER.findall(body if isinstance(body, str) else json.dumps(body)))
        raw = issue.values[site.ids["case_data"]]
        case = Case.model_validate(json.loads(adf_text(raw) if isinstance(raw, dict) else raw))
        history = history_of(issue)
        tracked = TrackedCase(issue.key, case, history[-1].state, issue.updated, history=history)
        evaluated.append((tracked, evaluate_case(case, history, WORKFLOW, now)))
    return reminder_check(markers, plan_reminders(evaluated, WORKFLOW, now=now), site.audit_path)


# -- one scenario ----------------------------------------------------------------------------------------
def run_scenario(seed: int, root: Path, stats: Stats) -> tuple[Check, ReminderCheck]:
    rng = random.Random(seed)
    mode = ("cloud", "datacenter")[seed % 2]
    site = Site.start(root / f"s{seed}", mode)
    try:
        # half the scenarios: cases that came in late and shorter steps, so reminders fall due between runs
        late = rng.random() < 0.5
        site.seed_cases(rng, rng.randint(6, 12) if late else rng.randint(4, 10), late=late)
        step = 2 * 24 * 60 if late else 10 * 24 * 60
        now = ANCHOR + timedelta(days=3)
        for _ in range(rng.randint(2, 5)):
            now += timedelta(minutes=rng.randint(1, step))
            site.move_people(rng, now, share=rng.uniform(0.0, 0.5))
            kind = rng.choices(["clean", "faulty", "kill"], [1, 3, 3])[0]
            if kind != "clean" and rng.random() < 0.8:
                site.arm_faults(rng)
            code = sync_run(site, now, kill_after=rng.randint(1, 10) if kind == "kill" else None)
            stats.sync_runs += 1
            stats.exit_codes[code] += 1
            stats.faults.update(site.take_fired())
            assert code in (0, 1, 3, -signal.SIGKILL), f"seed {seed}: sync exited {code}: {_log(site)}"
            stats.kills += code == -signal.SIGKILL
        for _ in range(3):  # recovery runs: a clean pass must succeed
            stats.recoveries += 1
            stats.sync_runs += 1
            code = sync_run(site, now)
            stats.exit_codes[code] += 1
            if code == 0:
                break
        assert code == 0, f"seed {seed}: recovery run exited {code}: {_log(site)}"
        check = check_invariants(site, now)
        reminders = check_reminders(site, now)
        stats.writes += check.writes
        stats.requests += site.server.counter.total
        stats.modes[mode] += 1
        sleeps = site.root / "sleeps.txt"
        stats.retry_waits += len(sleeps.read_text().split()) if sleeps.exists() else 0
        assert site.server.mismatches == [], f"seed {seed}: traffic off Atlassian's API: {site.server.mismatches[:3]}"
        return check, reminders
    finally:
        site.stop()


def _log(site: Site) -> str:
    path = site.root / "last-run.log"
    return path.read_text(encoding="utf-8")[-1500:] if path.exists() else "(no output)"


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tmpfs directory when the host has one (a SIGKILL loses no page cache, so durability is the same
    and fsyncs stop dominating the run time); the token for the children's config."""
    monkeypatch.setenv(TOKEN_ENV, "unused")
    connector_class("jira")  # load the entry points once, before the forks
    from casebridge import cli  # noqa: F401  (imported before forking: each child starts at once)

    yield from tmpfs_dir(tmp_path, "casebridge-jira-faults-")


def test_fault_injection_harness_on_jira(scratch: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    stats = Stats()
    seeds = range(BASE_SEED, BASE_SEED + RUNS)
    for seed in seeds:
        # each mode has its own credentials: the token travels by environment variable only
        monkeypatch.setenv(TOKEN_ENV, CLOUD_TOKEN if seed % 2 == 0 else DC_PAT)
        check, reminders = run_scenario(seed, scratch, stats)
        stats.scenarios += 1
        stats.duplicates += check.duplicate_records + check.duplicate_cases
        stats.lost += len(check.lost_updates) + check.missing_records
        stats.reminders += reminders.posted
        stats.reminder_duplicates += reminders.duplicates
        stats.reminders_lost += len(reminders.lost)
        if not check.ok or not reminders.ok:
            stats.failed[seed] = repr((check, reminders))
    faults = sum(stats.faults.values())
    codes = dict(sorted(stats.exit_codes.items()))
    with capsys.disabled():
        print(
            f"\njira fault harness: seeds {seeds.start}..{seeds.stop - 1}: {stats.scenarios} scenarios "
            f"({dict(stats.modes)}), {stats.sync_runs} sync runs (exit codes {codes}), "
            f"{faults} faults injected ({dict(sorted(stats.faults.items()))}), {stats.kills} kills (SIGKILL), "
            f"{stats.recoveries} recovery runs, {stats.retry_waits} retry waits recorded (not slept), "
            f"{stats.requests} requests, {stats.writes} effective SLA writes, "
            f"duplicates {stats.duplicates}, lost updates {stats.lost}; reminders posted {stats.reminders}, "
            f"duplicate reminders {stats.reminder_duplicates}, lost reminders {stats.reminders_lost}; "
            f"failed seeds {sorted(stats.failed)}"
        )
    replay = "replay with CASEBRIDGE_JIRA_FAULT_SEED=<seed> CASEBRIDGE_JIRA_FAULT_RUNS=1"
    assert not stats.failed, f"{replay}: {stats.failed}"
    assert stats.duplicates == 0 and stats.lost == 0
    assert stats.reminder_duplicates == 0 and stats.reminders_lost == 0
    if RUNS >= 100:  # the harness must actually have exercised what it claims
        assert faults >= 100 and stats.kills >= 25 and stats.faults["drop_after_write"] >= 10
        assert stats.faults["429"] >= 10 and stats.faults["500"] + stats.faults["503"] >= 10
        assert stats.reminders >= 20


def test_fault_skip_lets_the_first_matches_through() -> None:
    """``skip`` (used above to fire faults in the middle of a run) passes N matching requests first."""
    from tests.jira_server.faults import FaultPlan

    plan = FaultPlan()
    plan.add("503", method="PUT", path=WRITE_PATH, times=1, skip=2)
    taken = [plan.take("PUT", f"/rest/api/2/issue/CASE-{n}") for n in range(4)]
    assert [f.kind if f else None for f in taken] == [None, None, "503", None]
    assert plan.take("GET", "/rest/api/2/issue/CASE-1") is None


def test_sync_on_jira_reads_back_its_writes_by_key(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After each SLA write the sync job learns the issue's new ``updated`` with one GET by key, not with a
    text search per write (10,000 writes were 10,000 JQL searches on a first sync)."""
    monkeypatch.setenv(TOKEN_ENV, DC_PAT)
    site = Site.start(scratch / "by-key", "datacenter")
    try:
        site.seed_cases(random.Random(7), 6)
        now = ANCHOR + timedelta(days=3)
        assert sync_run(site, now) == 0, _log(site)
        routes = site.server.counter.snapshot()
        writes = routes.get("PUT /rest/api/2/issue/{issueIdOrKey}", 0)
        # 6 SLA writes, and 6 Provider-field corrections: people created these issues without the
        # directory's canonical name, and the first pass writes it once (issue 15)
        sla_writes = 6
        assert writes == sla_writes + 6
        # one GET per SLA write, and one per pair of cases the seed made share an identifier (before its link)
        links = routes.get("POST /rest/api/2/issueLink", 0)
        assert routes.get("GET /rest/api/2/issue/{issueIdOrKey}", 0) == sla_writes + links
        assert routes.get("POST /rest/api/2/search", 0) == 1  # the listing only
        assert check_invariants(site, now).ok
        assert sync_run(site, now + timedelta(minutes=5)) == 0, _log(site)  # the next pass writes nothing
        assert site.server.counter.writes == writes + links  # no write, no second link
    finally:
        site.stop()

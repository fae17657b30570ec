"""Law-counted deadlines through the CLI (``--now``): status text and ``--json``, ``workflow check``,
``sync --dry-run`` showing the deadlines a rule change moves, the audit record of the write, the dossier
and ``extend``. The arithmetic is in tests/test_counting.py; the figures are repeated here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from casebridge import workflows as workflows_package
from casebridge.state.audit import AuditLog
from tests.cli_runner import Cli

ROOT = Path(__file__).resolve().parent.parent
# the package's own file (a mutation run stages the package apart from the tests)
WORKFLOW = (Path(workflows_package.__file__).resolve().parent / "lawful-access.toml").read_text()
EU_RULE = 'source = "Reg. (EU) 2023/1543 Art. 10(2)"\ncounting = "eu-1182-71"\n'


def _case(reference: str, request_type: str, basis: str, received: str, provider: str = "Meta") -> dict:
    return {
        "reference": reference,
        "title": f"{request_type} order",
        "provider": provider,
        "request_type": request_type,
        "legal_basis": basis,
        "court_order_ref": "EPOC-2027-IE-0001",
        "requesting_agency": "FIA Cyber Crime Wing",
        "officer": "SI Bilal Ahmed",
        "officer_email": "bilal.ahmed@fia.example.gov.pk",
        "timezone": "UTC",
        "offence": "Extortion",
        "statute": "PECA 2016 s.21",
        "facts": "Threats from the account.",
        "identifiers": [{"type": "username", "value": "threat.account.77"}],
        "submitted_at": received,
        "state": "submitted",
        "state_since": received,
        "article3_checked_by": "SI Bilal Ahmed",
        "article3_checked_at": received,
    }


CASES = [
    # Fri 23 Apr 11:00Z, 10 days: day 10 = Mon 3 May, the Irish May bank holiday -> Tue 4 May 24:00 IST
    _case("EPOC-1", "subscriber", "eu-epo", "2027-04-23T11:00:00Z"),
    # received 13:45Z: 8 hours from the next hour, 14:00Z -> 22:00Z
    _case("EPOC-2", "emergency", "eu-epo", "2027-05-14T13:45:00Z"),
    # 2703(f): exactly 90 x 24 h -> 22 Jul 11:00Z
    _case("PRES-1", "preservation", "us-2703f", "2027-04-23T11:00:00Z"),
    # Microsoft: no EU entity in the directory -> the default calendar, said so
    _case("EPOC-3", "subscriber", "eu-epo", "2027-04-23T11:00:00Z", provider="Microsoft"),
]


@pytest.fixture
def setup(cli_dir: Path, cli: Cli) -> Path:
    (cli_dir / "cases.json").write_text(json.dumps(CASES))
    (cli_dir / "wf.toml").write_text(WORKFLOW)
    (cli_dir / "casebridge.toml").write_text('workflow = "wf.toml"\n')
    code, out, err = cli("intake", "cases.json", "--now", "2027-05-14T14:00:00Z")
    assert code == 0, out + err
    return cli_dir


def test_status_states_the_rule_of_each_due(setup: Path, cli: Cli) -> None:
    code, out, _ = cli("status", "--now", "2027-05-14T14:00:00Z")
    assert code == 0
    lines = out.splitlines()
    epoc1 = lines.index("EPOC-1  [submitted]  subscriber x eu-epo  Meta")
    assert lines[epoc1 + 1].split()[:4] == ["legal_deadline", "legal", "breached", "due"]
    assert "2027-05-04T23:00:00+00:00" in lines[epoc1 + 1]
    assert lines[epoc1 + 2].strip() == (
        "due 2027-05-04 24:00 Europe/Dublin, counted under Reg. (EEC, Euratom) No 1182/71 Art. 3"
    )
    epoc2 = lines.index("EPOC-2  [submitted]  emergency x eu-epo  Meta")
    assert "2027-05-14T22:00:00+00:00" in lines[epoc2 + 1]
    assert lines[epoc2 + 2].strip().startswith("due 2027-05-14 23:00 Europe/Dublin, counted under Reg.")
    pres = lines.index("PRES-1  [submitted]  preservation x us-2703f  Meta")
    assert "2027-07-22T11:00:00+00:00" in lines[pres + 1]
    assert "counted" not in lines[pres + 2]  # elapsed time: the plain due time says it all
    epoc3 = lines.index("EPOC-3  [submitted]  subscriber x eu-epo  Microsoft")
    assert lines[epoc3 + 2].strip() == (
        "due 2027-05-03 24:00 UTC, counted under Reg. (EEC, Euratom) No 1182/71 Art. 3; "
        "EU establishment not known: default calendar UTC, weekends only"
    )


def test_status_json_has_a_counting_field(setup: Path, cli: Cli) -> None:
    code, cases = cli.json("status", "--now", "2027-05-14T14:00:00Z")
    assert code == 0
    by_ref = {c["reference"]: {k["name"]: k for k in c["clocks"]} for c in cases}
    epoc1 = by_ref["EPOC-1"]["legal_deadline"]
    assert epoc1["due_at"] == "2027-05-04T23:00:00+00:00"
    assert epoc1["counting"] == {
        "rule": "eu-1182-71",
        "citation": "Reg. (EEC, Euratom) No 1182/71 Art. 3",
        "zone": "Europe/Dublin",
        "country": "IE",
        "calendar": "provider directory",
        "calendar_known": True,
        "establishment": "Meta Platforms Ireland Limited",
        "text": "due 2027-05-04 24:00 Europe/Dublin, counted under Reg. (EEC, Euratom) No 1182/71 Art. 3",
    }
    assert by_ref["PRES-1"]["preservation"]["counting"]["rule"] == "elapsed"
    unknown = by_ref["EPOC-3"]["legal_deadline"]["counting"]
    assert (unknown["calendar_known"], unknown["calendar"], unknown["zone"]) == (False, "default", "UTC")


def test_a_rule_change_moves_live_deadlines_shown_by_dry_run_and_audited(setup: Path, cli: Cli) -> None:
    # the agency's copy counted Art. 10(2) as elapsed time: intake wrote 10 x 24 h (Mon 3 May 11:00Z)
    wf = setup / "wf.toml"
    wf.write_text(WORKFLOW.replace(EU_RULE, EU_RULE.replace("eu-1182-71", "elapsed")))
    _, listed = cli.json("status", "EPOC-1", "--now", "2027-04-24T00:00:00Z")
    assert listed[0]["clocks"][1]["due_at"] == "2027-05-03T11:00:00+00:00"
    code, out, _ = cli("sync", "--now", "2027-04-24T00:00:00Z")
    assert code == 0
    # back to the law's rule: the dry run shows the moved deadline before anything is written
    wf.write_text(WORKFLOW)
    code, out, _ = cli("sync", "--dry-run", "--now", "2027-04-24T00:00:00Z")
    assert code == 0
    assert (
        "would set EPOC-1: legal_deadline: running due 2027-05-03T11:00:00+00:00 -> "
        "running due 2027-05-04T23:00:00+00:00 (counted eu-1182-71)"
    ) in out.splitlines()
    code, out, _ = cli("sync", "--now", "2027-04-24T00:00:00Z")
    assert code == 0
    records = _audit("sync.set_fields", setup)
    moved = [r["data"] for r in records if r["data"]["reference"] == "EPOC-1"][-1]
    assert moved["counting"] == {"legal_deadline": "eu-1182-71"}
    assert moved["fields"]["clocks"]["legal_deadline"]["due_at"].startswith("2027-05-04T23:00:00")


def test_workflow_check_rejects_an_unknown_rule(setup: Path, cli: Cli) -> None:
    bad = setup / "bad.toml"
    bad.write_text(WORKFLOW.replace(EU_RULE, EU_RULE.replace("eu-1182-71", "eu-1182")))
    code, out, err = cli("workflow", "check", str(bad))
    assert code == 2 and out == ""
    assert err.strip() == (
        f"casebridge: {bad}: policies[2].counting <- unknown counting rule 'eu-1182' "
        "(did you mean 'eu-1182-71'? known: elapsed, eu-1182-71)"
    )


def test_the_dossier_cites_the_laws_deadline(setup: Path, cli: Cli) -> None:
    # at 01:00Z on Wed 5 May EPOC-1 is 2 h past Tue 4 May 24:00 IST: level 1
    _, out, _ = cli("escalate", "--dry-run", "--now", "2027-05-05T01:00:00Z")
    text = " ".join(out.split())
    assert "would post: EPOC-1/legal_deadline/L1" in text
    assert (
        "Deadline in law: due 2027-05-04 24:00 Europe/Dublin, counted under Reg. (EEC, Euratom) No 1182/71 Art. 3"
    ) in text
    # 10 x 24 h (Mon 3 May 11:00Z) would have escalated a day and a half early: at 12:00Z nothing for it
    _, out, _ = cli("escalate", "--dry-run", "--now", "2027-05-03T12:00:00Z")
    assert "EPOC-1/" not in out


def test_extend_counts_by_the_same_rule(cli_dir: Path, cli: Cli) -> None:
    # EU preservation Fri 23 Apr 11:00Z: 60 days -> Tue 22 Jun 24:00 IST; +30 -> Thu 22 Jul 24:00 IST
    order = _case("PR-1", "preservation", "eu-epo-pr", "2027-04-23T11:00:00Z")
    (cli_dir / "cases.json").write_text(json.dumps([order]))
    assert cli("intake", "cases.json", "--now", "2027-05-01T00:00:00Z")[0] == 0
    code, out, err = cli("extend", "PR-1", "preservation", "--now", "2027-06-01T00:00:00Z")
    assert code == 0, err
    assert out.strip() == (
        "PR-1: preservation extended by 30d under Reg. (EU) 2023/1543 Art. 11(1) (1 of 1): due "
        "2027-06-22T23:00:00+00:00 -> 2027-07-22T23:00:00+00:00 (due 2027-07-22 24:00 Europe/Dublin, "
        "counted under Reg. (EEC, Euratom) No 1182/71 Art. 3)"
    )
    assert _audit("extension.recorded")[-1]["data"]["counting"] == "eu-1182-71"


def _audit(kind: str, folder: Path | None = None) -> list[dict]:
    """Audit records of ``kind``: beside the config file in ``folder``, else in the user's state folder."""
    folder = folder or Path(os.environ["XDG_STATE_HOME"]) / "casebridge"
    log = AuditLog(folder / "casebridge-state.audit.db")
    try:
        return [r for r in log.records() if r["kind"] == kind]
    finally:
        log.close()

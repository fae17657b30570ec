"""`casebridge escalate` end to end on the embedded tracker and its liaison queue."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from tests.cli_runner import Cli
from tests.test_cli import EXAMPLES, INTAKE_NOW

NOW = "2026-12-01T09:00:00Z"
# at NOW these escalating clocks are breached (see examples/cases.json):
#  0151 EU emergency EPO, received 11-30 20:00Z, due 12-01 04:00Z, 5 h overdue -> level 2 (after 4 h)
#  0142 voluntary subscriber, received 10-20 05:00Z, 30 d follow-up due 11-19 05:00Z -> level 1
#  0154 EU preservation, received 10-01 08:00Z, 60 d due 11-30 08:00Z -> level 1
#  0159 NIS2 registrar, due 11-30 10:00Z, but it has no Article 3 self-check -> blocked
EXPECTED_KEYS = {
    "FIA-CCW-2026-0151/legal_deadline/L2",
    "FIA-CCW-2026-0142/followup/L1",
    "FIA-CCW-2026-0154/preservation/L1",
}


pytestmark = pytest.mark.usefixtures("cli_dir")  # tests/conftest.py: cwd tmp_path, no CASEBRIDGE_CONFIG


def _tracker(tmp_path: Path) -> LocalConnector:
    # without a config the embedded tracker lives in the user's data folder (see tests/conftest.py)
    data_dir = Path(os.environ["XDG_DATA_HOME"]) / "casebridge"
    return LocalConnector(LocalConfig(path=str(data_dir / "casebridge.db")), load_workflow())


def test_escalate_posts_once_per_breached_clock_then_nothing(cli: Cli, tmp_path: Path) -> None:
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    code, out, _ = cli("escalate", "--yes", "--json", "--now", NOW)
    assert code == 1  # one case blocked (no Article 3 self-check)
    data = json.loads(out)
    assert {o["dedupe_key"] for o in data["outcomes"] if o["status"] == "posted"} == EXPECTED_KEYS
    assert data["blocked_cases"] == [{"reference": "FIA-CCW-2026-0159", "field": "article3_checked_by"}]
    tracker = _tracker(tmp_path)
    assert {p.dedupe_key for p in tracker.liaison_items()} == EXPECTED_KEYS
    case = tracker.find_case("FIA-CCW-2026-0142")
    assert case is not None and case.state == "escalated"
    assert len(tracker.links(case.key)) == 1
    tracker.close()

    code, out, _ = cli("escalate", "--yes", "--json", "--now", NOW)
    assert [o for o in json.loads(out)["outcomes"] if o["status"] == "posted"] == []
    tracker = _tracker(tmp_path)
    assert len(tracker.liaison_items()) == 3
    tracker.close()


def test_dry_run_posts_nothing_and_shows_the_dossier(cli: Cli, tmp_path: Path) -> None:
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    code, out, _ = cli("escalate", "--dry-run", "--now", NOW)
    assert code == 1
    assert out.count("would post: ") == 3
    assert "Article 3" in out
    tracker = _tracker(tmp_path)
    assert tracker.liaison_items() == []
    tracker.close()


def test_no_terminal_without_yes_is_refused(cli: Cli, tmp_path: Path) -> None:
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    code, _, err = cli("escalate", "--now", NOW)
    assert code == 2
    assert "standard input is not a terminal: pass --yes" in err
    tracker = _tracker(tmp_path)
    assert tracker.liaison_items() == []
    tracker.close()


def test_named_case_not_due_says_why(cli: Cli) -> None:
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    code, out, _ = cli("escalate", "--yes", "--case", "FIA-CCW-2026-0152", "--now", NOW)
    assert code == 0
    assert "not due: FIA-CCW-2026-0152/legal_deadline: clock is running, not breached" in out

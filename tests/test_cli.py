"""The CLI end to end on the embedded tracker: exit codes, one-line errors, deterministic --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runner import Cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases.json"
NOW = "2026-12-01T09:00:00Z"
# when the samples are imported (README's worked example): the embedded tracker stamps the creation with
# --now, so a fixed --now later never meets cases created "today" by the real clock
INTAKE_NOW = "2026-12-01T02:00:00Z"  # the samples' latest moment: intake refuses later ones


pytestmark = pytest.mark.usefixtures("cli_dir")  # tests/conftest.py: cwd tmp_path


def test_intake_sync_status_json_is_deterministic(cli: Cli) -> None:
    assert cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)[0] == 0
    code, out, _ = cli("sync", "--now", NOW)
    assert code == 0 and "14 cases evaluated" in out
    first = cli("status", "--json", "--now", NOW)
    second = cli("status", "--json", "--now", NOW)
    assert first == second
    data = json.loads(first[1])
    assert [c["reference"] for c in data] == sorted(c["reference"] for c in data)
    emergency = next(c for c in data if c["reference"] == "FIA-CCW-2026-0151")
    legal = next(c for c in emergency["clocks"] if c["name"] == "legal_deadline")
    # received 2026-11-30T20:00Z; 8 hours counted under Reg. 1182/71 Art. 3(1): the hour of the event
    # (20:00-21:00) is not counted, so 21:00Z + 8 h = 05:00Z = 10:00 in the case's Asia/Karachi; the
    # warning stays on elapsed time (20:00Z + 4 h = 00:00Z = 05:00+05). Microsoft's EU establishment is
    # not in the shipped directory (not sourced), so the default calendar is used and said so.
    assert legal == {
        "name": "legal_deadline",
        "kind": "legal",
        "started_at": "2026-12-01T01:00:00+05:00",
        "due_at": "2026-12-01T10:00:00+05:00",
        "counting": {
            "rule": "eu-1182-71",
            "citation": "Reg. (EEC, Euratom) No 1182/71 Art. 3",
            "zone": "UTC",
            "country": None,
            "calendar": "default",
            "calendar_known": False,
            "establishment": None,
            "text": "due 2026-12-01 05:00 UTC, counted under Reg. (EEC, Euratom) No 1182/71 Art. 3; "
            "EU establishment not known: default calendar UTC, weekends only",
        },
        "warn_at": "2026-12-01T05:00:00+05:00",
        "state": "breached",
        "remaining_seconds": -4 * 3600,  # NOW 09:00Z = 14:00+05, 4 h past the due 10:00+05
        "source": "Reg. (EU) 2023/1543 Art. 10(4): emergency production within 8 hours of receipt",
        "next_reminder": None,  # lapsed: no reminder ahead
    }


def test_second_sync_writes_nothing(cli: Cli) -> None:
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    cli("sync", "--now", NOW)
    code, out, _ = cli("sync", "--now", NOW)
    assert code == 0
    assert "set " not in out


def test_reimport_changes_nothing(cli: Cli) -> None:
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    code, out, _ = cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    assert code == 0 and out.strip().endswith("created 0, updated 0, unchanged 14")


def test_bad_intake_is_one_line_exit_2_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "reference,title,provider,request_type,legal_basis,submitted_at\n"
        "X-1,t,p,subscriber,voluntary,2026-11-01T10:00:00\n"
    )
    code, out, err = cli("intake", str(bad))
    assert code == 2
    assert err.strip().splitlines() == [
        f"casebridge: {bad}:2: submitted_at: '2026-11-01T10:00:00' has no offset; "
        "timestamps need Z or an offset like +05:00"
    ]
    assert "Traceback" not in err
    code, out, _ = cli("status", "--json", "--now", NOW)
    assert json.loads(out) == []


def test_forbidden_transition_is_an_input_error_exit_2(cli: Cli) -> None:
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    code, _, err = cli("transition", "FIA-CCW-2026-0160", "fulfilled", "--at", NOW)
    assert code == 2
    assert "no transition legal_review -> fulfilled" in err


def test_transition_pauses_operational_clock(cli: Cli) -> None:
    cli("intake", str(EXAMPLES), "--now", INTAKE_NOW)
    code, _, _ = cli("transition", "FIA-CCW-2026-0142", "awaiting_requester", "--at", "2026-11-01T00:00:00Z")
    assert code == 0
    _, out, _ = cli("status", "FIA-CCW-2026-0142", "--json", "--now", NOW)
    followup = next(c for c in json.loads(out)[0]["clocks"] if c["name"] == "followup")
    assert followup["state"] == "paused" and followup["due_at"] is None


def test_workflow_check_broken_file(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "wf.toml"
    legal_clock = 'kind = "legal"\ncalendar = "24x7"\n'
    text = (ROOT / "workflows" / "lawful-access.toml").read_text()
    broken.write_text(text.replace(legal_clock, legal_clock + 'pause_in = ["awaiting_requester"]\n', 1))
    code, _, err = cli("workflow", "check", str(broken))
    assert code == 2
    assert err.strip() == (
        f"casebridge: {broken}: clocks.legal_deadline.pause_in <- a legal clock never pauses; "
        "remove pause_in or make it operational"
    )


def test_workflow_show_mermaid(cli: Cli) -> None:
    code, out, _ = cli("workflow", "show", "--format", "mermaid")
    assert code == 0
    assert out.startswith("stateDiagram-v2\n    [*] --> draft\n")
    assert "    approved --> submitted" in out


def test_config_error_names_file_and_key(cli: Cli, tmp_path: Path) -> None:
    cfg = tmp_path / "casebridge.toml"
    cfg.write_text('[tracker]\nconnector = "local"\npaht = "x.db"\n')
    code, _, err = cli("status")
    assert code == 2
    assert err.strip() == "casebridge: casebridge.toml: tracker.paht <- unknown key; did you mean 'path'?"


def test_unknown_connector(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "casebridge.toml").write_text('[tracker]\nconnector = "trello"\n')
    code, _, err = cli("status")
    assert code == 2 and "unknown connector 'trello' (installed: " in err


def test_bad_now_is_usage_error(cli: Cli) -> None:
    code, _, err = cli("status", "--now", "2026-12-01T09:00:00")
    assert code == 2 and "has no offset" in err


def test_verbose_shows_traceback_in_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    quiet = subprocess.run(
        [sys.executable, "-m", "casebridge.cli", "intake", str(bad)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    loud = subprocess.run(
        [sys.executable, "-m", "casebridge.cli", "-v", "intake", str(bad)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr and "Traceback" in loud.stderr


def test_replayed_transition_before_the_last_sync_is_still_synced(cli: Cli) -> None:
    # the README walk-through: sync at 09:00, then a person's move recorded --at 08:00 (a replay out of
    # wall-clock order); the next incremental sync must still see it and resume the paused clock
    cli("intake", str(EXAMPLES), "--now", "2026-12-01T02:00:00Z")
    cli("sync", "--now", NOW)
    cli("transition", "FIA-CCW-2026-0143", "acknowledged", "--at", "2026-12-01T08:00:00Z")
    code, out, _ = cli("sync", "--now", NOW)
    assert code == 0
    # times in the case's zone (Asia/Karachi), as `status` shows them
    assert "set FIA-CCW-2026-0143: followup: paused due - -> running due 2026-12-31T13:00:00+05:00" in out


def test_the_lazy_command_table_matches_every_command() -> None:
    # `casebridge --help` lists commands from cli.COMMANDS without importing them: it must say what they say
    import importlib

    import click

    from casebridge.cli import COMMANDS, cli

    found = {}
    for module_name in {module for module, _ in COMMANDS.values()}:
        for command in importlib.import_module(f"casebridge.cli.{module_name}").COMMANDS:
            found[command.name] = (module_name, command)
    assert set(found) == set(COMMANDS)
    for name, (module_name, command) in found.items():
        assert COMMANDS[name][0] == module_name
        for limit in (40, 80, 200):
            listed = click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit)
            assert listed == command.get_short_help_str(limit)
    assert cli.get_command(click.Context(cli), "status") is found["status"][1]


def test_help_imports_no_command_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from casebridge.cli import main\n"
        "try: main(['--help'])\n"
        "except SystemExit: pass\n"
        "heavy = [m for m in ('pydantic', 'holidays', 'markdown', 'casebridge.connectors', 'casebridge.cli.cases_cmds',"
        " 'casebridge.cli.intake_cmds', 'casebridge.cli.change_cmds') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Commands:" in out and "HEAVY []" in out


def test_status_imports_nothing_intake_or_extend_need(tmp_path: Path) -> None:
    # `status` is run far more often than intake or extend: its start-up should not pay for their modules
    import subprocess
    import sys

    code = (
        "import sys; from casebridge.cli import main\n"
        "try: main(['status'])\n"
        "except SystemExit: pass\n"
        "extra = [m for m in ('casebridge.app.intake', 'casebridge.app.intake_stream', 'casebridge.app.extend',"
        " 'casebridge.workflows.intake', 'casebridge.state.lock') if m in sys.modules]\n"
        "print('EXTRA', extra)"
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
        "XDG_DATA_HOME": str(tmp_path / "d"),
    }
    env.pop("CASEBRIDGE_CONFIG", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert "no cases yet" in done.stdout + done.stderr
    assert "EXTRA []" in done.stdout

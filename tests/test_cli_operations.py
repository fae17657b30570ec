"""Running casebridge as an admin would (issue 12): where files live, quiet cron runs, secrets the way
admins keep them, one meaning per exit code, config errors that name the key, setup without network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from casebridge.cli.config import EXAMPLE
from tests.cli_runner import Cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases.json"
NOW = "2026-12-01T09:00:00Z"
KEY = "Xq7-RedmineKey-5521-secret"


pytestmark = pytest.mark.usefixtures("cli_dir")  # tests/conftest.py: cwd tmp_path


def user_files(home: Path) -> list[Path]:
    return sorted(p for p in home.rglob("*") if p.is_file())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def redmine_config(
    folder: Path, api_key: str = '{ env = "CB_TEST_REDMINE_KEY" }', url: str = "http://127.0.0.1:9"
) -> Path:
    # port 9 (discard) on loopback: nothing listens there, a connection is refused at once
    return write(
        folder / "casebridge.toml",
        f'[tracker]\nconnector = "redmine"\nurl = "{url}"\napi_key = {api_key}\nproject = "data-requests"\n',
    )


# -- where things live ------------------------------------------------------------------------------------
def test_without_config_every_directory_sees_the_same_cases(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir(), second.mkdir()
    monkeypatch.chdir(first)
    assert cli("intake", str(EXAMPLES), "--now", "2026-12-01T02:00:00Z")[0] == 0
    _, from_first, _ = cli("status", "--json", "--now", NOW)
    monkeypatch.chdir(second)
    _, from_second, _ = cli("status", "--json", "--now", NOW)
    assert len(json.loads(from_first)) == 14 and from_first == from_second
    assert list(first.iterdir()) == [] and list(second.iterdir()) == []  # nothing in the working directories


def test_read_only_commands_create_nothing_and_say_how_to_start(
    cli: Cli, tmp_path: Path, private_user_dirs: Path
) -> None:
    for args in (
        ["status"],
        ["info"],
        ["escalate", "--dry-run"],
        ["sync", "--dry-run"],
        ["intake", "--dry-run", str(EXAMPLES)],
    ):
        code, out, err = cli(*args, "--now", NOW) if args[0] != "info" else cli(*args)
        assert code == 0, (args, out, err)
    assert user_files(private_user_dirs) == [] and list(tmp_path.iterdir()) == []
    _, out, _ = cli("status")
    assert "no cases yet" in out and "casebridge intake FILE" in out


def test_info_names_the_config_and_every_file(cli: Cli, tmp_path: Path) -> None:
    _, out, _ = cli("info", "--json")
    data = json.loads(out)
    assert data["config"] is None and data["workflow"] == "lawful-access"
    assert data["files"]["tracker path"]["path"].endswith("casebridge/casebridge.db")
    write(tmp_path / "casebridge.toml", 'state = "var/state.db"\n[tracker]\nconnector = "local"\npath = "cases.db"\n')
    _, out, _ = cli("info", "--json")
    data = json.loads(out)
    assert data["config"] == "casebridge.toml"
    assert data["files"]["state store"]["path"] == str(tmp_path / "var" / "state.db")
    assert data["files"]["tracker path"]["path"] == str(tmp_path / "cases.db")


def test_relative_paths_resolve_against_the_config_folder_not_the_working_directory(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    write(conf / "casebridge.toml", '[tracker]\nconnector = "local"\npath = "cases.db"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli("--config", str(conf / "casebridge.toml"), "intake", str(EXAMPLES))[0] == 0
    assert (conf / "cases.db").exists() and list(elsewhere.iterdir()) == []
    assert oct((conf / "cases.db").stat().st_mode & 0o777) in ("0o600", "0o644")  # the file mode is issue 11's


# -- quiet means quiet --------------------------------------------------------------------------------------
def test_quiet_sync_on_a_healthy_store_prints_nothing(cli: Cli) -> None:
    assert cli("-q", "intake", str(EXAMPLES), "--now", "2026-12-01T02:00:00Z") == (0, "", "")
    assert cli("sync", "-q", "--now", NOW) == (0, "", "")  # global option after the subcommand
    assert cli("-q", "sync", "--now", NOW) == (0, "", "")


def test_quiet_sync_with_an_unset_key_is_one_line_on_stderr_exit_2(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redmine_config(tmp_path)
    monkeypatch.delenv("CB_TEST_REDMINE_KEY", raising=False)
    code, out, err = cli("-q", "sync")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "CB_TEST_REDMINE_KEY is not set" in err


# -- exit codes -------------------------------------------------------------------------------------------
def test_exit_code_table(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("intake", str(EXAMPLES), "--now", "2026-12-01T02:00:00Z")[0] == 0
    assert cli("status", "--now", NOW)[0] == 0
    assert cli("sync", "--now", NOW)[0] == 0
    assert cli("escalate", "--yes", "--now", NOW)[0] == 1  # 0159 is blocked: by hand, that is a failure
    assert cli("transition", "FIA-CCW-2026-0160", "fulfilled", "--at", NOW)[0] == 2  # forbidden move
    assert cli("status", "--bogus")[0] == 2
    assert cli("status", "--now", "yesterday")[0] == 2
    assert cli("transition", "FIA-CCW-2026-0160", "acknowledged", "--at", "2026-12-01T08:00")[0] == 2
    assert cli("sync", "--every", "10s")[0] == 2 and cli("sync", "--every", "60")[0] == 2
    redmine_config(tmp_path)
    monkeypatch.setenv("CB_TEST_REDMINE_KEY", KEY)
    code, out, err = cli("sync")
    assert code == 3 and KEY not in out + err  # nothing listens on 127.0.0.1:9


def test_a_blocked_case_fails_a_scheduled_sync_only_with_strict(cli: Cli) -> None:
    assert cli("intake", str(EXAMPLES), "--now", "2026-12-01T02:00:00Z")[0] == 0
    code, out, err = cli("-q", "sync", "--escalate", "--now", NOW)
    assert code == 0 and out == "" and "not escalated: FIA-CCW-2026-0159" in err
    code, _, _ = cli("sync", "--escalate", "--strict", "--now", NOW)
    assert code == 1


def test_sync_json_with_escalation_is_one_document(cli: Cli) -> None:
    assert cli("intake", str(EXAMPLES), "--now", "2026-12-01T02:00:00Z")[0] == 0
    code, out, _ = cli("sync", "--escalate", "--json", "--now", NOW)
    data = json.loads(out)  # raises on two documents in a row
    assert code == 0 and len(data["escalation"]["outcomes"]) == 3


def test_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "casebridge.cli", "intake", str(EXAMPLES)], check=True, capture_output=True)
    status = f"{sys.executable} -m casebridge.cli status --now {NOW}"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", f"{status} | head -1"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "" and done.stdout.startswith("FIA-CCW-2026-0142")
    # `true` exits before casebridge has started: every write meets a closed pipe
    done = subprocess.run(["bash", "-o", "pipefail", "-c", f"{status} | true"], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")


# -- config errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[tracker]\nconnector = "local"\npaht = "x.db"\n', "tracker.paht <- unknown key; did you mean 'path'?"),
        ('[sync]\nsafety_valve = "20"\n', "sync.safety_valve <- Input should be a valid integer"),
        ('[sync]\noverlap = "soon"\n', "sync.overlap <- "),
        ("[sycn]\n", "sycn <- unknown key; did you mean 'sync'?"),
        ('[escalation]\nallowlist = ["facts", "passport"]\n', "allowlist <- unknown case field(s) 'passport'"),
        (
            '[tracker]\nconnector = "redmine"\nurl = "http://x"\napi_key = { env = "K" }\nprojct = "p"\n',
            "tracker.projct <- unknown key; did you mean 'project'?",
        ),
    ],
)
def test_config_errors_name_the_file_and_the_dotted_key_before_anything_is_written(
    cli: Cli, tmp_path: Path, private_user_dirs: Path, text: str, message: str
) -> None:
    write(tmp_path / "casebridge.toml", text)
    for args in (["check"], ["sync"], ["intake", str(EXAMPLES)]):
        code, _, err = cli(*args)
        assert code == 2 and err.count("\n") == 1, (args, err)
        assert err.startswith("casebridge: casebridge.toml: ") and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["casebridge.toml"]


def test_config_example_prints_the_shipped_example(cli: Cli) -> None:
    code, out, _ = cli("config", "example")
    assert code == 0 and out == EXAMPLE.read_text(encoding="utf-8") and "[tracker]" in out


def test_version_flag(cli: Cli) -> None:
    code, out, _ = cli("-V")
    assert code == 0 and out.startswith("casebridge, version ")


# -- secrets as admins keep them ------------------------------------------------------------------------------
@pytest.mark.parametrize("pointer", ["file", "credential", "command"])
def test_secret_pointers_take_the_first_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pointer: str) -> None:
    from casebridge.connectors.secrets import SecretRef

    secret_file = write(tmp_path / "redmine-key", f"{KEY}\nlogin: casebridge\nurl: https://redmine.example\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    ref = {
        "file": SecretRef(file=str(secret_file)),
        "credential": SecretRef(credential="redmine-key"),
        "command": SecretRef(command=f"cat {secret_file}"),
    }[pointer]
    assert ref.resolve(field="tracker.api_key") == KEY


def test_a_missing_credential_directory_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from casebridge.connectors.secrets import SecretRef
    from casebridge.errors import SecretError

    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(SecretError, match=r"\$CREDENTIALS_DIRECTORY is not set"):
        SecretRef(credential="redmine-key").resolve(field="tracker.api_key")


def test_a_url_with_credentials_is_refused_without_repeating_them(cli: Cli, tmp_path: Path) -> None:
    redmine_config(tmp_path, url=f"http://officer:{KEY}@127.0.0.1:9")
    code, out, err = cli("-vv", "check")
    assert code == 2 and KEY not in out + err
    assert "tracker.url <- " in err and "user name or password" in err


# -- setup ------------------------------------------------------------------------------------------------------
def test_setup_jira_without_apply_needs_no_network_and_no_token(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "casebridge.toml",
        '[tracker]\nconnector = "jira"\nurl = "http://127.0.0.1:9"\nemail = "cb@agency.example"\n'
        'api_token = { env = "CB_TEST_JIRA_TOKEN" }\nproject = "DR"\nliaison_project = "NCB"\n',
    )
    monkeypatch.delenv("CB_TEST_JIRA_TOKEN", raising=False)
    code, out, err = cli("setup", "jira")
    assert code == 0, err
    assert "custom field 'Case reference'" in out and "issue link type 'Relates'" in out


def test_setup_of_a_target_not_configured_is_an_error_on_stderr(cli: Cli) -> None:
    code, out, err = cli("setup", "redmine")
    assert code == 2 and out == "" and "'redmine' is not configured here" in err


# -- the deployment recipes ---------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    script = shutil.which("casebridge", path=str(Path(sys.executable).parent))
    assert script is not None
    for name in ("casebridge-sync.service", "casebridge-sync.timer"):
        text = (ROOT / "docs" / "deploy" / name).read_text(encoding="utf-8")
        write(tmp_path / name, text.replace("/opt/casebridge/bin/casebridge", script))
    done = subprocess.run(
        ["systemd-analyze", "verify", "casebridge-sync.service", "casebridge-sync.timer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_a_state_store_refuses_another_trackers_cases(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "casebridge.toml", '[tracker]\nconnector = "local"\npath = "first.db"\n')
    assert cli("intake", str(EXAMPLES), "--now", "2026-12-01T02:00:00Z")[0] == 0
    assert cli("sync", "--now", NOW)[0] == 0
    write(tmp_path / "casebridge.toml", '[tracker]\nconnector = "local"\npath = "second.db"\n')
    code, out, err = cli("sync", "--now", NOW)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "this state store belongs to local:" in err and "first.db" in err


def test_an_unreachable_jira_is_named_by_its_url(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path / "casebridge.toml",
        '[tracker]\nconnector = "jira"\nurl = "http://127.0.0.1:9"\nemail = "cb@agency.example"\n'
        'api_token = { env = "CB_TEST_JIRA_TOKEN" }\nproject = "DR"\nmax_attempts = 1\n',
    )
    monkeypatch.setenv("CB_TEST_JIRA_TOKEN", KEY)
    code, out, err = cli("check")
    assert code == 3 and "http://127.0.0.1:9/rest/api/" in err and KEY not in out + err

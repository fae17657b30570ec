"""pytest fixtures for the real Redmine (Debian's redmine 5.0 package, started by shared/redmine/).

Session: start the server with a fixed admin key, restore the scripts' baseline (a fresh Redmine),
run the script ``RedmineConnector.setup()`` writes with ``rails runner`` (so every run proves the setup
script works on a fresh Redmine), add a non-admin "officer" over REST, and snapshot the database.
Each test that uses ``redmine`` starts from that snapshot (hot restore, ~65 ms).

The scripts are found in ``<repo>/../shared/redmine`` or any parent's ``shared/redmine`` (a worktree
sits deeper), or ``$CASEBRIDGE_REDMINE_SCRIPTS``. When the server cannot be started or reached the
tests are skipped with the reason, except under ``CI=true``, where they fail.

Use it with ``pytest_plugins = ["tests.redmine_fixtures"]`` in a test module.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import requests

from connectors.redmine import RedmineConnector
from connectors.redmine_config import RedmineConfig
from tests.redmine_helpers import load_test_workflow
from workflows.model import Workflow

REPO = Path(__file__).resolve().parent.parent
ADMIN_KEY = "0123456789abcdef0123456789abcdef01234567"  # fixed, so snapshots and key always agree
PORT = int(os.environ.get("REDMINE_PORT", "3000"))
URL = f"http://127.0.0.1:{PORT}"
STATE_DIR = Path(os.environ.get("REDMINE_STATE_DIR", "/var/lib/redmine-test"))
SNAPSHOT = STATE_DIR / "casebridge-project.sqlite3"
REDMINE_ROOT = Path("/usr/share/redmine")
PROJECT, LIAISON = "data-requests", "interpol-liaison"
OFFICER = "officer1"


def scripts_dir() -> Path | None:
    override = os.environ.get("CASEBRIDGE_REDMINE_SCRIPTS")
    candidates = [Path(override)] if override else [p / "shared" / "redmine" for p in REPO.parents]
    return next((c for c in candidates if (c / "start-redmine.sh").is_file()), None)


def unavailable(reason: str) -> None:
    """Fail under CI=true (the server is part of CI), skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Redmine server unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"Redmine server unavailable: {reason}")


@dataclass
class RedmineServer:
    url: str
    admin_key: str
    scripts: Path
    officer_key: str = ""
    officer_id: int = 0
    setup_output: str = ""
    workflow: Workflow = field(default_factory=load_test_workflow)

    def config(self, key_env: str = "CB_TEST_REDMINE_KEY", **overrides) -> RedmineConfig:
        values = {
            "url": self.url,
            "api_key": {"env": key_env},
            "project": PROJECT,
            "liaison_project": LIAISON,
        }
        return RedmineConfig.model_validate(values | overrides)

    def connector(self, *, key: str | None = None, **overrides) -> RedmineConnector:
        """A connector using ``key`` (default: admin), passed through a per-call env variable."""
        env = f"CB_TEST_REDMINE_KEY_{abs(hash(key or self.admin_key)) % 10**8}"
        os.environ[env] = key or self.admin_key
        return RedmineConnector(self.config(env, **overrides), self.workflow, sleep=lambda s: None)

    def api(
        self, method: str, path: str, *, key: str | None = None, headers_extra: dict[str, str] | None = None, **kwargs
    ) -> requests.Response:
        """A raw REST call, as a person's client (or a careless script) would make it."""
        headers = {"X-Redmine-API-Key": key or self.admin_key, **(headers_extra or {})}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def clock(self) -> datetime:
        """Redmine's own time, to the second: what it stamps a creation or a journal with right now.

        Redmine stamps ``created_on`` and journals with the server's clock, which is not the test
        process's (a clock moved with libfaketime, another host, or simply a later day than the one a
        test was written on). Tests that compare server stamps with a moment take that moment from here.
        Redmine sends no ``Date`` header, so this reads the stamp of a throwaway upload: unattached, it
        touches no project or issue, and it is deleted at once. One-thread puma answers in order, so a
        later creation is never stamped before the time read here."""
        upload = self.api(
            "POST",
            "/uploads.json",
            params={"filename": "clock.txt"},
            data=b".",
            headers_extra={"Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 201, upload.text
        attachment_id = upload.json()["upload"]["id"]
        shown = self.api("GET", f"/attachments/{attachment_id}.json")
        shown.raise_for_status()
        self.api("DELETE", f"/attachments/{attachment_id}.json").raise_for_status()
        return datetime.fromisoformat(shown.json()["attachment"]["created_on"].replace("Z", "+00:00"))

    def rails_runner(self, ruby: str) -> str:
        with tempfile.NamedTemporaryFile("w", suffix=".rb", delete=False) as f:
            f.write(ruby)
        try:
            done = subprocess.run(
                ["bin/rails", "runner", f.name],
                cwd=REDMINE_ROOT,
                capture_output=True,
                text=True,
                env=os.environ | {"RAILS_ENV": "production"},
                timeout=300,
                check=False,
            )
        finally:
            os.unlink(f.name)
        if done.returncode != 0:
            raise AssertionError(f"rails runner failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout

    def reset(self, snapshot: Path | None = SNAPSHOT) -> None:
        args = ["restore", str(snapshot)] if snapshot else ["restore"]
        subprocess.run([str(self.scripts / "reset-redmine.sh"), *args], check=True, capture_output=True, timeout=120)


def _start(scripts: Path, fail: Callable[[str], None]) -> str:
    if os.geteuid() != 0:
        fail("start-redmine.sh needs root (apt, /etc/redmine)")
    key_file = Path(tempfile.mkdtemp()) / "key"
    try:
        subprocess.run(
            [str(scripts / "start-redmine.sh"), str(key_file)],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
            env=os.environ | {"REDMINE_API_KEY": ADMIN_KEY, "REDMINE_PORT": str(PORT)},
        )
    except subprocess.CalledProcessError as exc:
        fail(f"start-redmine.sh exited {exc.returncode}: {exc.stderr.strip().splitlines()[-1:]}")
    except subprocess.TimeoutExpired:
        fail("start-redmine.sh did not finish within 600 s")
    return key_file.read_text().strip()


def _add_officer(server: RedmineServer) -> None:
    """A non-admin member of both projects with the workflow's role, created over REST."""
    role = next(r["id"] for r in server.api("GET", "/roles.json").json()["roles"] if r["name"] == "Case officer")
    user = server.api(
        "POST",
        "/users.json",
        json={
            "user": {
                "login": OFFICER,
                "firstname": "Case",
                "lastname": "Officer",
                "mail": "officer1@example.org",
                "password": "officer-pass-123",
            }
        },
    )
    assert user.status_code == 201, user.text
    server.officer_id = user.json()["user"]["id"]
    for project in (PROJECT, LIAISON):
        member = server.api(
            "POST",
            f"/projects/{project}/memberships.json",
            json={"membership": {"user_id": server.officer_id, "role_ids": [role]}},
        )
        assert member.status_code == 201, member.text
    server.officer_key = server.api("GET", f"/users/{server.officer_id}.json").json()["user"]["api_key"]


def prepare_server(fail: Callable[[str], None] = unavailable) -> RedmineServer:
    """Start (or reuse) the server, set it up from a fresh baseline, snapshot it. ``fail(reason)``
    must raise; the benchmark passes its own."""
    scripts = scripts_dir()
    if scripts is None:
        fail(f"shared/redmine/start-redmine.sh not found above {REPO} (set CASEBRIDGE_REDMINE_SCRIPTS)")
    assert scripts is not None
    key = _start(scripts, fail)
    server = RedmineServer(url=URL, admin_key=key, scripts=scripts)
    try:
        server.api("GET", "/users/current.json").raise_for_status()
    except requests.RequestException as exc:
        fail(f"{URL} does not answer with the admin key: {type(exc).__name__}")
    server.reset(None)  # the scripts' baseline: a fresh Redmine with default data only
    server.setup_output = server.rails_runner(server.connector().setup())
    _add_officer(server)
    subprocess.run([str(scripts / "reset-redmine.sh"), "save", str(SNAPSHOT)], check=True, capture_output=True)
    return server


def server_answers() -> bool:
    try:
        return requests.get(f"{URL}/login", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def stop_server(server: RedmineServer) -> None:
    subprocess.run([str(server.scripts / "stop-redmine.sh")], check=False, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def redmine_server() -> Iterator[RedmineServer]:
    """The prepared server; stopped at the end only if this session started it."""
    was_running = server_answers()
    server = prepare_server()
    yield server
    if not was_running:
        stop_server(server)


@pytest.fixture
def redmine(redmine_server: RedmineServer) -> RedmineServer:
    """The server, restored to the freshly set-up project before the test."""
    redmine_server.reset()
    return redmine_server

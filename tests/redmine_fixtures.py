"""pytest fixtures for the real Redmine 5 the Redmine tests run against.

Which server:
- ``REDMINE_URL`` (with an admin API key in ``REDMINE_ADMIN_KEY``): that running Redmine 5. It must be
  a throw-away one on this machine: the tests create custom fields, statuses and workflows with
  ``rails runner`` (Redmine's REST API cannot) in ``REDMINE_RAILS_ROOT`` (default Debian's
  /usr/share/redmine) and replace its SQLite database between tests.
- otherwise, as root: ``tests/redmine/start-redmine.sh`` installs Debian's ``redmine`` +
  ``redmine-sqlite`` + ``puma`` when missing and starts it on 127.0.0.1:``REDMINE_PORT`` (3000), or
  reuses the one it (or another copy of it) already started; the session stops it at the end only if
  the session started it.
When there is no server (not root and no ``REDMINE_URL``), the tests skip with one line under ``-ra``,
except under ``CI=true``, where they fail.

Session: restore the baseline (the database as the script first configured it), run the script
``RedmineConnector.setup()`` writes with ``rails runner`` (so every run proves the setup script works on
a fresh Redmine), add a non-admin "officer" over REST, and snapshot the database. Each test that uses
``redmine`` starts from that snapshot (hot restore, ~65 ms).

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

from casebridge.connectors.redmine import RedmineConnector
from casebridge.connectors.redmine.config import RedmineConfig
from casebridge.workflows.model import Workflow
from tests import optional
from tests.optional import pytest_runtest_makereport  # noqa: F401 (the hook: one skip line)
from tests.redmine_helpers import load_test_workflow

SCRIPTS = Path(__file__).resolve().parent / "redmine"  # start/stop/reset-redmine.sh, seed.rb
ADMIN_KEY = "0123456789abcdef0123456789abcdef01234567"  # fixed, so snapshots and key always agree
PORT = int(os.environ.get("REDMINE_PORT", "3000"))
URL = os.environ.get("REDMINE_URL", "").rstrip("/") or f"http://127.0.0.1:{PORT}"
STATE_DIR = Path(os.environ.get("REDMINE_STATE_DIR", "/var/lib/redmine-test"))
BASELINE = STATE_DIR / "baseline.sqlite3"
SNAPSHOT = STATE_DIR / "casebridge-project.sqlite3"
REDMINE_ROOT = Path(os.environ.get("REDMINE_RAILS_ROOT", "/usr/share/redmine"))
PROJECT, LIAISON = "data-requests", "interpol-liaison"
OFFICER = "officer1"
HOW = "run the tests as root on Debian (tests/redmine/start-redmine.sh installs Redmine) or set REDMINE_URL"


def unavailable(reason: str) -> None:
    """Fail under CI=true (the server is part of CI), skip elsewhere; one line for every test."""
    optional.unavailable(f"Redmine tests: {reason}")


@dataclass
class RedmineServer:
    url: str
    admin_key: str
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

    def reset(self, snapshot: Path = SNAPSHOT) -> None:
        _script("reset-redmine.sh", "restore", str(snapshot))


def _script(name: str, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """One of tests/redmine/*.sh, with the Rails root and state directory this module uses."""
    env = os.environ | {"REDMINE_RAILS_ROOT": str(REDMINE_ROOT), "REDMINE_STATE_DIR": str(STATE_DIR)} | env
    return subprocess.run(
        [str(SCRIPTS / name), *args], check=True, capture_output=True, text=True, timeout=timeout, env=env
    )


def _start(fail: Callable[[str], None]) -> str:
    """The script-started server's admin key (installs and starts it when needed)."""
    if os.geteuid() != 0:
        fail(f"not root and REDMINE_URL is not set: {HOW} (with REDMINE_ADMIN_KEY)")
    key_file = Path(tempfile.mkdtemp()) / "key"
    try:
        _script("start-redmine.sh", str(key_file), timeout=600, REDMINE_API_KEY=ADMIN_KEY, REDMINE_PORT=str(PORT))
    except subprocess.CalledProcessError as exc:
        fail(f"tests/redmine/start-redmine.sh exited {exc.returncode}: {exc.stderr.strip().splitlines()[-1:]}")
    except subprocess.TimeoutExpired:
        fail("tests/redmine/start-redmine.sh did not finish within 600 s")
    return key_file.read_text().strip()


def _admin_key(fail: Callable[[str], None]) -> str:
    """REDMINE_URL's key, or the one of the server tests/redmine/start-redmine.sh runs."""
    if not os.environ.get("REDMINE_URL"):
        return _start(fail)
    key = os.environ.get("REDMINE_ADMIN_KEY", "").strip()
    if not key:
        fail("REDMINE_URL is set but REDMINE_ADMIN_KEY (an administrator's API key) is not")
    if not (REDMINE_ROOT / "bin" / "rails").is_file():
        fail(f"REDMINE_URL is set but {REDMINE_ROOT} is not its Rails root on this machine (set REDMINE_RAILS_ROOT)")
    return key


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
    server = RedmineServer(url=URL, admin_key=_admin_key(fail))
    try:
        server.api("GET", "/users/current.json").raise_for_status()
    except requests.RequestException as exc:
        fail(f"{URL} does not answer with the admin key: {type(exc).__name__}")
    if not BASELINE.is_file():  # a REDMINE_URL server the script never started: its database as found
        _script("reset-redmine.sh", "save", str(BASELINE))
    server.reset(BASELINE)  # a fresh Redmine with default data only
    server.setup_output = server.rails_runner(server.connector().setup())
    _add_officer(server)
    _script("reset-redmine.sh", "save", str(SNAPSHOT))
    return server


def server_answers() -> bool:
    try:
        return requests.get(f"{URL}/login", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def stop_server(server: RedmineServer) -> None:
    """Stop the script-started server (never a REDMINE_URL one)."""
    if not os.environ.get("REDMINE_URL"):
        subprocess.run([str(SCRIPTS / "stop-redmine.sh")], check=False, capture_output=True, timeout=120)


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
